"""Security: no credential in the code, the logs, the run records or the asset metadata; published
ports bind to loopback unless told otherwise; nothing secret has a default; TLS and SASL settings
pass through from the environment."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.stack import binaries
from fraudstream.tooling.stack.processes import free_port, spawn, terminate, wait_until
from pipeline.assets.ingestion import transactions
from pipeline.resources import MongoResource
from tests.helpers.producing import RecordProducer, publish_hour
from tests.helpers.stack import kafka_resource

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
SECRET = f"mongo-{secrets.token_hex(12)}"  # unique: found anywhere it must not be, it leaked
DATABASE = "fraudstream_secure"

# A password in a URI (scheme://user:password@host), or a literal assigned to a secret's name.
CREDENTIAL_PATTERNS = [
    re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"`<>{}$]+:[^\s/@'\"`<>{}$]+@"),
    re.compile(r"(?i)\b\w*(password|passwd|secret|token)\w*\s*[:=]\s*['\"][^'\"\s${}<]{4,}['\"]"),
]


@pytest.fixture(scope="module")
def mongod_with_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real mongod with authentication on, and fraudstream's user (readWrite on one database)."""
    data = tmp_path_factory.mktemp("mongo-auth")
    port = free_port(None)
    log = data / "mongod.log"
    pid = spawn(
        [str(binaries.mongod()), "--auth", "--dbpath", str(data), "--port", str(port),
         "--bind_ip", "127.0.0.1", "--wiredTigerCacheSizeGB", "0.25", "--quiet"],
        log,
    )  # fmt: skip
    uri = f"mongodb://127.0.0.1:{port}"
    try:
        wait_until(lambda: MongoStore.answers(uri), 60, "MongoDB with --auth", log)
        # As in production: a root user first (the only user the localhost exception may
        # create), then fraudstream's own, least-privileged one.
        root_password = secrets.token_hex(12)
        with MongoClient(uri) as client:
            client.admin.command("createUser", "root", pwd=root_password, roles=["root"])
        with MongoClient(uri, username="root", password=root_password) as client:
            client.admin.command(
                "createUser", "fraudstream", pwd=SECRET,
                roles=[{"role": "readWrite", "db": DATABASE}],
            )  # fmt: skip
        yield uri
    finally:
        terminate(pid)


def test_mongodb_credentials_come_from_the_environment_and_reach_no_log_or_metadata(
    mongod_with_auth: str,
    stack: StackRecord,
    topic: str,
    producer: RecordProducer,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    with MongoClient(mongod_with_auth) as anonymous, pytest.raises(OperationFailure):
        anonymous[DATABASE].probe.insert_one({})  # authentication is really on
    monkeypatch.setenv("FRAUDSTREAM_MONGO_USERNAME", "fraudstream")
    monkeypatch.setenv("FRAUDSTREAM_MONGO_PASSWORD", SECRET)
    publish_hour(producer)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [transactions],
            partition_key="2026-11-23-10:20",
            resources={
                "kafka": kafka_resource(stack, topic),
                "mongo": MongoResource(uri=mongod_with_auth, database=DATABASE),
            },
            instance=instance,
        )
        assert result.success
        stored = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
        stored += repr(instance.get_run_by_id(result.run_id))
    with MongoClient(mongod_with_auth, username="fraudstream", password=SECRET) as client:
        assert client[DATABASE].transactions.count_documents({}) == 20
    assert "offsets" in stored  # the metadata was read, and holds no credential
    out, err = capfd.readouterr()
    assert SECRET not in stored + out + err


def test_wrong_mongodb_credentials_get_a_clear_error_without_the_password(
    mongod_with_auth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = f"wrong-{secrets.token_hex(6)}"
    monkeypatch.setenv("FRAUDSTREAM_MONGO_USERNAME", "fraudstream")
    monkeypatch.setenv("FRAUDSTREAM_MONGO_PASSWORD", wrong)
    with pytest.raises(ServiceUnavailable, match="refused the credentials") as error:
        MongoStore.connect(mongod_with_auth, DATABASE)
    assert wrong not in str(error.value) and "FRAUDSTREAM_MONGO_PASSWORD" in str(error.value)
    monkeypatch.delenv("FRAUDSTREAM_MONGO_PASSWORD")
    with pytest.raises(ValueError, match="go together"):
        config.mongo_client_options()


def repository_files() -> list[Path]:
    """The tracked files (all files outside build and cache folders when not a git checkout)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if listed.returncode == 0 and listed.stdout:
        return [ROOT / name for name in listed.stdout.split("\0") if name]
    skip = {".git", ".fraudstream", "__pycache__", ".ruff_cache", ".pytest_cache"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.parts)]


def test_no_credential_is_written_in_the_code_or_the_docs() -> None:
    # tests/ holds throwaway tokens of the servers the tests start themselves.
    found = []
    for path in repository_files():
        if path.relative_to(ROOT).parts[0] == "tests" or not path.exists():
            continue
        text = path.read_text(errors="ignore")
        found += [
            f"{path.relative_to(ROOT)}: {m.group(0)}"
            for pattern in CREDENTIAL_PATTERNS
            for m in pattern.finditer(text)
        ]
    assert not found, found


def test_the_credential_patterns_catch_what_they_are_for() -> None:
    leaks = ['uri = "mongodb://admin:hunter22@db:27017"', 'PASSWORD = "hunter22"',
             "sasl_plain_password: 'hunter22'"]  # fmt: skip
    fine = ["mongodb://mongo:27017/", "${POSTGRES_PASSWORD}", 'password = env("MONGO_PASSWORD")']
    assert all(any(p.search(text) for p in CREDENTIAL_PATTERNS) for text in leaks)
    assert not any(p.search(text) for p in CREDENTIAL_PATTERNS for text in fine)


def compose_file() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_published_port_binds_to_loopback_unless_told_otherwise() -> None:
    for name, service in compose_file()["services"].items():
        for port in service.get("ports", []):
            assert re.fullmatch(r"\$\{[A-Z_]+_BIND:-127\.0\.0\.1\}:\d+:\d+", port), (name, port)
    assert config.webserver_host() == "127.0.0.1"


def test_no_secret_in_the_compose_stack_has_a_default() -> None:
    referenced = re.findall(r"\$\{([A-Z_]*(?:PASSWORD|USERNAME|TOKEN)[A-Z_]*)(:-[^}]*)?\}",
                            COMPOSE.read_text())  # fmt: skip
    assert referenced
    with_default = {name for name, default in referenced if default not in ("", ":-")}
    assert not with_default, with_default
    example = (ROOT / "docker" / ".env.example").read_text()
    for name in {name for name, _ in referenced}:
        assert re.search(rf"^#? ?{name}=$", example, re.MULTILINE), f"{name} undocumented"


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (Debian: apt-get install docker-compose; the README's "
    "test command installs it where it can)",
)
def test_the_compose_file_validates() -> None:
    done = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--env-file", str(COMPOSE.parent / ".env.example"),
         "config", "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_kafka_and_mongodb_security_settings_pass_through_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert config.kafka_client_options() == {}
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SASL_PASSWORD", "from-env")
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SSL_CAFILE", "/run/secrets/ca.pem")
    assert config.kafka_client_options() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "from-env",
        "ssl_cafile": "/run/secrets/ca.pem",
    }
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="not one of PLAINTEXT, SSL"):
        config.kafka_client_options()

    assert config.mongo_client_options() == {}
    monkeypatch.setenv("FRAUDSTREAM_MONGO_TLS_CA_FILE", "/run/secrets/mongo-ca.pem")
    assert config.mongo_client_options() == {"tls": True, "tlsCAFile": "/run/secrets/mongo-ca.pem"}


def test_the_model_key_is_generated_once_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FRAUDSTREAM_MODEL_KEY")
    monkeypatch.setenv("FRAUDSTREAM_STATE_DIR", str(tmp_path))
    key = config.model_key()
    assert len(key) == 64 and config.model_key() == key  # made once, then read
    assert (tmp_path / "model.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("FRAUDSTREAM_MODEL_KEY", "from-the-environment")
    assert config.model_key() == b"from-the-environment"

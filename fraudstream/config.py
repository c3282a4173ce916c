"""Where fraudstream finds its services and settings: ``FRAUDSTREAM_*`` variables first, then the
embedded stack that ``fraudstream up`` recorded in the state directory.

Everything here is read when called, never at import time, so one process can switch stacks (tests
do) and a missing service is reported where it is needed, with what to do about it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fraudstream.windows import parse_utc

ENV_PREFIX = "FRAUDSTREAM_"
DEFAULT_PARTITION_START = "2026-01-01T00:00:00+00:00"
DEFAULT_ALLOWED_LATENESS_SECONDS = 300
STACK_FILE = "stack.json"


class ServiceUnavailable(RuntimeError):
    """A service fraudstream needs is neither configured nor running."""


def env(name: str, default: str | None = None) -> str | None:
    """A ``FRAUDSTREAM_<name>`` variable; empty counts as unset."""
    value = os.environ.get(ENV_PREFIX + name, "").strip()
    return value or default


def state_dir() -> Path:
    """The embedded stack's home: ``FRAUDSTREAM_STATE_DIR`` or ``.fraudstream/`` in the cwd."""
    return Path(env("STATE_DIR") or Path.cwd() / ".fraudstream").absolute()


def partition_start() -> datetime:
    """First 10-minute partition (``FRAUDSTREAM_PARTITION_START``, ISO date-time, UTC default)."""
    raw = env("PARTITION_START", DEFAULT_PARTITION_START)
    try:
        return parse_utc(raw)
    except ValueError:
        raise ValueError(
            f"FRAUDSTREAM_PARTITION_START={raw!r} is not an ISO-8601 date-time; "
            "use e.g. 2026-01-01T00:00:00+00:00"
        ) from None


def allowed_lateness() -> timedelta:
    """How far a record's event time may be from its Kafka timestamp (seconds in the env)."""
    raw = env("ALLOWED_LATENESS", str(DEFAULT_ALLOWED_LATENESS_SECONDS))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"FRAUDSTREAM_ALLOWED_LATENESS={raw!r} must be a non-negative number of seconds"
        )
    return timedelta(seconds=seconds)


def late_horizon() -> timedelta:
    """How long after its window a late record is still stored in it
    (``FRAUDSTREAM_LATE_HORIZON_HOURS``, default a week); older ones are dead-lettered."""
    raw = env("LATE_HORIZON_HOURS", "168")
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if hours < 0:
        raise ValueError(f"FRAUDSTREAM_LATE_HORIZON_HOURS={raw!r} must be a non-negative number")
    return timedelta(hours=hours)


def idle_close() -> timedelta:
    """How long the topic may stand still before its newest window counts as closed
    (``FRAUDSTREAM_IDLE_CLOSE_SECONDS``, default: the allowed lateness)."""
    raw = env("IDLE_CLOSE_SECONDS")
    return timedelta(seconds=float(raw)) if raw else allowed_lateness()


def positive_int(name: str, default: int, unit: str = "") -> int:
    """A ``FRAUDSTREAM_<name>`` whole number >= 1 (``unit`` names it in the error)."""
    raw = env(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        what = f"a whole number of {unit}" if unit else "a whole number"
        raise ValueError(f"{ENV_PREFIX}{name}={raw!r} must be {what} >= 1")
    return int(raw)


def ingest_workers() -> int:
    """Processes a large ingestion is split over (``FRAUDSTREAM_INGEST_WORKERS``, default 2)."""
    return positive_int("INGEST_WORKERS", 2)


def feedback_delay() -> timedelta:
    """How long after a transaction its fraud label may take to be reported
    (``FRAUDSTREAM_FEEDBACK_DELAY_DAYS``, default 7, the handbook's): terminal risk counts a fraud
    that long after it happened, and only if its label came within it. Set it to the delay your
    labels really arrive within: a longer one hides recent compromises, a shorter one misses
    labels. Stored features record it (``feature_version``); after a change, backfill
    ``transaction_features`` before the next full fit."""
    return timedelta(days=positive_int("FEEDBACK_DELAY_DAYS", 7, "days"))


def automation_interval_seconds() -> int:
    """How often the automation sensor evaluates the conditions
    (``FRAUDSTREAM_AUTOMATION_INTERVAL_SECONDS``, default 15; Dagster's sensor loop is 5 s)."""
    return positive_int("AUTOMATION_INTERVAL_SECONDS", 15, "seconds")


def spark_master() -> str:
    """Spark master URL (``FRAUDSTREAM_SPARK_MASTER``): local threads by default, or spark://."""
    return env("SPARK_MASTER", "local[*]")


def spark_remote() -> str | None:
    """A running Spark Connect server the runs use instead of starting Spark themselves
    (``FRAUDSTREAM_SPARK_REMOTE``, ``sc://host:port``; set by the embedded stack for its Dagster
    processes); None: each run starts its own session on ``spark_master()``."""
    return env("SPARK_REMOTE") or None


def spark_driver_memory() -> str:
    """Heap of the Spark driver (``FRAUDSTREAM_SPARK_DRIVER_MEMORY``); local mode runs in it."""
    return env("SPARK_DRIVER_MEMORY", "2g")


def spark_settings(
    master: str | None = None,
    driver_memory: str | None = None,
    shuffle_partitions: int = 4,
    app_name: str = "fraudstream",
) -> dict[str, str]:
    """The settings of every fraudstream Spark session: the pipeline's (defaults from the
    environment) and offline ones (benchmarks pass their own master and memory)."""
    return {
        "spark.master": master or spark_master(),
        "spark.app.name": app_name,
        "spark.sql.session.timeZone": "UTC",
        # Windows of a few thousand rows: 200 shuffle partitions would be 200 tiny tasks.
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",  # pandas <-> Spark ~20x faster
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": driver_memory or spark_driver_memory(),
        **spark_cluster_settings(),
    }


# FRAUDSTREAM_SPARK_<suffix> -> Spark setting, for a spark:// cluster (unset: Spark's default)
_SPARK_CLUSTER_SETTINGS = {
    "DRIVER_HOST": "spark.driver.host",
    "EXECUTOR_MEMORY": "spark.executor.memory",
    "EXECUTOR_CORES": "spark.executor.cores",
    "CORES_MAX": "spark.cores.max",
}


def spark_cluster_settings() -> dict[str, str]:
    """Executor sizing and the driver's address as executors see it (``FRAUDSTREAM_SPARK_
    DRIVER_HOST``, ``_EXECUTOR_MEMORY``, ``_EXECUTOR_CORES``, ``_CORES_MAX``), where set."""
    return {
        key: value
        for suffix, key in _SPARK_CLUSTER_SETTINGS.items()
        if (value := env("SPARK_" + suffix))
    }


@dataclass(frozen=True)
class StackRecord:
    """What ``fraudstream up`` wrote about the services it runs (``<state dir>/stack.json``)."""

    kafka_bootstrap: str | None
    mongo_uri: str | None
    label_api_url: str | None
    processes: dict[str, int]
    started_at: str
    dagster_url: str | None = None
    dagster_storage: str | None = None  # Postgres URL (no password) when asked, else SQLite
    spark_remote: str | None = None  # the Spark Connect server the Dagster runs use

    @classmethod
    def load(cls, directory: Path) -> StackRecord | None:
        path = directory / STACK_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(**data)

    def save(self, directory: Path) -> None:
        """Written readable by this user only: the MongoDB address carries the stack's
        credentials, which the programs resolving it from the state dir need."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = directory / (STACK_FILE + ".tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(json.dumps(self.__dict__, indent=2))
        tmp.replace(directory / STACK_FILE)

    @staticmethod
    def now() -> str:
        return datetime.now(UTC).isoformat()


def _resolve(variable: str, attribute: str, what: str) -> str:
    configured = env(variable)
    if configured:
        return configured
    directory = state_dir()
    record = StackRecord.load(directory)
    value = getattr(record, attribute) if record else None
    if value:
        return value
    raise ServiceUnavailable(
        f"No {what} is configured: start the embedded stack with `fraudstream up` "
        f"(state dir {directory}) or set FRAUDSTREAM_{variable}."
    )


def kafka_bootstrap() -> str:
    return _resolve("KAFKA_BOOTSTRAP", "kafka_bootstrap", "Kafka broker")


def mongo_uri() -> str:
    return _resolve("MONGO_URI", "mongo_uri", "MongoDB")


def label_api_url() -> str:
    return _resolve("LABEL_API_URL", "label_api_url", "label API")


def label_api_token() -> str | None:
    return env("LABEL_API_TOKEN")


def model_key() -> bytes:
    """The key model artifacts are signed with, kept outside MongoDB so that a writer of the
    database cannot plant a model: ``FRAUDSTREAM_MODEL_KEY``, else ``<state dir>/model.key``,
    generated on first use (readable by this user only)."""
    configured = env("MODEL_KEY")
    if configured:
        return configured.encode()
    return secret_file(state_dir() / "model.key", 32).encode()


def secret_file(path: Path, size: int = 16) -> str:
    """The secret kept in ``path`` (readable by this user only), generated on first use:
    ``size`` random bytes, hex-encoded."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f"{path.name}.{os.getpid()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(size))
        try:
            os.link(draft, path)  # atomic, and never replaces a secret another process made
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def landing_dir() -> Path:
    """Where batch files land (FRAUDSTREAM_LANDING_DIR, default ``<state dir>/landing``)."""
    configured = env("LANDING_DIR")
    return Path(configured) if configured else state_dir() / "landing"


def export_dir() -> Path:
    """Where Excel exports go (FRAUDSTREAM_EXPORT_DIR, default ``<state dir>/exports``)."""
    configured = env("EXPORT_DIR")
    return Path(configured) if configured else state_dir() / "exports"


def late_after() -> timedelta:
    """How long the newest materialization of a streaming asset (`transactions`,
    `ensemble_predictions`) may be old before the UI shows the asset late
    (``FRAUDSTREAM_LATE_AFTER_MINUTES``, default 30; more than one 10-minute window)."""
    raw = env("LATE_AFTER_MINUTES", "30")
    try:
        minutes = float(raw)
    except ValueError:
        minutes = 0.0
    if minutes <= 10:
        raise ValueError(
            f"FRAUDSTREAM_LATE_AFTER_MINUTES={raw!r} must be a number of minutes above 10 (a "
            "window lasts 10): e.g. 30"
        )
    return timedelta(minutes=minutes)


def export_cron() -> str:
    """How often the day's Excel export may refresh (FRAUDSTREAM_EXPORT_CRON, default hourly)."""
    return env("EXPORT_CRON", "0 * * * *")


def quality_report_cron() -> str:
    """How often a day's quality report may refresh (FRAUDSTREAM_QUALITY_REPORT_CRON, default
    the export's): each refresh is a run per day of the last week."""
    return env("QUALITY_REPORT_CRON", export_cron())


def kafka_topic() -> str:
    return env("KAFKA_TOPIC", "transactions")


def kafka_group_id() -> str:
    return env("KAFKA_GROUP_ID", "fraudstream-ingest")


def mongo_database() -> str:
    return env("MONGO_DATABASE", "fraudstream")


def mongo_client_options() -> dict[str, object]:
    """Credentials and TLS for MongoDB, kept out of the URI (so a logged URI holds no secret):
    ``FRAUDSTREAM_MONGO_USERNAME`` / ``_PASSWORD`` (``_AUTH_SOURCE``, default admin),
    ``FRAUDSTREAM_MONGO_TLS_CA_FILE`` and ``_TLS_CERT_KEY_FILE`` (either turns TLS on)."""
    options: dict[str, object] = {}
    username, password = env("MONGO_USERNAME"), env("MONGO_PASSWORD")
    if bool(username) != bool(password):
        raise ValueError(
            "FRAUDSTREAM_MONGO_USERNAME and FRAUDSTREAM_MONGO_PASSWORD go together: set both "
            "(or neither, for a server without authentication)."
        )
    if username:
        options |= {
            "username": username,
            "password": password,
            "authSource": env("MONGO_AUTH_SOURCE", "admin"),
        }
    tls_files = {"tlsCAFile": env("MONGO_TLS_CA_FILE"),
                 "tlsCertificateKeyFile": env("MONGO_TLS_CERT_KEY_FILE")}  # fmt: skip
    if any(tls_files.values()):
        options |= {"tls": True} | {k: v for k, v in tls_files.items() if v}
    return options


KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# FRAUDSTREAM_KAFKA_<suffix> -> kafka-python client option
_KAFKA_SECURITY_SETTINGS = {
    "SASL_MECHANISM": "sasl_mechanism",
    "SASL_USERNAME": "sasl_plain_username",
    "SASL_PASSWORD": "sasl_plain_password",
    "SSL_CAFILE": "ssl_cafile",
    "SSL_CERTFILE": "ssl_certfile",
    "SSL_KEYFILE": "ssl_keyfile",
}


def kafka_client_options() -> dict[str, object]:
    """TLS and SASL for every Kafka client (consumer, producer, admin), from
    ``FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL`` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) and
    ``FRAUDSTREAM_KAFKA_SASL_MECHANISM`` / ``_SASL_USERNAME`` / ``_SASL_PASSWORD`` /
    ``_SSL_CAFILE`` / ``_SSL_CERTFILE`` / ``_SSL_KEYFILE``."""
    protocol = env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ValueError(
            f"FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of "
            f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}"
        )
    options: dict[str, object] = {"security_protocol": protocol} if protocol != "PLAINTEXT" else {}
    for suffix, option in _KAFKA_SECURITY_SETTINGS.items():
        value = env("KAFKA_" + suffix)
        if value:
            options[option] = value
    if protocol.startswith("SASL") and "sasl_mechanism" not in options:
        options["sasl_mechanism"] = "PLAIN"
    return options


def webserver_host() -> str:
    """Interface the Dagster webserver listens on (``FRAUDSTREAM_WEBSERVER_HOST``): loopback
    unless told otherwise, so the UI (which can launch runs) is not exposed by accident."""
    return env("WEBSERVER_HOST", "127.0.0.1")


def alert_webhook_url() -> str | None:
    """Where failed runs and checks are posted (``FRAUDSTREAM_ALERT_WEBHOOK_URL``); unset: they
    are only logged by the alert sensor."""
    return env("ALERT_WEBHOOK_URL")


def dagster_url() -> str | None:
    """The Dagster UI's address for links in alerts (``FRAUDSTREAM_DAGSTER_URL``, else the
    embedded stack's)."""
    if url := env("DAGSTER_URL"):
        return url
    record = StackRecord.load(state_dir())
    return record.dagster_url if record else None

"""``fraudstream up / status / down``: the embedded services of one machine.

MongoDB (data on disk under the state dir, authentication on), the Tansu broker (memory
storage: topics start empty after a restart) and the simulator's label API run as detached
processes recorded in ``<state dir>/stack.json``; with Dagster, also a Spark Connect server its
runs share. A service whose ``FRAUDSTREAM_*`` variable is
set (to anything but the stack's own address) is used instead of started. ``up`` is idempotent
and repairs: healthy services are kept, dead ones start again on the address they had.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.features.job import remote_answers
from fraudstream.ingest.kafka_admin import DEFAULT_PARTITIONS, broker_answers, ensure_topic
from fraudstream.store.access import ensure_user
from fraudstream.store.mongo import MongoStore, redacted
from fraudstream.tooling.stack import binaries, spark_connect
from fraudstream.tooling.stack.dagster_services import start_dagster, webserver_answers
from fraudstream.tooling.stack.postgres import PostgresServer, start_postgres
from fraudstream.tooling.stack.processes import free_port, is_running, spawn, terminate, wait_until

PREFERRED_PORTS = {"mongodb": 27017, "kafka": 9092, "label-api": 8765, "spark-connect": 15002}
START_TIMEOUT = 60.0
MONGO_USER = "fraudstream"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    healthy: bool
    detail: str


def label_api_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=(1, 2)).ok
    except requests.RequestException:
        return False


class EmbeddedStack:
    """The services of one state directory."""

    def __init__(self, state_dir: Path, *, preferred_ports: bool = True) -> None:
        self.state_dir = state_dir.absolute()
        self.preferred_ports = preferred_ports
        self.logs = self.state_dir / "logs"

    def up(
        self,
        *,
        topic_partitions: int = DEFAULT_PARTITIONS,
        dagster: bool = False,
        postgres: bool = False,
        on_step: Callable[[str], None] = lambda step: None,
    ) -> StackRecord:
        """Start what is not running, wait until healthy, create the topic; returns the record.
        With ``dagster``, also the Dagster daemon and webserver on the state dir's instance,
        whose storage is SQLite or, with ``postgres``, a PostgreSQL server of the stack.

        A recorded stack is repaired, not replaced: a healthy service is kept as it is (a running
        broker's topics live in its memory), a dead one is started again on the address it had,
        so programs pointed at the stack (``fraudstream env``) keep working. ``on_step`` hears
        what is being done (for a progress display)."""
        record = StackRecord.load(self.state_dir)
        if record is not None and not _same_shape(record, dagster, postgres):
            self.down()  # asked for another stack (with or without Dagster or Postgres)
            record = None
        if record is not None and all(status.healthy for status in self.status()):
            return record
        processes = dict(record.processes) if record else {}
        before = dict(processes)
        try:
            on_step("MongoDB")
            mongo_uri = self._mongo(record, processes)
            on_step("Kafka broker")
            kafka = self._kafka(record, processes)
            on_step("label API")
            label_api = self._label_api(record, processes)
            self._check_external(mongo_uri, kafka)
            on_step(f"topic {config.kafka_topic()}")
            ensure_topic(kafka, config.kafka_topic(), topic_partitions)
            dagster_url = dagster_storage = spark_remote = None
            if dagster:
                on_step("Spark Connect server (the JVM starts once, ~10 s)")
                spark_remote = self._spark_connect(record, processes)
                dagster_url, dagster_storage = self._dagster(
                    record, processes, mongo_uri, kafka, label_api, spark_remote, postgres,
                    on_step,
                )  # fmt: skip
        except BaseException:
            for name, pid in processes.items():
                if before.get(name) != pid:  # only what this call started
                    terminate(pid)
            raise
        record = StackRecord(
            kafka_bootstrap=kafka,
            mongo_uri=mongo_uri,
            label_api_url=label_api,
            processes=processes,
            started_at=record.started_at if record else StackRecord.now(),
            dagster_url=dagster_url,
            dagster_storage=dagster_storage,
            spark_remote=spark_remote,
        )
        record.save(self.state_dir)
        return record

    def _mongo(self, record: StackRecord | None, processes: dict[str, int]) -> str:
        recorded = record.mongo_uri if record else None
        external = _external("MONGO_URI", recorded)
        if external:
            return external
        if recorded and self._healthy("mongodb", processes, lambda: MongoStore.answers(recorded)):
            return recorded
        return self._start_mongo(processes, _port_of(recorded))

    def _kafka(self, record: StackRecord | None, processes: dict[str, int]) -> str:
        recorded = record.kafka_bootstrap if record else None
        external = _external("KAFKA_BOOTSTRAP", recorded)
        if external:
            return external
        if recorded and self._healthy("kafka", processes, lambda: broker_answers(recorded)):
            return recorded  # never restart a healthy broker: its topics live in its memory
        return self._start_kafka(processes, _port_of(recorded))

    def _label_api(self, record: StackRecord | None, processes: dict[str, int]) -> str:
        recorded = record.label_api_url if record else None
        if recorded and self._healthy("label-api", processes, lambda: label_api_answers(recorded)):
            return recorded
        return self._start_label_api(processes, _port_of(recorded))

    def _spark_connect(self, record: StackRecord | None, processes: dict[str, int]) -> str:
        """The Spark Connect server of the Dagster runs (``FRAUDSTREAM_SPARK_REMOTE`` names
        another one: used instead)."""
        recorded = record.spark_remote if record else None
        external = _external("SPARK_REMOTE", recorded)
        if external:
            return external
        if recorded and self._healthy("spark-connect", processes, lambda: remote_answers(recorded)):
            return recorded
        port = self._port("spark-connect", _port_of(recorded))
        log = self.logs / "spark-connect.log"
        processes["spark-connect"] = spawn(
            spark_connect.server_argv(port), log, env=spark_connect.server_env()
        )
        url = f"sc://127.0.0.1:{port}"
        wait_until(lambda: remote_answers(url), spark_connect.START_TIMEOUT, "Spark Connect", log)
        return url

    def _dagster(
        self,
        record: StackRecord | None,
        processes: dict[str, int],
        mongo_uri: str,
        kafka: str,
        label_api: str,
        spark_remote: str,
        postgres: bool,
        on_step: Callable[[str], None],
    ) -> tuple[str, str | None]:
        """The daemon and webserver, restarted together when either is down (and Postgres, when
        it is the storage and down)."""
        recorded = record.dagster_url if record else None
        storage = record.dagster_storage if record else None
        postgres_alive = not postgres or self._alive("postgres", processes)
        names = ("dagster-daemon", "dagster-webserver")
        if (
            recorded
            and postgres_alive
            and all(self._alive(name, processes) for name in names)
            and webserver_answers(recorded)
        ):
            return recorded, storage
        for name in names:
            if self._alive(name, processes):
                terminate(processes.pop(name))
        settings = {
            "FRAUDSTREAM_MONGO_URI": mongo_uri,
            "FRAUDSTREAM_KAFKA_BOOTSTRAP": kafka,
            "FRAUDSTREAM_LABEL_API_URL": label_api,
            "FRAUDSTREAM_SPARK_REMOTE": spark_remote,
        }
        if postgres:
            on_step("PostgreSQL server (Dagster's storage)")
            if self._alive("postgres", processes):
                terminate(processes.pop("postgres"))
            server = self._start_postgres(processes)
            settings |= server.dagster_env()
            storage = server.url
        url = start_dagster(
            self.state_dir,
            settings,
            processes,
            self.preferred_ports,
            postgres=postgres,
            port=_port_of(recorded),
            on_step=on_step,
        )
        return url, storage

    @staticmethod
    def _alive(name: str, processes: dict[str, int]) -> bool:
        return name in processes and is_running(processes[name])

    def _healthy(self, name: str, processes: dict[str, int], answers: Callable[[], bool]) -> bool:
        """Whether the service's process runs and answers; a process that runs but does not
        answer (hung) is stopped, so a new one can take its address."""
        if not self._alive(name, processes):
            return False
        if answers():
            return True
        terminate(processes.pop(name))
        return False

    def status(self) -> list[ServiceStatus]:
        """Health of every service of the recorded stack."""
        record = StackRecord.load(self.state_dir)
        if record is None:
            return [ServiceStatus("stack", False, f"not started (no stack in {self.state_dir})")]
        statuses = [
            ServiceStatus(name, is_running(pid), f"pid {pid}")
            for name, pid in sorted(record.processes.items())
        ]
        checks: list[tuple[str, str | None, Callable[[str], bool]]] = [
            ("mongodb endpoint", record.mongo_uri, MongoStore.answers),
            ("kafka endpoint", record.kafka_bootstrap, broker_answers),
            ("label-api endpoint", record.label_api_url, label_api_answers),
            ("dagster webserver", record.dagster_url, webserver_answers),
            ("spark connect", record.spark_remote, remote_answers),
        ]
        for name, address, answers in checks:
            if address:
                healthy = answers(address)
                statuses.append(ServiceStatus(name, healthy, redacted(address)))
        return statuses

    def down(self) -> list[str]:
        """Stop every recorded process (SIGTERM, then SIGKILL); returns the names stopped."""
        record = StackRecord.load(self.state_dir)
        if record is None:
            return []
        stopped = []
        # Reverse start order: clients (label API) before the stores they may use.
        for name, pid in reversed(list(record.processes.items())):
            if is_running(pid):
                terminate(pid)
                stopped.append(name)
        (self.state_dir / config.STACK_FILE).unlink(missing_ok=True)
        return stopped

    def _port(self, service: str, port: int | None) -> int:
        """The port a service had (so its address stays), else the preferred or a free one."""
        if port is not None:
            return port
        return free_port(PREFERRED_PORTS[service] if self.preferred_ports else None)

    def _start_mongo(self, processes: dict[str, int], port: int | None = None) -> str:
        """MongoDB with authentication; its user's password, generated on first use, in
        ``<state dir>/mongo.password`` (readable by this user only). Returns the URI that logs
        in (kept in ``stack.json``, also readable by this user only)."""
        port = self._port("mongodb", port)
        data = self.state_dir / "mongo"
        data.mkdir(parents=True, exist_ok=True)
        log = self.logs / "mongod.log"
        argv = [
            str(binaries.mongod()),
            "--dbpath", str(data),
            "--port", str(port),
            "--bind_ip", "127.0.0.1",
            "--wiredTigerCacheSizeGB", "1",
            "--auth",
            "--quiet",
        ]  # fmt: skip
        processes["mongodb"] = spawn(argv, log)
        address = f"mongodb://127.0.0.1:{port}"
        wait_until(lambda: MongoStore.answers(address), START_TIMEOUT, "MongoDB", log)
        secret = self.state_dir / "mongo.password"
        return ensure_user(address, MONGO_USER, config.secret_file(secret), where=str(secret))

    def _start_postgres(self, processes: dict[str, int]) -> PostgresServer:
        """Dagster's storage in ``<state dir>/postgres``; its password, generated on first use,
        in ``<state dir>/postgres.password`` (readable by this user only)."""
        server = start_postgres(
            self.state_dir / "postgres",
            user="dagster",
            password=config.secret_file(self.state_dir / "postgres.password"),
            database="dagster",
        )
        processes["postgres"] = server.pid
        return server

    def _start_kafka(self, processes: dict[str, int], port: int | None = None) -> str:
        port = self._port("kafka", port)
        address = f"127.0.0.1:{port}"
        log = self.logs / "kafka.log"
        argv = [
            str(binaries.kafka_broker()),
            "broker",
            "--listener-url", f"tcp://{address}",
            "--advertised-listener-url", f"tcp://{address}",
            "--storage-engine", "memory://tansu/",
        ]  # fmt: skip
        processes["kafka"] = spawn(argv, log)
        wait_until(lambda: broker_answers(address), START_TIMEOUT, "Kafka broker (Tansu)", log)
        return address

    def _start_label_api(self, processes: dict[str, int], port: int | None = None) -> str:
        port = self._port("label-api", port)
        log = self.logs / "label-api.log"
        argv = [
            sys.executable, "-m", "fraudstream.tooling.simulator.label_api",
            "--state-dir", str(self.state_dir),
            "--port", str(port),
        ]  # fmt: skip
        processes["label-api"] = spawn(argv, log)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: label_api_answers(url), START_TIMEOUT, "label API", log)
        return url

    @staticmethod
    def _check_external(mongo_uri: str, kafka: str) -> None:
        if not MongoStore.answers(mongo_uri):
            raise ServiceUnavailable(
                f"MongoDB at {redacted(mongo_uri)} (FRAUDSTREAM_MONGO_URI) does not answer; "
                "fix the address or unset it to use the embedded MongoDB."
            )
        if not broker_answers(kafka):
            raise ServiceUnavailable(
                f"Kafka at {kafka} (FRAUDSTREAM_KAFKA_BOOTSTRAP) does not answer; "
                "fix the address or unset it to use the embedded broker."
            )


def _same_shape(record: StackRecord, dagster: bool, postgres: bool) -> bool:
    """Whether the recorded stack is the one asked for (with Dagster or not, on Postgres or not);
    a stack recorded with Dagster also serves a request without it."""
    if not dagster:
        return True
    return record.dagster_url is not None and bool(record.dagster_storage) == postgres


def _external(variable: str, recorded: str | None) -> str | None:
    """The address a ``FRAUDSTREAM_*`` variable names, unless it is the embedded service's own
    (what ``fraudstream env`` exported): that one is the stack's to restart."""
    configured = config.env(variable)
    return configured if configured and configured != recorded else None


def _port_of(address: str | None) -> int | None:
    """The port of a recorded address (``mongodb://host:port``, ``host:port``, ``http://...``)."""
    if not address:
        return None
    netloc = address.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
    port = netloc.rsplit(":", 1)[-1]
    return int(port) if port.isdigit() else None

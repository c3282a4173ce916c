"""``fraudstream up / status / down``: the embedded services of one machine.

MongoDB (data on disk under the state dir), the Tansu broker (memory storage: topics start empty
after a restart) and the simulator's label API run as detached processes recorded in
``<state dir>/stack.json``. A service whose ``FRAUDSTREAM_*`` variable is set is used instead of
started. ``up`` is idempotent: a healthy running stack is reused as it is.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_admin import DEFAULT_PARTITIONS, broker_answers, ensure_topic
from fraudstream.store.mongo import MongoStore, redacted
from fraudstream.tooling.stack import binaries
from fraudstream.tooling.stack.dagster_services import start_dagster, webserver_answers
from fraudstream.tooling.stack.postgres import PostgresServer, start_postgres
from fraudstream.tooling.stack.processes import free_port, is_running, spawn, terminate, wait_until

PREFERRED_PORTS = {"mongodb": 27017, "kafka": 9092, "label-api": 8765}
START_TIMEOUT = 60.0


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
    ) -> StackRecord:
        """Start what is not running, wait until healthy, create the topic; returns the record.
        With ``dagster``, also the Dagster daemon and webserver on the state dir's instance,
        whose storage is SQLite or, with ``postgres``, a PostgreSQL server of the stack."""
        record = StackRecord.load(self.state_dir)
        wanted = record is not None and (
            not dagster
            or (record.dagster_url is not None and bool(record.dagster_storage) == postgres)
        )
        if record and wanted and all(status.healthy for status in self.status()):
            return record
        if record:
            self.down()  # a partial or crashed stack: restart it whole
        processes: dict[str, int] = {}
        try:
            mongo_uri = config.env("MONGO_URI") or self._start_mongo(processes)
            kafka = config.env("KAFKA_BOOTSTRAP") or self._start_kafka(processes)
            label_api = self._start_label_api(processes)
            self._check_external(mongo_uri, kafka)
            ensure_topic(kafka, config.kafka_topic(), topic_partitions)
            dagster_url = dagster_storage = None
            if dagster:
                settings = {
                    "FRAUDSTREAM_MONGO_URI": mongo_uri,
                    "FRAUDSTREAM_KAFKA_BOOTSTRAP": kafka,
                    "FRAUDSTREAM_LABEL_API_URL": label_api,
                }
                if postgres:
                    server = self._start_postgres(processes)
                    settings |= server.dagster_env()
                    dagster_storage = server.url
                dagster_url = start_dagster(
                    self.state_dir, settings, processes, self.preferred_ports, postgres=postgres
                )
        except BaseException:
            for pid in processes.values():
                terminate(pid)
            raise
        record = StackRecord(
            kafka_bootstrap=kafka,
            mongo_uri=mongo_uri,
            label_api_url=label_api,
            processes=processes,
            started_at=StackRecord.now(),
            dagster_url=dagster_url,
            dagster_storage=dagster_storage,
        )
        record.save(self.state_dir)
        return record

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
        ]
        for name, address, answers in checks:
            if address:
                healthy = answers(address)
                statuses.append(ServiceStatus(name, healthy, address))
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

    def _port(self, service: str) -> int:
        return free_port(PREFERRED_PORTS[service] if self.preferred_ports else None)

    def _start_mongo(self, processes: dict[str, int]) -> str:
        port = self._port("mongodb")
        data = self.state_dir / "mongo"
        data.mkdir(parents=True, exist_ok=True)
        log = self.logs / "mongod.log"
        argv = [
            str(binaries.mongod()),
            "--dbpath", str(data),
            "--port", str(port),
            "--bind_ip", "127.0.0.1",
            "--wiredTigerCacheSizeGB", "1",
            "--quiet",
        ]  # fmt: skip
        processes["mongodb"] = spawn(argv, log)
        uri = f"mongodb://127.0.0.1:{port}"
        wait_until(lambda: MongoStore.answers(uri), START_TIMEOUT, "MongoDB", log)
        return uri

    def _start_postgres(self, processes: dict[str, int]) -> PostgresServer:
        """Dagster's storage in ``<state dir>/postgres``; its password, generated on first use,
        in ``<state dir>/postgres.password`` (readable by this user only)."""
        secret = self.state_dir / "postgres.password"
        if not secret.exists():
            secret.touch(mode=0o600)
            secret.write_text(secrets.token_hex(16))
        server = start_postgres(
            self.state_dir / "postgres",
            user="dagster",
            password=secret.read_text(),
            database="dagster",
        )
        processes["postgres"] = server.pid
        return server

    def _start_kafka(self, processes: dict[str, int]) -> str:
        port = self._port("kafka")
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

    def _start_label_api(self, processes: dict[str, int]) -> str:
        port = self._port("label-api")
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

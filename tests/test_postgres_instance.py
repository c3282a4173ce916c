"""Dagster on Postgres: the production instance (`docker/dagster.yaml`) against a real PostgreSQL
server the tests start themselves (initdb / pg_ctl from the machine): a partitioned
materialization through the CLI read back from Postgres, a sensor tick and its cursor written by
the daemon, a schedule's state written by one instance and read by another; and the embedded
stack's `fraudstream up --postgres`."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.scheduler.instigation import InstigatorState, InstigatorType

from fraudstream.config import StackRecord
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.stack.postgres import PostgresServer, postgres_bin_dir, start_postgres
from fraudstream.tooling.stack.processes import is_running, spawn, terminate
from tests.helpers.producing import RecordProducer, publish_hour
from tests.helpers.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres_bin_dir() is None,
        reason="PostgreSQL server binaries (initdb, pg_ctl) missing: apt-get install postgresql",
    ),
]
ROOT = Path(__file__).resolve().parents[1]
PASSWORD = f"pg-{secrets.token_hex(12)}"  # unique: found anywhere it must not be, it leaked


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    # Not pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="fraudstream-postgres-"))
    server = start_postgres(home, user="dagster", password=PASSWORD, database="dagster")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def production_env(
    postgres: PostgresServer,
    tmp_path: Path,
    stack: StackRecord,
    topic: str,
    database: str,
) -> dict[str, str]:
    """The environment of a process on the production instance: DAGSTER_HOME holding
    docker/dagster.yaml, a fresh Postgres database, this test's topic and Mongo database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "docker" / "dagster.yaml", home / "dagster.yaml")
    server = postgres.create_database(f"dagster_{secrets.token_hex(4)}")
    return {
        **os.environ,
        **server.dagster_env(),
        "DAGSTER_HOME": str(home),
        "DAGSTER_COMPUTE_LOG_DIR": str(tmp_path / "compute_logs"),
        "DAGSTER_MAX_CONCURRENT_RUNS": "2",
        "FRAUDSTREAM_STATE_DIR": str(tmp_path / "state"),
        "FRAUDSTREAM_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FRAUDSTREAM_KAFKA_TOPIC": topic,
        "FRAUDSTREAM_KAFKA_GROUP_ID": f"g-{topic}",
        "FRAUDSTREAM_MONGO_URI": stack.mongo_uri,
        "FRAUDSTREAM_MONGO_DATABASE": database,
    }


def second_instance(env: dict[str, str]) -> dg.DagsterInstance:
    """Another instance on the same storage, as a second process (webserver, daemon) has."""
    saved = {k: os.environ.get(k) for k in env if k.startswith("DAGSTER_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("DAGSTER_")})
    try:
        return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def dagster_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "dagster", *args, "-m", "definitions"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def query(env: dict[str, str], sql: str) -> list[tuple]:
    """Rows straight from Dagster's Postgres database (psycopg2, not through Dagster)."""
    connection = psycopg2.connect(
        host=env["DAGSTER_POSTGRES_HOST"], port=int(env["DAGSTER_POSTGRES_PORT"]),
        user=env["DAGSTER_POSTGRES_USER"], password=env["DAGSTER_POSTGRES_PASSWORD"],
        dbname=env["DAGSTER_POSTGRES_DB"],
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def storage_tables(env: dict[str, str]) -> dict[str, int]:
    """Rows per table of Dagster's database."""
    names = query(
        env, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return {name: query(env, f'SELECT count(*) FROM "{name}"')[0][0] for (name,) in names}


def everything_stored(env: dict[str, str]) -> str:
    """All Dagster wrote: run bodies, events (with their metadata), ticks, instigator state and
    the compute logs (the runs' stdout and stderr)."""
    tables = {"runs": "run_body", "event_logs": "event", "job_ticks": "tick_body",
              "jobs": "job_body"}  # fmt: skip
    texts = [str(row[0]) for t, c in tables.items() for row in query(env, f"SELECT {c} FROM {t}")]
    logs = Path(env["DAGSTER_COMPUTE_LOG_DIR"])
    texts += [p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()]
    return "\n".join(texts)


def test_the_cli_materializes_a_partition_into_postgres_and_another_instance_reads_it(
    production_env: dict[str, str], producer: RecordProducer, store: MongoStore
) -> None:
    publish_hour(producer)
    done = dagster_cli(
        production_env, "asset", "materialize", "--select", "transactions",
        "--partition", "2026-11-23-10:20",
    )  # fmt: skip
    assert store.collection("transactions").count_documents({}) == 20

    instance = second_instance(production_env)
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    [run] = instance.get_runs()
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["dagster/partition"] == "2026-11-23-10:20"
    latest = instance.get_latest_materialization_event(dg.AssetKey("transactions"))
    assert latest is not None and latest.run_id == run.run_id
    assert latest.asset_materialization.partition == "2026-11-23-10:20"
    assert instance.get_materialized_partitions(dg.AssetKey("transactions")) == {"2026-11-23-10:20"}
    # In Postgres itself, and nowhere else: no SQLite file appeared in DAGSTER_HOME.
    tables = storage_tables(production_env)
    assert tables["runs"] == 1 and tables["event_logs"] > 0
    assert not list(Path(production_env["DAGSTER_HOME"]).rglob("*.db"))
    # The database password is in none of the logs, events or metadata.
    assert PASSWORD not in done.stdout + done.stderr
    assert PASSWORD not in everything_stored(production_env)


def test_the_daemon_ticks_a_sensor_and_its_cursor_is_read_back_from_postgres(
    production_env: dict[str, str], store: MongoStore, tmp_path: Path
) -> None:
    labels = Path(production_env["FRAUDSTREAM_STATE_DIR"]) / "landing" / "labels"
    labels.mkdir(parents=True)
    (labels / "batch-1.csv").write_text("transaction_id,tx_fraud\nt1,0\nt2,1\nt3,0\n")
    daemon = spawn(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        tmp_path / "daemon.log", env=production_env, cwd=ROOT,
    )  # fmt: skip
    instance = second_instance(production_env)
    requested_by_sensor = dg.RunsFilter(tags={"fraudstream/trigger": "landing_files_sensor"})

    def labels_run_finished() -> bool:
        runs = instance.get_runs(requested_by_sensor)
        return bool(runs) and all(run.is_finished for run in runs)

    try:  # stopping the daemon interrupts its runs: wait until the run has finished
        wait_for(
            labels_run_finished,
            240,
            f"the landing sensor's labels run (daemon log: {tmp_path / 'daemon.log'})",
            poll=2,
        )
    finally:
        terminate(daemon)

    assert store.collection("labels").count_documents({}) == 3
    sensor = landing_sensor_state(instance)
    assert "batch-1.csv" in (sensor.instigator_data.cursor or "")
    ticks = instance.get_ticks(sensor.instigator_origin_id, sensor.selector_id)
    [requested] = [t for t in ticks if t.run_ids]
    [run] = instance.get_runs(dg.RunsFilter(run_ids=requested.run_ids))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["fraudstream/trigger"] == "landing_files_sensor"
    assert storage_tables(production_env)["job_ticks"] >= 1
    assert PASSWORD not in everything_stored(production_env)


def landing_sensor_state(instance: dg.DagsterInstance) -> InstigatorState:
    [state] = [
        s
        for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if s.instigator_name == "landing_files_sensor"
    ]
    return state


def test_a_schedule_stopped_by_one_instance_is_stopped_for_another(
    production_env: dict[str, str],
) -> None:
    def status() -> str:
        [state] = [
            s
            for s in second_instance(production_env).all_instigator_state(
                instigator_type=InstigatorType.SCHEDULE
            )
            if s.instigator_name == "hourly_training_schedule"
        ]
        return state.status.value

    dagster_cli(production_env, "schedule", "stop", "hourly_training_schedule")
    assert status() == "STOPPED"
    dagster_cli(production_env, "schedule", "start", "hourly_training_schedule")
    assert status() == "RUNNING"


def test_fraudstream_up_with_postgres_keeps_dagster_state_in_its_own_server() -> None:
    state = Path(tempfile.mkdtemp(prefix="fraudstream-up-")) / ".fraudstream"
    if os.geteuid() == 0:
        with pytest.raises(PermissionError, match="cannot enter"):
            EmbeddedStack(state, preferred_ports=False).up(dagster=True, postgres=True)
        EmbeddedStack(state, preferred_ports=False).down()
        state.parent.chmod(0o711)  # the postgres user may now pass through to its directory
    stack = EmbeddedStack(state, preferred_ports=False)

    def stack_env(record: StackRecord) -> dict[str, str]:
        port = record.dagster_storage.rsplit(":", 1)[1].split("/")[0]
        return {"DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": port,
                "DAGSTER_POSTGRES_USER": "dagster", "DAGSTER_POSTGRES_DB": "dagster",
                "DAGSTER_POSTGRES_PASSWORD": (state / "postgres.password").read_text()}  # fmt: skip

    try:
        record = stack.up(dagster=True, postgres=True)
        assert record.dagster_storage.startswith("postgresql://dagster@127.0.0.1:")
        assert (state / "postgres.password").stat().st_mode & 0o077 == 0
        assert stack.up(dagster=True, postgres=True) == record  # idempotent: reused as it is
        wait_for(
            lambda: storage_tables(stack_env(record)).get("daemon_heartbeats", 0) > 0,
            60,
            "the daemon's heartbeats in the stack's Postgres",
            poll=2,
        )
        first = record.processes["postgres"]
        stack.down()
        assert not is_running(first)
        # Started again, the same cluster: Dagster's history is still there.
        record = stack.up(dagster=True, postgres=True)
        assert storage_tables(stack_env(record))["daemon_heartbeats"] > 0
        assert not list((state / "dagster").rglob("*.db"))
    finally:
        stack.down()
        shutil.rmtree(state.parent, ignore_errors=True)

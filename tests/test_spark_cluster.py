"""The feature job on a Spark standalone cluster (a master and a worker started from PySpark's own
scripts, as the production image does): the same asset, only FRAUDSTREAM_SPARK_MASTER changed,
writes the same features as in local mode; so does a run through a Spark Connect server in front
of the cluster (FRAUDSTREAM_SPARK_REMOTE), as the stack runs one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pyspark
import pytest
import requests

from fraudstream.config import StackRecord
from fraudstream.features.job import remote_answers
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.delivery import TransactionPublisher
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.tooling.stack import spark_connect
from fraudstream.tooling.stack.processes import free_port, spawn, terminate, wait_until
from fraudstream.windows import TimeRange, parse_utc
from pipeline.assets.features import transaction_features
from pipeline.assets.ingestion import transactions
from pipeline.resources import MongoResource, spark_resource
from tests.helpers.stack import kafka_resource

ROOT = Path(__file__).resolve().parents[1]
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
HOURS = TimeRange(parse_utc("2026-11-10T10:00Z"), parse_utc("2026-11-10T12:00Z"))
WINDOW = "2026-11-10-11:30"


def master_state(ui_port: int) -> dict:
    return requests.get(f"http://127.0.0.1:{ui_port}/json/", timeout=2).json()


@pytest.fixture(scope="module")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A standalone master and one worker (1 core, 1 GiB) on loopback; yields (URL, UI port)."""
    logs = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port, worker_ui = free_port(None), free_port(None), free_port(None)
    env = {"SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_WORKER_DIR": str(logs / "work")}  # fmt: skip
    master = spawn(
        [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(ui_port)],
        logs / "master.log", env=env,
    )  # fmt: skip
    worker = spawn(
        [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker", "--cores", "1",
         "--memory", "1g", "--webui-port", str(worker_ui), f"spark://127.0.0.1:{port}"],
        logs / "worker.log", env=env,
    )  # fmt: skip
    try:

        def worker_alive() -> bool:
            try:
                return master_state(ui_port)["aliveworkers"] >= 1
            except (requests.RequestException, ValueError):
                return False

        wait_until(worker_alive, 90, "Spark master with a live worker", logs / "worker.log")
        yield f"spark://127.0.0.1:{port}", ui_port
    finally:
        terminate(worker)
        terminate(master)


def features_of(store: MongoStore) -> dict[str, dict]:
    return {
        d["_id"]: {k: v for k, v in d.items() if not k.endswith("_at")}
        for d in store.collection("transaction_features").find()
    }


def materialize_in_a_process(window: str, env: dict[str, str]) -> None:
    """A run in its own process, as the daemon launches it, configured by the environment."""
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "definitions",
         "--select", "transaction_features", "--partition", window],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_feature_job_runs_unchanged_on_a_standalone_cluster(
    spark_master: tuple[str, int],
    stack: StackRecord,
    topic: str,
    database: str,
    store: MongoStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulated = TransactionSimulator(SimulationConfig(seed=5, tx_per_day=3_000)).transactions(HOURS)
    with TransactionPublisher(stack.kafka_bootstrap, topic) as publisher:
        publisher.publish(simulated)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"kafka": kafka_resource(stack, topic), "mongo": MongoResource(
        uri=stack.mongo_uri, database=database)}  # fmt: skip
    hours = {"dagster/asset_partition_range_start": "2026-11-10-10:00",
             "dagster/asset_partition_range_end": "2026-11-10-11:50"}  # fmt: skip
    ingested = dg.materialize([transactions], resources=resources, instance=instance, tags=hours)
    assert ingested.success

    local = dg.materialize(
        [transaction_features],
        partition_key=WINDOW,
        resources={**resources, "spark": spark_resource()},
        instance=instance,
        selection=[transaction_features],
    )
    assert local.success
    local_features = features_of(store)
    store.collection("transaction_features").delete_many({})

    # On the cluster: the run's own Spark application.
    url, ui_port = spark_master
    mongo = {"FRAUDSTREAM_MONGO_URI": stack.mongo_uri, "FRAUDSTREAM_MONGO_DATABASE": database}
    cluster = {
        "FRAUDSTREAM_SPARK_MASTER": url,
        "FRAUDSTREAM_SPARK_DRIVER_HOST": "127.0.0.1",
        "FRAUDSTREAM_SPARK_EXECUTOR_MEMORY": "512m",
        "FRAUDSTREAM_SPARK_CORES_MAX": "1",
    }
    materialize_in_a_process(WINDOW, mongo | cluster)  # fmt: skip
    assert features_of(store) == local_features and len(local_features) > 0
    # The run really was an application of the cluster, and it has finished (the master
    # notes the end once the run's process has gone).
    wait_until(
        lambda: [a["name"] for a in master_state(ui_port)["completedapps"]] == ["fraudstream"],
        30, "the run's application to finish on the cluster", tmp_path / "none.log",
    )  # fmt: skip

    # Through a long-lived Spark Connect server in front of the cluster: the run only connects.
    store.collection("transaction_features").delete_many({})
    for name, value in cluster.items():
        monkeypatch.setenv(name, value)
    port = free_port(None)
    server = spawn(
        spark_connect.server_argv(port), tmp_path / "connect.log", env=spark_connect.server_env()
    )
    remote = f"sc://127.0.0.1:{port}"
    try:
        wait_until(lambda: remote_answers(remote), 120, "Spark Connect", tmp_path / "connect.log")
        materialize_in_a_process(WINDOW, mongo | {"FRAUDSTREAM_SPARK_REMOTE": remote})
        assert features_of(store) == local_features
        running = [a["name"] for a in master_state(ui_port)["activeapps"]]
        assert running == ["fraudstream-connect"]  # the server's application did the work
    finally:
        terminate(server)

"""Hands-free, end to end: the embedded stack with the Dagster daemon and webserver running, and no
launch by anyone. The simulator publishes two hours of history with labels; the sensors and the
automation ingest, train, score and check every closed window. Then, through the GraphQL
API as the UI does: a partition-range backfill re-materializes idempotently, and the Kafka-lag
sensor is switched off and on again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pymongo import MongoClient

from fraudstream.config import StackRecord
from fraudstream.stack.embedded import EmbeddedStack
from fraudstream.windows import WINDOW, partition_key, window_start

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
LOCATION = {"repositoryLocationName": "fraudstream", "repositoryName": "__repository__"}
NOW = datetime.now(UTC)
HISTORY_END = window_start(NOW)  # whole windows only
HISTORY_START = HISTORY_END - timedelta(hours=2)


@pytest.fixture(scope="module")
def hands_free(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackRecord, Path]]:
    state = tmp_path_factory.mktemp("hands-free") / ".fraudstream"
    overrides = {
        "FRAUDSTREAM_STATE_DIR": str(state),
        "FRAUDSTREAM_PARTITION_START": (HISTORY_START - timedelta(hours=1)).isoformat(),
        "FRAUDSTREAM_IDLE_CLOSE_SECONDS": "30",  # the history's last window closes soon after
    }
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    stack = EmbeddedStack(state, preferred_ports=False)
    try:
        record = stack.up(dagster=True)
        yield record, state
    finally:
        stack.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def graphql(record: StackRecord, query: str, **variables: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{record.dagster_url}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def counts_by_window(record: StackRecord, collection: str) -> dict[str, int]:
    db = MongoClient(record.mongo_uri).fraudstream
    grouped = db[collection].aggregate([{"$group": {"_id": "$partition_key", "n": {"$sum": 1}}}])
    return {row["_id"]: row["n"] for row in grouped}


def test_two_hours_of_history_flow_to_checked_predictions_by_themselves(
    hands_free: tuple[StackRecord, Path],
) -> None:
    record, _ = hands_free
    published = subprocess.run(
        [sys.executable, "-m", "fraudstream.cli", "simulate",
         "--start", HISTORY_START.isoformat(), "--end", HISTORY_END.isoformat(),
         "--tx-per-day", "30000", "--seed", "4", "--label-delay", "5m"],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    total = int(published.stdout.split("published ")[1].split()[0])
    closed = [
        partition_key(HISTORY_START + i * WINDOW)
        for i in range(int((HISTORY_END - HISTORY_START) / WINDOW))
    ]
    db = MongoClient(record.mongo_uri).fraudstream

    def everything_scored() -> bool:
        ingested = counts_by_window(record, "transactions")
        scored = counts_by_window(record, "ensemble_results")
        return sum(ingested.get(k, 0) for k in closed) == total and all(
            scored.get(k) == n for k, n in ingested.items()
        )

    wait_for(everything_scored, 600, "every closed window ingested and scored")
    assert db.models.count_documents({}) >= 1
    assert db.labels.count_documents({}) > 0

    checks = graphql(
        record,
        """query { assetNodes(assetKeys: [{path: ["ensemble_predictions"]}]) {
             assetChecksOrError { ... on AssetChecks { checks { name
               executionForLatestMaterialization { status } } } } } }""",
    )
    statuses = {
        c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
        for c in checks["assetNodes"][0]["assetChecksOrError"]["checks"]
    }
    assert statuses.get("flag_rate") == "SUCCEEDED", statuses

    # A backfill launched as the UI does re-materializes the range without changing a count.
    before = {c: counts_by_window(record, c) for c in ("transactions", "ensemble_results")}
    launched = graphql(
        record,
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams:
             $params) { __typename ... on LaunchBackfillSuccess { backfillId }
             ... on PythonError { message } } }""",
        params={"partitionNames": closed[:6], "assetSelection": [{"path": ["transactions"]}]},
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def backfill_done() -> bool:
        status = graphql(
            record,
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                 ... on PartitionBackfill { status } } }""",
            id=launched["backfillId"],
        )["partitionBackfillOrError"]["status"]
        assert status not in ("FAILED", "CANCELED"), status
        return status in ("COMPLETED", "COMPLETED_SUCCESS")

    wait_for(backfill_done, 300, "the backfill completed")
    time.sleep(40)  # give automation a tick to act on the re-materialized windows
    wait_for(lambda: not active_runs(record), 300, "no run in progress")
    after = {c: counts_by_window(record, c) for c in ("transactions", "ensemble_results")}
    assert after == before

    # The Kafka-lag sensor off and on again, as the UI's toggle does.
    selector = {**LOCATION, "sensorName": "kafka_lag_sensor"}
    state_query = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
                       ... on Sensor { id sensorState { id status } } } }"""
    sensor = graphql(record, state_query, s=selector)["sensorOrError"]
    assert sensor["sensorState"]["status"] == "RUNNING"
    graphql(
        record,
        """mutation($id: String) { stopSensor(id: $id) { __typename } }""",
        id=sensor["sensorState"]["id"],
    )
    stopped = graphql(record, state_query, s=selector)["sensorOrError"]["sensorState"]["status"]
    assert stopped == "STOPPED"
    graphql(
        record,
        """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }""",
        s=selector,
    )
    assert (
        graphql(record, state_query, s=selector)["sensorOrError"]["sensorState"]["status"]
        == "RUNNING"
    )
    for name in ("landing_files_sensor", "label_api_sensor", "automation_sensor"):
        status = graphql(record, state_query, s={**LOCATION, "sensorName": name})
        assert status["sensorOrError"]["sensorState"]["status"] == "RUNNING", name


def active_runs(record: StackRecord) -> list[str]:
    runs = graphql(
        record,
        """query { runsOrError(filter: {statuses: [QUEUED, STARTING, STARTED]}) {
             ... on Runs { results { runId } } } }""",
    )
    return [r["runId"] for r in runs["runsOrError"]["results"]]

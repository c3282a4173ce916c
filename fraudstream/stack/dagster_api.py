"""Dagster's GraphQL API as the UI uses it: launch runs and backfills, read and toggle sensors.

Used by the hands-free test and the freshness benchmark, which must act only as a user of the
running webserver would (no in-process shortcuts)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

LOCATION = {"repositoryLocationName": "fraudstream", "repositoryName": "__repository__"}

_SENSOR_STATE = """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
  ... on Sensor { sensorState { id status } } } }"""


class DagsterApiError(RuntimeError):
    """The webserver answered with GraphQL errors or an unexpected result."""


@dataclass(frozen=True)
class DagsterApi:
    """The GraphQL endpoint of a running Dagster webserver."""

    url: str
    timeout: float = 30.0

    def query(self, text: str, **variables: Any) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}/graphql",
            json={"query": text, "variables": variables},
            timeout=self.timeout,
        )
        answer.raise_for_status()
        body = answer.json()
        if "errors" in body:
            raise DagsterApiError(f"GraphQL errors from {self.url}: {body['errors']}")
        return body["data"]

    def sensor_status(self, name: str) -> str:
        """RUNNING or STOPPED."""
        state = self.query(_SENSOR_STATE, s={**LOCATION, "sensorName": name})
        return state["sensorOrError"]["sensorState"]["status"]

    def set_sensor(self, name: str, *, running: bool) -> None:
        """Switch a sensor on or off, as the UI's toggle does."""
        selector = {**LOCATION, "sensorName": name}
        if running:
            self.query(
                """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
                     __typename } }""",
                s=selector,
            )
        else:
            state = self.query(_SENSOR_STATE, s=selector)["sensorOrError"]["sensorState"]
            self.query(
                """mutation($id: String) { stopSensor(id: $id) { __typename } }""",
                id=state["id"],
            )

    def launch_backfill(self, assets: list[str], partitions: list[str]) -> str:
        """A partition backfill of ``assets`` (the UI's "Materialize selected"); its id."""
        launched = self.query(
            """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(
                 backfillParams: $params) { __typename ... on LaunchBackfillSuccess { backfillId }
                 ... on PythonError { message } } }""",
            params={
                "partitionNames": partitions,
                "assetSelection": [{"path": [name]} for name in assets],
            },
        )["launchPartitionBackfill"]
        if launched["__typename"] != "LaunchBackfillSuccess":
            raise DagsterApiError(f"backfill of {assets} not launched: {launched}")
        return launched["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        return self.query(
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                 ... on PartitionBackfill { status } } }""",
            id=backfill_id,
        )["partitionBackfillOrError"]["status"]

    def launch_run(self, assets: list[str], partition: str) -> str:
        """One run materializing ``assets`` for one partition (the UI's "Materialize"); its id."""
        launched = self.query(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
                 ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
            p={
                "selector": {
                    **LOCATION,
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": [name]} for name in assets],
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
            },
        )["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise DagsterApiError(f"run of {assets} for {partition} not launched: {launched}")
        return launched["run"]["runId"]

    def runs(self, statuses: list[str]) -> list[str]:
        """Ids of the runs in any of ``statuses`` (e.g. QUEUED, STARTED, FAILURE)."""
        answer = self.query(
            """query($s: [RunStatus!]) { runsOrError(filter: {statuses: $s}) {
                 ... on Runs { results { runId } } } }""",
            s=statuses,
        )
        return [run["runId"] for run in answer["runsOrError"]["results"]]

    def active_runs(self) -> list[str]:
        return self.runs(["QUEUED", "NOT_STARTED", "STARTING", "STARTED"])

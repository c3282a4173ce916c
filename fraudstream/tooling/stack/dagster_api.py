"""Dagster's GraphQL API as the UI uses it: launch runs, list backfills, toggle sensors, read
the checks' results.

Used by the hands-free test and the freshness benchmark, which must act only as a user of the
running webserver would (no in-process shortcuts)."""

from __future__ import annotations

import json
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

    def backfills(self) -> list[dict[str, Any]]:
        """The backfills, newest first: ``id``, ``status``, ``partitionNames``, ``assetSelection``
        (asset names)."""
        answer = self.query(
            """query { partitionBackfillsOrError { ... on PartitionBackfills { results {
                 id status partitionNames assetSelection { path } } } } }"""
        )["partitionBackfillsOrError"]["results"]
        for backfill in answer:
            backfill["assetSelection"] = ["/".join(a["path"]) for a in backfill["assetSelection"]]
        return answer

    def launch_run(
        self, assets: list[str], partition: str, tags: dict[str, str] | None = None
    ) -> str:
        """One run materializing ``assets`` for one partition (the UI's "Materialize", with
        ``tags`` added); its id."""
        launched = self.query(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
                 ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
            p={
                "selector": {
                    **LOCATION,
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [{"path": [name]} for name in assets],
                },
                "executionMetadata": {
                    "tags": [
                        {"key": key, "value": value}
                        for key, value in {"dagster/partition": partition, **(tags or {})}.items()
                    ]
                },
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

    def assets_requested_by(self, sensor: str) -> set[str]:
        """The assets of every run (any status) that ``sensor`` requested."""
        answer = self.query(
            """query($t: [ExecutionTag!]) { runsOrError(filter: {tags: $t}) {
                 ... on Runs { results { assetSelection { path } } } } }""",
            t=[{"key": "dagster/sensor_name", "value": sensor}],
        )
        return {
            "/".join(asset["path"])
            for run in answer["runsOrError"]["results"]
            for asset in run["assetSelection"] or []
        }

    def check_statuses(self) -> dict[str, str]:
        """Each asset check's latest execution: SUCCEEDED, FAILED (ERROR severity), WARNED (a
        failed WARN check), IN_PROGRESS, SKIPPED, EXECUTION_FAILED, or NOT_RUN."""
        nodes = self.query(
            """query { assetNodes { assetKey { path }
                 assetChecksOrError { ... on AssetChecks { checks { name } } } } }"""
        )["assetNodes"]
        checks = [
            (node["assetKey"]["path"], check["name"])
            for node in nodes
            for check in node["assetChecksOrError"].get("checks", [])
        ]
        if not checks:
            return {}
        # One query for all checks, an alias each (a partitioned check's latest execution is
        # not necessarily the one of its asset's latest materialization).
        latest = self.query(
            "query { "
            + " ".join(
                f"c{i}: assetCheckExecutions(assetKey: {{path: {json.dumps(path)}}}, "
                f"checkName: {json.dumps(name)}, limit: 1) {{ status evaluation {{ severity }} }}"
                for i, (path, name) in enumerate(checks)
            )
            + " }"
        )
        statuses = {}
        for i, (_, name) in enumerate(checks):
            [execution] = latest[f"c{i}"] or [None]
            status = execution["status"] if execution else "NOT_RUN"
            severity = ((execution or {}).get("evaluation") or {}).get("severity")
            statuses[name] = "WARNED" if status == "FAILED" and severity == "WARN" else status
        return statuses

    def active_runs(self) -> list[str]:
        return self.runs(["QUEUED", "NOT_STARTED", "STARTING", "STARTED"])

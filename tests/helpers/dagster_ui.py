"""What a test reads back from a running webserver, as the UI shows it."""

from __future__ import annotations

from fraudstream.tooling.stack.dagster_api import LOCATION, DagsterApi


def sensor_status(api: DagsterApi, name: str) -> str:
    """RUNNING or STOPPED."""
    state = api.query(
        """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
             ... on Sensor { sensorState { status } } } }""",
        s={**LOCATION, "sensorName": name},
    )
    return state["sensorOrError"]["sensorState"]["status"]


def backfill_status(api: DagsterApi, backfill_id: str) -> str:
    return api.query(
        """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
             ... on PartitionBackfill { status } } }""",
        id=backfill_id,
    )["partitionBackfillOrError"]["status"]


def partitions_with_metadata(api: DagsterApi, asset: str, label: str) -> list[str]:
    """The partitions, newest first, among the asset's recent materializations whose metadata
    carries ``label`` (a day's report may be measured while the next day's is not yet)."""
    answer = api.query(
        """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(limit: 50) { partition metadataEntries { label } } } } }""",
        key={"path": [asset]},
    )["assetOrError"]
    return [
        m["partition"]
        for m in answer.get("assetMaterializations") or []
        if any(entry["label"] == label for entry in m["metadataEntries"])
    ]

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


def latest_metadata_labels(api: DagsterApi, asset: str) -> set[str]:
    """The metadata labels of the asset's latest materialization (empty before the first)."""
    answer = api.query(
        """query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
             assetMaterializations(limit: 1) { metadataEntries { label } } } } }""",
        key={"path": [asset]},
    )["assetOrError"]
    materializations = answer.get("assetMaterializations") or []
    return {entry["label"] for m in materializations for entry in m["metadataEntries"]}

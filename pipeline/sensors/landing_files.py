"""The file-system sensor: new files in the landing directory become runs (watchdog snapshots)."""

import json
from pathlib import Path

import dagster as dg

from fraudstream import config
from fraudstream.ingest.batch_files import TRANSACTIONS_KIND, touched_windows
from fraudstream.ingest.landing import (
    SUFFIXES,
    LandingFile,
    UnreadableFile,
    describe,
    is_settled,
    processed,
    quarantine,
    record_requested,
)
from fraudstream.ingest.landing_watch import changed_files, from_state, take, to_state
from fraudstream.labels.sources import LABELS_KIND
from fraudstream.windows import window_of_key
from pipeline.assets.ingestion import transactions
from pipeline.assets.labels import labels
from pipeline.resources import MongoResource
from pipeline.sensors.kafka_lag import RANGE_END, RANGE_START

LANDING_FILES_SENSOR_DESCRIPTION = (
    "Watches `landing/transactions/` and `landing/labels/` with watchdog directory snapshots "
    "(kept in the cursor, so a restart diffs against the last tick). A new batch file "
    "re-materializes exactly the 10-minute windows its rows fall in (its rows merge with the "
    "stream's); a new label file requests a `labels` run. Each file once, by content hash; a "
    "file still being written waits for the next tick; an unreadable file is moved to "
    "`landing/quarantine/` with the reason, and the sensor carries on. Off: files wait; on "
    "again: every file that arrived meanwhile is picked up."
)


@dg.sensor(
    name="landing_files_sensor",
    asset_selection=[transactions, labels],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=LANDING_FILES_SENSOR_DESCRIPTION,
)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, mongo: MongoResource
) -> dg.SensorResult:
    """Runs for new, settled, never-seen files of the landing directory."""
    root = config.landing_dir()
    state = json.loads(context.cursor) if context.cursor else {"snapshot": {}, "pending": []}
    current = take(root)
    candidates = changed_files(from_state(root, state["snapshot"]), current)
    candidates |= {Path(p) for p in state["pending"]}
    candidates = {p for p in candidates if p.is_file() and _kind(root, p) is not None}
    ready = sorted(p for p in candidates if is_settled(p))
    pending = sorted(str(p) for p in candidates if not is_settled(p))
    requests, notes = [], []
    with mongo.store() as store:
        for kind in (LABELS_KIND, TRANSACTIONS_KIND):
            files = [describe(p) for p in ready if _kind(root, p) == kind]
            done = processed(store, kind, [f.sha256 for f in files])
            files = [f for f in files if f.sha256 not in done]
            if kind == LABELS_KIND and files:
                requests.append(_labels_request(files))
            for file in files if kind == TRANSACTIONS_KIND else []:
                try:
                    keys = touched_windows(file)
                except UnreadableFile as error:
                    target = quarantine(store, file, kind, "landing_files_sensor", str(error))
                    context.log.error(f"quarantined {file.path.name}: {error} -> {target}")
                    notes.append(f"quarantined {file.path.name}")
                    continue
                requests += _window_requests(file, keys)
                record_requested(store, file, kind, keys)
    cursor = json.dumps({"snapshot": to_state(current), "pending": pending})
    if not requests:
        waiting = f"; {len(pending)} file(s) still being written" if pending else ""
        reason = "; ".join(notes) if notes else "no new landing files"
        return dg.SensorResult(skip_reason=reason + waiting, cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def _kind(root: Path, path: Path) -> str | None:
    if path.suffix.lower() not in SUFFIXES or path.name.startswith("."):
        return None
    for kind in (LABELS_KIND, TRANSACTIONS_KIND):
        if path.parent == root / kind:
            return kind
    return None


def _labels_request(files: list[LandingFile]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key="labels-files:" + ",".join(f.sha256[:16] for f in files),
        asset_selection=[labels.key],
        run_config={
            "ops": {
                "labels": {"config": {"files": [str(f.path) for f in files], "read_api": False}}
            }
        },
        tags={"fraudstream/trigger": "landing_files_sensor"},
    )


def _window_requests(file: LandingFile, keys: list[str]) -> list[dg.RunRequest]:
    """One run per run of consecutive windows the file touches."""
    ranges: list[list[str]] = []
    for key in keys:
        if ranges and window_of_key(ranges[-1][-1]).end == window_of_key(key).start:
            ranges[-1].append(key)
        else:
            ranges.append([key])
    return [
        dg.RunRequest(
            run_key=f"batch-file:{file.sha256[:16]}:{keys_in_run[0]}",
            asset_selection=[transactions.key],
            run_config={"ops": {"transactions": {"config": {"batch_files": [str(file.path)]}}}},
            tags={
                RANGE_START: keys_in_run[0],
                RANGE_END: keys_in_run[-1],
                "fraudstream/trigger": "landing_files_sensor",
                "fraudstream/file": file.path.name,
            },
        )
        for keys_in_run in ranges
    ]

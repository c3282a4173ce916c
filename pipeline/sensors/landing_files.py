"""The file-system sensor: new files in the landing directory become runs (watchdog snapshots)."""

import json
from pathlib import Path

import dagster as dg

from fraudstream import config
from fraudstream.ingest.batch_files import touched_windows
from fraudstream.ingest.landing import (
    describe,
    is_settled,
    processed,
    quarantine,
    record_requested,
)
from fraudstream.ingest.landing_plan import KINDS, BatchFileRuns, LandingPlan, kind_of, plan_landing
from fraudstream.ingest.landing_watch import changed_files, from_state, take, to_state
from pipeline.keys import (
    INGESTION_PRIORITY,
    LABELS,
    PRIORITY,
    RANGE_END,
    RANGE_START,
    TRANSACTIONS,
    TRIGGER,
)
from pipeline.resources import MongoResource

SENSOR_NAME = "landing_files_sensor"

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
    name=SENSOR_NAME,
    asset_selection=[TRANSACTIONS, LABELS],
    minimum_interval_seconds=15,
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
    candidates = {p for p in candidates if p.is_file() and kind_of(root, p) is not None}
    ready = [describe(p) for p in candidates if is_settled(p)]
    pending = [p for p in candidates if p not in {f.path for f in ready}]
    with mongo.store() as store:
        done = set().union(
            *(
                processed(store, kind, [f.sha256 for f in ready if kind_of(root, f.path) == kind])
                for kind in KINDS
            )
        )
        plan = plan_landing(root, ready, pending, done, touched_windows)
        for file, reason in plan.unreadable:
            kind = kind_of(root, file.path) or ""
            target = quarantine(store, file, kind, SENSOR_NAME, reason, root)
            context.log.error(f"quarantined {file.path.name}: {reason} -> {target}")
        for batch in plan.batch_files:
            record_requested(store, batch.file, kind_of(root, batch.file.path) or "", batch.windows)
    cursor = json.dumps({"snapshot": to_state(current), "pending": [str(p) for p in plan.pending]})
    if not plan.requests_runs:
        return dg.SensorResult(skip_reason=plan.skip_reason(), cursor=cursor)
    return dg.SensorResult(run_requests=_run_requests(plan), cursor=cursor)


def _run_requests(plan: LandingPlan) -> list[dg.RunRequest]:
    requests = [_labels_request(plan)] if plan.label_files else []
    for batch in plan.batch_files:
        requests += _window_requests(batch)
    return requests


def _labels_request(plan: LandingPlan) -> dg.RunRequest:
    files = [str(f.path) for f in plan.label_files]
    return dg.RunRequest(
        run_key=plan.labels_run_key(),
        asset_selection=[LABELS],
        run_config={"ops": {"labels": {"config": {"files": files, "read_api": False}}}},
        tags={TRIGGER: SENSOR_NAME, PRIORITY: INGESTION_PRIORITY},
    )


def _window_requests(batch: BatchFileRuns) -> list[dg.RunRequest]:
    """One run per stretch of consecutive windows the file touches."""
    run_config = {"ops": {"transactions": {"config": {"batch_files": [str(batch.file.path)]}}}}
    return [
        dg.RunRequest(
            run_key=batch.run_key(stretch),
            asset_selection=[TRANSACTIONS],
            run_config=run_config,
            tags={
                RANGE_START: stretch[0],
                RANGE_END: stretch[-1],
                TRIGGER: SENSOR_NAME,
                PRIORITY: INGESTION_PRIORITY,
                "fraudstream/file": batch.file.path.name,
            },
        )
        for stretch in batch.runs()
    ]

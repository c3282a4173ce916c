"""The re-scoring sensor: windows scored before a clearly better eligible model version landed
are scored again by it (a newer full fit, or one that learned from many more frauds)."""

import json

import dagster as dg

from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.rescoring import as_ranges
from fraudstream.ml.scoring import windows_to_rescore
from fraudstream.store.collections import SCORE_COLLECTIONS, SCORED_WINDOWS
from fraudstream.windows import WINDOW, partition_key
from pipeline.keys import ENSEMBLE_PREDICTIONS, RANGE_END, RANGE_START, TRIGGER
from pipeline.resources import MongoResource, RescoringResource
from pipeline.runs import unfinished_runs

SENSOR_NAME = "model_rescoring_sensor"

MODEL_RESCORING_SENSOR_DESCRIPTION = (
    "Each tick compares, for every window scored within the horizon (7 days of data time by "
    "default), the version that scored it with the best promoted version it may use now (trained "
    "only on data from before the window). When that version is a newer full fit, or learned "
    "from 25 % more labelled frauds, the window is scored again: the stale windows as few "
    "`ensemble_predictions` runs as possible (up to a day each, the newest first), one batch at a "
    "time. The runs' metadata and `scored_windows` show the replaced version and the flags added "
    "and removed. Off: windows keep their scores."
)


@dg.sensor(
    name=SENSOR_NAME,
    asset_selection=[ENSEMBLE_PREDICTIONS],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=MODEL_RESCORING_SENSOR_DESCRIPTION,
)
def model_rescoring_sensor(
    context: dg.SensorEvaluationContext, mongo: MongoResource, rescoring: RescoringResource
) -> dg.SensorResult:
    """Scoring runs for the windows a better model version should score."""
    policy = rescoring.policy()
    requested: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    if pending := unfinished_runs(context.instance, SENSOR_NAME):
        # One batch at a time: the next tick sees what these runs left and the newest versions.
        return dg.SensorResult(
            skip_reason=f"waiting for {pending} re-scoring run(s) queued or in progress",
            cursor=context.cursor,
        )
    with mongo.store() as store:
        store.ensure_indexes(*SCORE_COLLECTIONS, SCORED_WINDOWS)
        stale = windows_to_rescore(store, ModelRegistry(store), policy)
    # A window already sent to its best version waits for that run (or, if it failed, for a
    # newer version): the failure shows in the UI instead of being retried every tick.
    due = [w for w in stale if requested.get(partition_key(w.start), 0) < w.best]
    current = {partition_key(w.start) for w in stale}
    cursor = {key: version for key, version in requested.items() if key in current}
    if not due:
        reason = (
            f"{len(stale)} stale windows already requested" if stale
            else "every window within the horizon is scored by its best eligible version"
        )  # fmt: skip
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(cursor))
    requests = []
    # Newest first: the run queue starts them in this order, and the newest windows are the
    # ones reviewers act on now.
    for window_range in reversed(as_ranges(due, policy.max_windows_per_run)):
        first, last = partition_key(window_range.start), partition_key(window_range.end - WINDOW)
        best = max(w.best for w in due if window_range.contains(w.start))
        requests.append(
            dg.RunRequest(
                run_key=f"rescore:{first}:{last}:v{best}",
                asset_selection=[ENSEMBLE_PREDICTIONS],
                tags={RANGE_START: first, RANGE_END: last, TRIGGER: SENSOR_NAME},
            )
        )
    cursor |= {partition_key(w.start): w.best for w in due}
    context.log.info(
        f"re-scoring {len(due)} windows in {len(requests)} runs: "
        + ", ".join(sorted({f"v{w.scored_by} -> v{w.best}" for w in due}))
    )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))

"""What the sensors read of their own runs."""

import dagster as dg

from pipeline.keys import TRIGGER

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def unfinished_runs(instance: dg.DagsterInstance, sensor: str) -> int:
    """How many runs ``sensor`` requested have not finished (counted up to 100)."""
    runs = instance.get_run_ids(
        filters=dg.RunsFilter(statuses=UNFINISHED, tags={TRIGGER: sensor}), limit=100
    )
    return len(runs)

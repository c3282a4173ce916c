"""Training schedules users see and toggle in the UI: the hourly training run, and a nightly
full retrain (training also refits by itself as the data grows: fraudstream/ml/lifecycle.py)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from pipeline.keys import FRAUD_MODELS, TRANSACTION_FEATURES, TRANSACTIONS
from pipeline.partitions import hourly_partitions
from pipeline.runs import UNFINISHED

HOUR = timedelta(hours=1)

hourly_training_job = dg.define_asset_job(
    "hourly_training_job",
    selection=[FRAUD_MODELS],
    description="The hourly incremental update of the fraud models (predictions follow by "
    "automation).",
)


full_retrain_job = dg.define_asset_job(
    "full_retrain_job",
    selection=[FRAUD_MODELS],
    config={"ops": {"fraud_models": {"config": {"full_retrain": True}}}},
    description="Retrain the three fraud models from scratch on every labelled transaction "
    "before the end of the chosen hour (instead of the hourly incremental update).",
)


HOURLY_TRAINING_SCHEDULE_DESCRIPTION = (
    "At :15 each hour, trains the hour that just closed unless automation already did (it "
    "does as soon as the hour's six windows have features) or a run is still ingesting or "
    "computing features (a catch-up: a version of the hour would learn part of it, and cover "
    "the hour for the automation's); ensures the hourly update happens even with the "
    "automation sensor off. Off: no scheduled training; automation still trains."
)


@dg.schedule(
    job=hourly_training_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=HOURLY_TRAINING_SCHEDULE_DESCRIPTION,
)
def hourly_training_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """The closed hour's training run, unless automation trained it."""
    hour = _closed_hour(context)
    if hour is None:
        return dg.SkipReason("no hour has closed since the partition start")
    trained = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FRAUD_MODELS, asset_partitions=[hour]), limit=1
    )
    if trained.records:
        return dg.SkipReason(f"hour {hour} is already trained (by automation)")
    busy = _catching_up(context.instance)
    if busy:
        return dg.SkipReason(f"{busy}: training waits for it (the next hour's tick trains)")
    return dg.RunRequest(run_key=f"hourly-training:{hour}", partition_key=hour)


def _catching_up(instance: dg.DagsterInstance) -> str | None:
    """An unfinished run that ingests transactions or computes their features, if any."""
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED), limit=100):
        busy = (run.asset_selection or frozenset()) & {TRANSACTIONS, TRANSACTION_FEATURES}
        if busy:
            names = ", ".join(sorted(key.to_user_string() for key in busy))
            return f"run {run.run_id[:8]} is materializing {names}"
    return None


DAILY_FULL_RETRAIN_SCHEDULE_DESCRIPTION = (
    "At 02:45 UTC, retrains the three models from scratch on the last 30 days up to the hour "
    "that just closed. Training already refits by itself when the labelled frauds or rows have "
    "doubled since the last full fit or a day of data time has passed; this schedule adds a "
    "nightly refit in steady state. Off: the data-driven refits go on."
)


@dg.schedule(
    job=full_retrain_job,
    cron_schedule="45 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=DAILY_FULL_RETRAIN_SCHEDULE_DESCRIPTION,
)
def daily_full_retrain_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """A full retrain up to the hour that just closed, once a day."""
    hour = _closed_hour(context)
    if hour is None:
        return dg.SkipReason("no hour has closed since the partition start")
    return dg.RunRequest(run_key=f"full-retrain:{hour}", partition_key=hour)


def _closed_hour(context: dg.ScheduleEvaluationContext) -> str | None:
    """The partition key of the hour before the tick's, if the partitions reach it."""
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    closed = scheduled.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HOUR
    if closed < hourly_partitions.start:
        return None
    return hourly_partitions.get_partition_key_for_timestamp(closed.timestamp())

"""The hourly incremental training run, as a schedule users see and toggle in the UI."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from definitions.models import fraud_models
from partitions import hourly_partitions

HOUR = timedelta(hours=1)

hourly_training_job = dg.define_asset_job(
    "hourly_training_job",
    selection=[fraud_models],
    description="The hourly incremental update of the fraud models (predictions follow by "
    "automation).",
)


HOURLY_TRAINING_SCHEDULE_DESCRIPTION = (
    "At :15 each hour, trains the hour that just closed unless automation already did (it "
    "does as soon as the hour's six windows have features); ensures the hourly update happens "
    "even with the automation sensor off. Off: no scheduled training; automation still "
    "trains."
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
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    closed = scheduled.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - HOUR
    if closed < hourly_partitions.start:
        return dg.SkipReason("no hour has closed since the partition start")
    hour = hourly_partitions.get_partition_key_for_timestamp(closed.timestamp())
    if hour in context.instance.get_materialized_partitions(fraud_models.key):
        return dg.SkipReason(f"hour {hour} is already trained (by automation)")
    return dg.RunRequest(run_key=f"hourly-training:{hour}", partition_key=hour)

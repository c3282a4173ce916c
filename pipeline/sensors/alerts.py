"""The alert sensor: every failed run — a failed blocking check fails its run — posted to the
alert webhook with what failed, or logged when no webhook is set."""

import dagster as dg
from dagster._utils.error import SerializableErrorInfo

from fraudstream import config
from fraudstream.reporting.alerts import Alert, FailedCheck
from pipeline.keys import RANGE_END, RANGE_START
from pipeline.resources import AlertWebhookResource

ALERT_SENSOR_DESCRIPTION = (
    "Posts every failed run to FRAUDSTREAM_ALERT_WEBHOOK_URL (JSON with a `text` line per fact: "
    "the job, its partitions, the checks that failed — a failed blocking check fails its run and "
    "stops what depends on it — the error and a link to the run), or logs it in this sensor's "
    "ticks when no webhook is set. A webhook that refuses the alert fails the tick; the same "
    "failure is posted again on the next one. Off: failures are only visible in the Runs page."
)


@dg.run_failure_sensor(
    name="alert_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=ALERT_SENSOR_DESCRIPTION,
)
def alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource) -> None:
    """Posts (or logs) an alert for the failed run."""
    alert = alert_for_run(
        context.instance, context.dagster_run, context.failure_event.message or ""
    )
    if alerts.webhook() is None:
        context.log.warning(f"no FRAUDSTREAM_ALERT_WEBHOOK_URL set; alert:\n{alert.text}")
        return
    alerts.post(alert)
    context.log.info(f"alert posted for run {alert.run_id}: {alert.summary}")


def alert_for_run(instance: dg.DagsterInstance, run: dg.DagsterRun, failure: str) -> Alert:
    """What the failed ``run`` did wrong, read from its event log (``failure``: the run's own
    failure message, used when no step says more)."""
    check_evaluation, step_failure = (
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.STEP_FAILURE,
    )
    records = instance.all_logs(run.run_id, of_type={check_evaluation, step_failure})
    checks = [
        FailedCheck(
            asset=evaluation.asset_key.to_user_string(),
            check=evaluation.check_name,
            severity=evaluation.severity.value,
            description=evaluation.description or "",
        )
        for record in records
        if record.dagster_event_type == check_evaluation
        and not (evaluation := record.dagster_event.event_specific_data).passed
    ]
    failures = [record for record in records if record.dagster_event_type == step_failure]
    steps = sorted({record.step_key for record in failures if record.step_key})
    errors = [
        _root_cause(record.dagster_event.step_failure_data.error)
        for record in failures
        if record.dagster_event.step_failure_data.error is not None
    ]
    error = "; ".join(errors) or failure or "no error recorded"
    what = (
        f"check {checks[0].asset}/{checks[0].check} failed"
        if checks
        else f"{', '.join(steps) or run.job_name} failed"
    )
    tags = run.tags
    partitions = tags.get("dagster/partition") or (
        f"{tags[RANGE_START]} .. {tags[RANGE_END]}" if RANGE_START in tags else None
    )
    base = config.dagster_url()
    return Alert(
        summary=what,
        run_id=run.run_id,
        job=run.job_name,
        error=error.splitlines()[0][:500] if error else "",
        partitions=partitions,
        failed_checks=checks,
        run_url=f"{base.rstrip('/')}/runs/{run.run_id}" if base else None,
    )


def _root_cause(error: SerializableErrorInfo) -> str:
    """The innermost error's message: what the asset raised, not Dagster's wrapper around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()

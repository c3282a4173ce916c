"""Declarative automation: what makes each downstream asset materialize by itself.

`AutomationCondition.eager()` only looks at the latest time window; without that part it acts on
every partition whose upstream changed — backfilled and late windows too. The automation sensor
emits backfills, so catch-up work over many windows runs as ranges (single-run backfill policy).
"""

from datetime import timedelta

import dagster as dg

from fraudstream import config
from pipeline.keys import ENSEMBLE_PREDICTIONS, FRAUD_MODELS, LABELS

# A change counts as handled once a run was requested after it, not when any run completes: a
# run that started before its upstream changed again (a late record, a correction landing while
# the window's features were computed) must not absorb that change, or the window stays stale.
# A change seen on the tick that notes the request is newer than the request, so it stays.
handled = (
    dg.AutomationCondition.newly_requested() & ~dg.AutomationCondition.any_deps_updated()
    | dg.AutomationCondition.initial_evaluation()
).with_label("requested since")

# Every partition whose upstream was updated, once no upstream partition is missing or running:
# Dagster's eager() on every time window (not only the latest), with that notion of handled.
every_window = (
    (dg.AutomationCondition.newly_missing() | dg.AutomationCondition.any_deps_updated()).since(
        handled
    )
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("every window")

# Training waits for all six 10-minute windows of its hour (the mapping of its feature dep) and
# does not retrain every past hour when labels arrive: late labels go into the next update.
hourly_training = every_window.ignore(dg.AssetSelection.assets(LABELS)).with_label(
    "every complete hour, new labels aside"
)

# A window is scored as soon as its features exist, by the newest version trained before it
# (the registry's choice): waiting for the previous hour's model would delay every window by up
# to an hour, and an hour without data would never get one. A new model does not re-score past
# windows. A window left unscored for want of any model (before the first version; its run
# succeeds without output) is retried as soon as the model version it maps to (the previous
# hour's) lands, and otherwise every 2 minutes: the windows of older hours map to versions that
# will never exist. A window whose scoring failed is not retried in a loop: the failure shows,
# and a backfill retries it once fixed.
# Two SINCE nodes in one asset's condition share their state when their children have the same
# kinds (Dagster 1.13 keys a SINCE's state by its children's kinds, not their content): "every
# window" is OR SINCE OR, so the retry is written as two SINCEs of single conditions.
models = dg.AssetSelection.assets(FRAUD_MODELS)
missing_retried = (
    dg.AutomationCondition.missing()
    & (
        dg.AutomationCondition.cron_tick_passed("*/2 * * * *").since_last_handled()
        | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated())
        .allow(models)
        .since_last_handled()
    )
    & ~dg.AutomationCondition.execution_failed()
    & ~dg.AutomationCondition.any_deps_missing().ignore(models)
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("unscored for want of a model: retried")
scoring = (every_window.ignore(models) | missing_retried).with_label(
    "every window with new features, or waiting for its model"
)


def refreshed_per_tick(cron: str) -> dg.AutomationCondition:
    """At most once per ``cron`` tick while the partition's inputs change, and once more after
    their last change."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).since(handled)
        & dg.AutomationCondition.cron_tick_passed(cron).since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    )


# The day's workbooks: hourly by default.
export_refresh = refreshed_per_tick(config.export_cron()).with_label(
    "changed since the last export tick"
)

# A day's quality report, once some window of the day is scored (labels alone, loaded before
# any scoring, leave nothing to report). Labels keep arriving for days after a transaction (the
# handbook assumes a 7-day feedback delay): a report is refreshed with them for a week, later
# only when asked for.
QUALITY_REPORT_DAYS = timedelta(days=7)
quality_refresh = (
    refreshed_per_tick(config.quality_report_cron())
    & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
        dg.AssetSelection.assets(ENSEMBLE_PREDICTIONS)
    )
    & dg.AutomationCondition.in_latest_time_window(QUALITY_REPORT_DAYS)
).with_label("some window scored, changed since the last quality-report tick, within a week")

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(include_sources=False),
    default_status=dg.DefaultSensorStatus.RUNNING,
    emit_backfills=True,
    minimum_interval_seconds=15,
    description="Evaluates the assets' automation conditions every 15 s and launches what they "
    "ask for as backfills (ranges of windows run as one run). Off: nothing downstream of ingestion "
    "runs by itself; on again: catches up every partition whose upstream changed meanwhile.",
)

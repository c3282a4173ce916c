"""Declarative automation: what makes each downstream asset materialize by itself.

`AutomationCondition.eager()` only looks at the latest time window; without that part it acts on
every partition whose upstream changed — backfilled and late windows too. The automation sensor
emits backfills, so catch-up work over many windows runs as ranges (single-run backfill policy).
Three conditions are ours: `UpstreamIdle` and `EverMaterialized`, facts about another asset as a
whole, which Dagster's operands (per partition, through the dependency mapping) cannot state, and
`BackfillUnlaunched`, Dagster's backfill-in-progress without the wait for the backfill daemon to
mark a finished run done; with them the sensor is evaluated in the code location.
"""

from abc import abstractmethod
from datetime import timedelta

import dagster as dg
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
from dagster._core.asset_graph_view.entity_subset import EntitySubset

from fraudstream import config
from pipeline.keys import (
    ENSEMBLE_PREDICTIONS,
    FRAUD_MODELS,
    LABELS,
    MODEL_QUALITY_REPORT,
    PRIORITY,
    REPORTING_PRIORITY,
    TRANSACTION_FEATURES,
    TRANSACTIONS,
)


def unlaunched_subset(view: AssetGraphView, key: dg.AssetKey) -> EntitySubset:
    """Partitions of ``key`` that an active backfill targets and has launched no run for yet.

    The daemon writes a run's planned partitions before it records them as requested: a
    partition of a backfill is always unlaunched, in a run, or done."""
    unlaunched = view.get_empty_subset(key=key)
    for backfill in view.get_inner_queryer_for_back_compat().get_active_backfill_datas():
        waiting = (
            backfill.target_subset
            - backfill.requested_subset
            - backfill.failed_and_downstream_subset
        )
        unlaunched = unlaunched.compute_union(
            view.get_entity_subset_from_asset_graph_subset(waiting, key)
        )
    return unlaunched


class BackfillUnlaunched(dg.AutomationCondition[dg.AssetKey]):
    """True for the partitions an active backfill targets and has launched no run for yet.

    With ``run_in_progress()``, what Dagster's ``in_progress()`` means for a dependency, less
    the wait for the backfill daemon to mark a finished run's partitions done (its next 30-s
    cycle, at every step of a catch-up)."""

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return "waiting in a backfill"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        unlaunched = unlaunched_subset(context.asset_graph_view, context.key)
        return dg.AutomationResult(
            context, context.candidate_subset.compute_intersection(unlaunched)
        )


# A dependency partition some run is materializing or a backfill will.
in_flight = (dg.AutomationCondition.run_in_progress() | BackfillUnlaunched()).with_label(
    "running or waiting in a backfill"
)
any_deps_in_flight = dg.AutomationCondition.any_deps_match(in_flight).with_label(
    "any deps running or waiting in a backfill"
)


class AssetStateCondition(dg.AutomationCondition[dg.AssetKey]):
    """A fact about another asset as a whole: true for every candidate partition, or for none.
    Subclasses say what the fact is (``state``, ``holds``)."""

    state = ""

    def __init__(self, asset: dg.AssetKey) -> None:
        self.asset = asset

    @property
    def requires_cursor(self) -> bool:
        return False

    @property
    def name(self) -> str:
        return f"{self.asset.to_user_string()} {self.state}"

    @abstractmethod
    async def holds(self, view: AssetGraphView, everything: EntitySubset) -> bool:
        """Whether the fact holds; ``everything``: all partitions of the asset."""

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        view = context.asset_graph_view
        holds = await self.holds(view, view.get_full_subset(key=self.asset))
        true = context.candidate_subset if holds else context.get_empty_subset()
        return dg.AutomationResult(context, true)


class UpstreamIdle(AssetStateCondition):
    """True while no run is materializing any partition of the asset and no backfill has
    partitions of it still to launch.

    A run over a range reports its partitions one by one (~15 ms each on SQLite): a tick during
    that report sees a prefix done and would start the downstream on it, then again on the rest —
    a catch-up's features in chunks, each chunk's training a full fit. Waiting for the upstream
    to go quiet turns a catch-up into one run per asset; in steady state it waits for the run of
    the newest window (seconds). A backfill whose runs have all been launched counts through
    those runs: Dagster marks its partitions done only on the backfill daemon's next 30-s cycle,
    which a catch-up would otherwise wait for at every step."""

    state = "idle"

    @property
    def description(self) -> str:
        return (
            f"no run is materializing {self.asset.to_user_string()} and no backfill has "
            "partitions of it still to launch"
        )

    async def holds(self, view: AssetGraphView, everything: EntitySubset) -> bool:
        running = await view.compute_run_in_progress_subset(key=self.asset, from_subset=everything)
        if not running.is_empty:
            return False
        return unlaunched_subset(view, self.asset).is_empty


class EverMaterialized(AssetStateCondition):
    """True once some partition of the asset has been materialized."""

    state = "materialized once"

    @property
    def description(self) -> str:
        return f"some partition of {self.asset.to_user_string()} has been materialized"

    async def holds(self, view: AssetGraphView, everything: EntitySubset) -> bool:
        missing = await view.compute_missing_subset(key=self.asset, from_subset=everything)
        return missing.size < everything.size


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
    & ~any_deps_in_flight
    & ~dg.AutomationCondition.in_progress()
).with_label("every window")

# A window's features wait while an ingestion run is still reporting its windows.
window_features = (every_window & UpstreamIdle(TRANSACTIONS)).with_label(
    "every window, once ingestion is idle"
)

# Training waits for all six 10-minute windows of its hour (the mapping of its feature dep) and
# does not retrain every past hour when labels arrive: late labels go into the next update. It
# learns from all the history before its hour, so it also waits while any window is still being
# ingested or featurized: a catch-up trains once, on all of it, not once per chunk.
hourly_training = (
    every_window.ignore(dg.AssetSelection.assets(LABELS))
    & UpstreamIdle(TRANSACTIONS)
    & UpstreamIdle(TRANSACTION_FEATURES)
).with_label("every complete hour, new labels aside, once ingestion and features are idle")

# A window is scored as soon as its features exist, by the newest version trained before it
# (the registry's choice): waiting for the previous hour's model would delay every window by up
# to an hour, and an hour without data would never get one. A new model does not re-score past
# windows. Nothing is scored before the first training run; a window left unscored for want of
# any model (training ran but found too little data; its run succeeds without output) is
# retried as soon as the model version it maps to (the previous hour's) lands, and otherwise
# every 2 minutes: the windows of older hours map to versions that will never exist. A window
# whose scoring failed is not retried in a loop: the failure shows, and a backfill retries it
# once fixed.
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
    & ~any_deps_in_flight
    & ~dg.AutomationCondition.in_progress()
).with_label("unscored for want of a model: retried")
# Before the first training run there is nothing to score with: a catch-up's windows are not
# asked for (a run that plans thousands of partitions only to find no model) until it lands.
scoring = (
    (every_window.ignore(models) | missing_retried) & EverMaterialized(FRAUD_MODELS)
).with_label("every window with new features, or waiting for its model, once training ran")


def refreshed_per_tick(cron: str) -> dg.AutomationCondition:
    """At most once per ``cron`` tick while the partition's inputs change, and once more after
    their last change; never while a scoring run is still reporting its windows (a catch-up's
    days would be written one by one as its run reports them)."""
    return (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).since(handled)
        & dg.AutomationCondition.cron_tick_passed(cron).since_last_handled()
        & UpstreamIdle(ENSEMBLE_PREDICTIONS)
        & ~any_deps_in_flight
        & ~dg.AutomationCondition.in_progress()
    )


# A day's workbooks and quality report have nothing to show before some window of the day is
# scored (transactions or labels alone, loaded before any scoring). Both are kept current for
# the last week, the days reviewers work on and labels still arrive for (the handbook assumes
# a 7-day feedback delay); an older day is written when asked for (a backfilled history of
# weeks would otherwise be exported and reported day by day).
some_window_scored = dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
    dg.AssetSelection.assets(ENSEMBLE_PREDICTIONS)
)
RECENT_DAYS = timedelta(days=7)
recent_day = dg.AutomationCondition.in_latest_time_window(RECENT_DAYS)

# The day's workbooks: hourly by default.
export_refresh = (
    refreshed_per_tick(config.export_cron()) & some_window_scored & recent_day
).with_label("some window scored, changed since the last export tick, within a week")

quality_refresh = (
    refreshed_per_tick(config.quality_report_cron()) & some_window_scored & recent_day
).with_label("some window scored, changed since the last quality-report tick, within a week")


def conditions_sensor(
    name: str,
    target: dg.AssetSelection,
    description: str,
    run_tags: dict[str, str] | None = None,
) -> dg.AutomationConditionSensorDefinition:
    """An automation sensor of ours: ranges as backfills, evaluated in the code location
    (`UpstreamIdle` and `BackfillUnlaunched` are Python of ours), at the configured interval."""
    return dg.AutomationConditionSensorDefinition(
        name,
        target=target,
        default_status=dg.DefaultSensorStatus.RUNNING,
        emit_backfills=True,
        use_user_code_server=True,
        minimum_interval_seconds=config.automation_interval_seconds(),
        run_tags=run_tags,
        description=description,
    )


automation_sensor = conditions_sensor(
    "automation_sensor",
    dg.AssetSelection.all(include_sources=False) - dg.AssetSelection.assets(MODEL_QUALITY_REPORT),
    "Evaluates the assets' automation conditions (every 15 s by default) and launches what they "
    "ask for as backfills (ranges of windows run as one run). Off: nothing downstream of "
    "ingestion runs by itself; on again: catches up every partition whose upstream changed "
    "meanwhile.",
)

# The same conditions for the quality reports, whose runs (one per day of the last week) queue
# behind the scoring and the workbooks: a sensor's run tags are the only way to order them.
quality_report_automation_sensor = conditions_sensor(
    "quality_report_automation_sensor",
    dg.AssetSelection.assets(MODEL_QUALITY_REPORT),
    "Evaluates `model_quality_report`'s automation condition like `automation_sensor` and "
    "launches its runs at a lower queue priority than scoring and exports. Off: no quality "
    "report refreshes by itself.",
    run_tags={PRIORITY: REPORTING_PRIORITY},
)

"""The automation conditions of the real definitions, evaluated against an instance whose
materializations the test reports (no runs, no services)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.definitions.assets.graph.asset_graph_subset import AssetGraphSubset
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventType,
    StepMaterializationData,
)
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id

from definitions import defs
from fraudstream import config
from pipeline.automation import automation_sensor, quality_report_automation_sensor
from pipeline.partitions import ten_minute_partitions

HOUR = datetime(2026, 1, 1, 11, tzinfo=UTC)
SCORING = dg.AssetKey("ensemble_predictions")


def window_key(at: datetime) -> str:
    return ten_minute_partitions.get_partition_key_for_timestamp(at.timestamp())


def report(instance: dg.DagsterInstance, asset: str, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition))


class Ticks:
    """Successive evaluations of one asset's condition, each seeing the previous one's cursor."""

    def __init__(self, instance: dg.DagsterInstance, asset: dg.AssetKey = SCORING) -> None:
        self.instance = instance
        self.asset = asset
        self.cursor = None

    def requested(self, at: datetime) -> set[str]:
        result = dg.evaluate_automation_conditions(
            defs,
            self.instance,
            asset_selection=dg.AssetSelection.assets(self.asset),
            evaluation_time=at,
            cursor=self.cursor,
        )
        self.cursor = result.cursor
        return set(result.get_requested_partitions(self.asset))


def test_a_new_model_version_scores_the_windows_waiting_for_it_at_once() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=10)) == set()
    earlier = [window_key(HOUR - timedelta(minutes=20)), window_key(HOUR - timedelta(minutes=10))]
    waiting = [window_key(HOUR), window_key(HOUR + timedelta(minutes=10))]
    report(instance, "fraud_models", "2026-01-01-09:00")  # a run that found too little data
    report(instance, "transaction_features", *earlier, *waiting)
    # Their features are new: scoring is asked for (and finds no model: nothing materializes).
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=20)) == {*earlier, *waiting}
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=30)) == set()

    # The previous hour's version lands: the windows it scores go at once, not at the next
    # 2-minute retry; windows of the hour before map to a version that will never exist.
    report(instance, "fraud_models", "2026-01-01-10:00")
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=40)) == set(waiting)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=50)) == set()
    assert ticks.requested(HOUR + timedelta(minutes=22, seconds=5)) == {*earlier, *waiting}


def test_nothing_is_asked_to_be_scored_before_the_first_training_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=10)) == set()
    windows = [window_key(HOUR - timedelta(minutes=10)), window_key(HOUR)]
    report(instance, "transaction_features", *windows)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=20)) == set()
    assert ticks.requested(HOUR + timedelta(minutes=22, seconds=5)) == set()  # nor on retry
    report(instance, "fraud_models", "2026-01-01-10:00")
    assert ticks.requested(HOUR + timedelta(minutes=22, seconds=15)) == set(windows)


def test_a_scored_window_is_not_scored_again_by_a_new_model() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=10)) == set()
    window = window_key(HOUR)
    report(instance, "transaction_features", window)
    report(instance, "fraud_models", "2026-01-01-10:00")
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=20)) == {window}
    report(instance, SCORING.path[0], window)
    report(instance, "fraud_models", "2026-01-01-10:00")
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=30)) == set()
    assert ticks.requested(HOUR + timedelta(minutes=22, seconds=5)) == set()


def test_a_window_changed_while_its_features_ran_gets_them_again() -> None:
    """A late record lands in a window whose features run is already under way: that run's
    materialization must not count as having handled the change."""
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("transaction_features"))
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=10)) == set()
    window = window_key(HOUR)
    report(instance, "transactions", window)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=20)) == {window}
    report(instance, "transactions", window)  # the late record, while the features run
    report(instance, "transaction_features", window)  # that run ends, computed before it
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=30)) == {window}
    report(instance, "transaction_features", window)
    assert ticks.requested(HOUR + timedelta(minutes=20, seconds=40)) == set()


def test_a_quality_report_waits_until_a_window_of_its_day_is_scored() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("model_quality_report"))
    day = "2026-01-01"
    assert ticks.requested(HOUR) == set()
    instance.report_runless_asset_event(dg.AssetMaterialization("labels"))
    # The hourly tick has passed and labels changed, but nothing of the day is scored yet.
    assert ticks.requested(HOUR + timedelta(hours=1, minutes=1)) == set()
    report(instance, SCORING.path[0], window_key(HOUR))
    assert ticks.requested(HOUR + timedelta(hours=1, minutes=2)) == {day}


def since_node_ids(
    condition: dg.AutomationCondition,
    key: dg.AssetKey,
    parent: str | None = None,
    index: int | None = None,
) -> list[str]:
    node = condition.get_node_unique_id(parent_unique_id=parent, index=index, target_key=key)
    found = [node] if condition.name == "SINCE" else []
    for i, child in enumerate(condition.children):
        found += since_node_ids(child, key, node, i)
    return found


def test_no_two_since_conditions_of_an_asset_share_their_state() -> None:
    # Dagster keys a SINCE's state by its children's kinds: two alike would read each other's
    # partitions (every scored window was scored again, twice, when the retry shared "every
    # window"'s state).
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        condition = graph.get(key).automation_condition
        if condition is not None:
            ids = since_node_ids(condition, key)
            assert len(ids) == len(set(ids)), key


class RangeRun:
    """A run over a range of partitions as the instance sees it while it reports them one by one:
    planned for all, materialized so far for some."""

    def __init__(self, instance: dg.DagsterInstance, asset: str, partitions: list[str]) -> None:
        self.instance = instance
        self.run = instance.add_run(
            DagsterRun(job_name="range", run_id=make_new_run_id(), status=DagsterRunStatus.STARTED)
        )
        for partition in partitions:
            planned = AssetMaterializationPlannedData(dg.AssetKey(asset), partition=partition)
            event = DagsterEvent.build_asset_materialization_planned_event("range", asset, planned)
            instance.report_dagster_event(event, self.run.run_id)
        self.asset = asset

    def reported(self, *partitions: str) -> None:
        for partition in partitions:
            event = DagsterEvent(
                DagsterEventType.ASSET_MATERIALIZATION.value,
                "range",
                step_key=self.asset,
                event_specific_data=StepMaterializationData(
                    dg.AssetMaterialization(self.asset, partition=partition)
                ),
            )
            self.instance.report_dagster_event(event, self.run.run_id)

    def finished(self) -> None:
        self.instance.handle_run_event(
            self.run.run_id, DagsterEvent(DagsterEventType.RUN_SUCCESS.value, "range")
        )


def test_a_range_still_reporting_its_windows_gets_its_features_in_one_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("transaction_features"))
    assert ticks.requested(HOUR + timedelta(hours=1)) == set()
    windows = [window_key(HOUR + timedelta(minutes=10 * i)) for i in range(6)]
    ingestion = RangeRun(instance, "transactions", windows)
    ingestion.reported(*windows[:3])
    # Half the range is stored: its features wait for the rest.
    assert ticks.requested(HOUR + timedelta(hours=1, seconds=15)) == set()
    ingestion.reported(*windows[3:])
    ingestion.finished()
    assert ticks.requested(HOUR + timedelta(hours=1, seconds=30)) == set(windows)


def test_training_waits_until_no_features_run_is_reporting() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("fraud_models"))
    assert ticks.requested(HOUR + timedelta(hours=2)) == set()
    first = [window_key(HOUR + timedelta(minutes=10 * i)) for i in range(6)]
    second = [window_key(HOUR + timedelta(hours=1, minutes=10 * i)) for i in range(6)]
    report(instance, "transactions", *first, *second)
    features = RangeRun(instance, "transaction_features", first + second)
    features.reported(*first)
    # The first hour's features are stored, the next hour's are not yet: no fit on a part.
    assert ticks.requested(HOUR + timedelta(hours=2, seconds=15)) == set()
    features.reported(*second)
    features.finished()
    hours = {"2026-01-01-11:00", "2026-01-01-12:00"}
    assert ticks.requested(HOUR + timedelta(hours=2, seconds=30)) == hours


def add_features_backfill(instance: dg.DagsterInstance, windows: list[str]) -> PartitionBackfill:
    """A backfill of these windows' features as automation requests it: nothing launched yet."""
    graph = defs.resolve_asset_graph()
    features = dg.AssetKey("transaction_features")
    backfill = PartitionBackfill.from_asset_graph_subset(
        backfill_id="features",
        backfill_timestamp=HOUR.timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        asset_graph_subset=AssetGraphSubset.from_asset_partition_set(
            {AssetKeyPartitionKey(features, window) for window in windows}, graph
        ),
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    return backfill


def test_training_follows_a_features_backfill_once_its_run_is_done() -> None:
    """The backfill daemon marks a backfill's partitions done on its next 30-s cycle only:
    training waits for the backfill's run, not for that bookkeeping."""
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("fraud_models"))
    assert ticks.requested(HOUR + timedelta(hours=2)) == set()
    windows = [window_key(HOUR + timedelta(minutes=10 * i)) for i in range(12)]
    report(instance, "transactions", *windows)
    report(instance, "transaction_features", *windows[:6])  # an earlier run's, before the backfill
    backfill = add_features_backfill(instance, windows)
    # Requested, not launched: its run is still to come.
    assert ticks.requested(HOUR + timedelta(hours=2, seconds=15)) == set()
    data = backfill.get_asset_backfill_data(defs.resolve_asset_graph())
    instance.update_backfill(
        backfill.with_asset_backfill_data(
            data.replace_requested_subset(data.target_subset),
            dynamic_partitions_store=instance,
            asset_graph=defs.resolve_asset_graph(),
        )
    )
    features = RangeRun(instance, "transaction_features", windows)
    assert ticks.requested(HOUR + timedelta(hours=2, seconds=30)) == set()  # launched, running
    features.reported(*windows)
    features.finished()
    # The backfill is still "requested" in Dagster's records; its run is done.
    assert instance.get_backfill("features").status == BulkActionStatus.REQUESTED
    hours = {"2026-01-01-11:00", "2026-01-01-12:00"}
    assert ticks.requested(HOUR + timedelta(hours=2, seconds=45)) == hours


def test_a_days_workbooks_wait_until_a_window_of_the_day_is_scored() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("excel_export"))
    assert ticks.requested(HOUR) == set()
    report(instance, "transactions", window_key(HOUR))
    # The hourly tick has passed and the day's transactions changed, but nothing is scored yet.
    assert ticks.requested(HOUR + timedelta(hours=1, minutes=1)) == set()
    report(instance, SCORING.path[0], window_key(HOUR))
    assert ticks.requested(HOUR + timedelta(hours=1, minutes=2)) == {"2026-01-01"}


def test_workbooks_wait_until_no_scoring_run_is_reporting() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("excel_export"))
    assert ticks.requested(HOUR) == set()
    first_day = [window_key(HOUR + timedelta(minutes=10 * i)) for i in range(3)]
    next_day = [window_key(HOUR + timedelta(days=1, minutes=10 * i)) for i in range(3)]
    scoring = RangeRun(instance, SCORING.path[0], first_day + next_day)
    scoring.reported(*first_day)
    # The first day's windows are all stored, the run still reports the next day's.
    assert ticks.requested(HOUR + timedelta(days=1, hours=1, minutes=1)) == set()
    scoring.reported(*next_day)
    scoring.finished()
    days = {"2026-01-01", "2026-01-02"}
    assert ticks.requested(HOUR + timedelta(days=1, hours=1, minutes=2)) == days


def test_automation_writes_the_workbooks_of_the_last_week_only() -> None:
    instance = dg.DagsterInstance.ephemeral()
    ticks = Ticks(instance, dg.AssetKey("excel_export"))
    now = HOUR + timedelta(days=10)
    assert ticks.requested(now) == set()
    for day in (HOUR, HOUR + timedelta(days=9)):  # ten days ago, yesterday
        report(instance, "transactions", window_key(day))
        report(instance, SCORING.path[0], window_key(day))
    assert ticks.requested(now + timedelta(hours=1, minutes=1)) == {"2026-01-10"}


def test_the_automation_interval_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRAUDSTREAM_AUTOMATION_INTERVAL_SECONDS", raising=False)
    assert automation_sensor.minimum_interval_seconds == config.automation_interval_seconds() == 15
    assert quality_report_automation_sensor.minimum_interval_seconds == 15
    monkeypatch.setenv("FRAUDSTREAM_AUTOMATION_INTERVAL_SECONDS", "5")
    assert config.automation_interval_seconds() == 5
    monkeypatch.setenv("FRAUDSTREAM_AUTOMATION_INTERVAL_SECONDS", "0")
    with pytest.raises(ValueError, match="whole number of seconds"):
        config.automation_interval_seconds()


def test_each_automated_asset_is_evaluated_by_exactly_one_sensor() -> None:
    """Two sensors evaluating one asset would each request it; none would leave it manual."""
    graph = defs.resolve_asset_graph()
    automated = {key for key in graph.get_all_asset_keys() if graph.get(key).automation_condition}
    main = automation_sensor.asset_selection.resolve(graph)
    reports = quality_report_automation_sensor.asset_selection.resolve(graph)
    assert not main & reports
    assert automated <= main | reports
    assert reports == {dg.AssetKey("model_quality_report")}
    assert quality_report_automation_sensor.run_tags["dagster/priority"] == "-1"

"""The automation conditions of the real definitions, evaluated against an instance whose
materializations the test reports (no runs, no services)."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from definitions import defs
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

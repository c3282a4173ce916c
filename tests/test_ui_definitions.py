"""What the UI shows about the definitions: every asset grouped, typed and owned, and a
description on every asset, check, sensor, schedule and job."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import yaml

from definitions import defs
from fraudstream.reporting.plots import markdown_image, pr_curves_png
from fraudstream.reporting.quality import LabelledScores
from fraudstream.reporting.reports import metrics_table, versions_table
from fraudstream.tooling.stack.dagster_services import POOL_LIMITS
from pipeline.freshness import window_freshness
from pipeline.keys import RANGE_END, RANGE_START
from pipeline.metadata import bounded, report_table, table

ROOT = Path(__file__).resolve().parents[1]

GROUPS = {
    "transactions": "ingestion",
    "labels": "ingestion",
    "transaction_features": "features",
    "fraud_models": "ml",
    "ensemble_predictions": "ml",
    "model_quality_report": "quality",
    "excel_export": "export",
}


def test_every_asset_has_its_group_kinds_owners_and_a_description() -> None:
    graph = defs.resolve_asset_graph()
    assets = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}
    assert {name: node.group_name for name, node in assets.items()} == GROUPS
    for name, node in assets.items():
        assert node.description and len(node.description) > 40, name
        assert node.owners and all(o.startswith("team:") for o in node.owners), name
        kinds = {tag.split("/", 2)[-1] for tag in node.tags if tag.startswith("dagster/kind/")}
        assert kinds and kinds <= {"kafka", "mongodb", "spark", "scikit-learn", "excel", "rest"}


def test_every_check_sensor_schedule_and_job_has_a_description() -> None:
    repository = defs.get_repository_def()
    checks = [spec for c in defs.asset_checks for spec in c.check_specs]
    assert len(checks) == 7
    for spec in checks:
        assert spec.description, spec.name
    for sensor in repository.sensor_defs:
        assert sensor.description, sensor.name
    for schedule in repository.schedule_defs:
        assert schedule.description, schedule.name
    jobs = [job for job in repository.get_all_jobs() if not job.name.startswith("__")]
    assert {job.name for job in jobs} >= {"full_retrain_job", "hourly_training_job"}
    for job in jobs:
        assert job.description, job.name


def test_pr_curves_are_a_png_and_absent_without_both_classes() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = {"good": labels + rng.normal(0, 0.5, 200), "random": rng.random(200)}
    png = pr_curves_png(labels, scores, "title")
    assert png is not None and png.startswith(b"\x89PNG")
    assert markdown_image(png, "curves").startswith("![curves](data:image/png;base64,iVBOR")
    assert pr_curves_png(np.zeros(50, dtype=int), scores, "title") is None


def test_tables_are_typed_so_the_ui_sorts_them_and_undefined_metrics_are_empty() -> None:
    value = table(["a", "b", "n", "flag"], [["x", 0.12345, 3, True], ["y", float("nan"), 4, False]])
    types = {column.name: column.type for column in value.schema.columns}
    assert types == {"a": "string", "b": "float", "n": "int", "flag": "bool"}
    assert [record.data for record in value.records] == [
        {"a": "x", "b": 0.1235, "n": 3, "flag": True},
        {"a": "y", "b": None, "n": 4, "flag": False},
    ]
    metrics = metrics_table(
        {"random_forest": {"auc_roc": 0.9, "average_precision": 0.7},
         "holdout": {"rows": 10.0, "frauds": 1.0}}
    )  # fmt: skip
    assert (metrics.header, metrics.rows) == (
        ["model", "AUC ROC", "Average Precision"],
        [["random_forest", 0.9, 0.7]],
    )


def test_the_versions_table_has_a_row_per_version_that_scored() -> None:
    scored = LabelledScores(
        labels=np.array([1, 0, 0, 1, 0]),
        confidence=np.array([0.9, 0.2, 0.1, 0.4, 0.5]),
        votes=np.array([True, False, False, False, True]),
        flagged=np.array([True, False, False, False, False]),
        per_model=np.full((5, 3), 0.5),
        versions=np.array([1, 1, 1, 2, 2]),
    )
    rows = [record.data for record in report_table(versions_table(scored)).records]
    assert [list(row.values()) for row in rows] == [
        ["v1", 3, 1, 1.0, 1.0, 1, 1.0, 1.0],
        ["v2", 2, 1, 0.0, 0.5, 0, 0.0, 0.0],
    ]


def test_compound_automation_conditions_have_labels() -> None:
    graph = defs.resolve_asset_graph()
    for name in ("transaction_features", "fraud_models", "ensemble_predictions", "excel_export"):
        condition = graph.get(dg.AssetKey(name)).automation_condition
        assert condition is not None and condition.get_label(), name


def test_training_runs_in_a_pool_of_one_set_by_both_stacks() -> None:
    pool = defs.get_assets_def("fraud_models").op.pool
    assert {pool: 1} == POOL_LIMITS  # the embedded stack sets it at start
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    daemon = " ".join(compose["services"]["dagster-daemon"]["command"])
    assert f"dagster instance concurrency set {pool} 1 && exec dagster-daemon run" in daemon


def test_the_streaming_assets_show_late_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = defs.resolve_asset_graph()
    for name in ("transactions", "ensemble_predictions"):
        policy = graph.get(dg.AssetKey(name)).freshness_policy
        assert policy.fail_window.to_timedelta() == timedelta(minutes=30), name
        assert policy.warn_window.to_timedelta() == timedelta(minutes=20), name
    monkeypatch.setenv("FRAUDSTREAM_LATE_AFTER_MINUTES", "45")
    assert window_freshness().fail_window.to_timedelta() == timedelta(minutes=45)
    monkeypatch.setenv("FRAUDSTREAM_LATE_AFTER_MINUTES", "5")
    with pytest.raises(ValueError, match="above 10"):
        window_freshness()


def test_a_range_keeps_its_tables_out_of_every_partitions_event() -> None:
    hours = dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00")

    @dg.asset(partitions_def=hours, backfill_policy=dg.BackfillPolicy.single_run())
    def counted(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        rows = [[key, 1] for key in context.partition_keys]
        return dg.MaterializeResult(
            metadata=bounded(context, {"rows": len(rows)}, {"per_hour": table(["hour", "n"], rows)})
        )

    with dg.DagsterInstance.ephemeral() as instance:
        small = dg.materialize(
            [counted], instance=instance, tags=hours_range("2026-11-01-00:00", "2026-11-01-05:00")
        )
        events = small.asset_materializations_for_node("counted")
        assert len(events) == 6 and all("per_hour" in e.metadata for e in events)

        large = dg.materialize(
            [counted], instance=instance, tags=hours_range("2026-11-01-00:00", "2026-11-02-23:00")
        )
        events = large.asset_materializations_for_node("counted")
        assert len(events) == 48 and not any("per_hour" in e.metadata for e in events)
        assert "observation of partition 2026-11-02-23:00" in events[0].metadata["details"].value
        [observed] = large.asset_observations_for_node("counted")
        assert observed.partition == "2026-11-02-23:00"
        assert len(observed.metadata["per_hour"].value.records) == 48


def hours_range(first: str, last: str) -> dict[str, str]:
    return {RANGE_START: first, RANGE_END: last}

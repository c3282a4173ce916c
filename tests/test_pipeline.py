"""The whole asset graph on real services: a simulated stream in Kafka and a handbook-format label
CSV in the landing directory, through ingestion, labels, features, training, scoring, the asset
checks, the Excel export and the daily quality report."""

import base64
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from definitions import defs
from fraudstream.config import StackRecord
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.delivery import TransactionPublisher
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.windows import TimeRange, parse_utc
from pipeline.resources import (
    LabelApiResource,
    QualityResource,
)

DAYS = TimeRange(parse_utc("2026-11-08T00:00Z"), parse_utc("2026-11-11T00:00Z"))
SCORED_DAY = TimeRange(parse_utc("2026-11-10T00:00Z"), DAYS.end)
ASSETS = [*defs.assets, *defs.asset_checks]


def day_range(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def pipeline_resources(resources: dict[str, object], api: str) -> dict[str, object]:
    return {
        **resources,
        "label_api": LabelApiResource(url=api, token="s3cret"),
        "quality_limits": QualityResource(),
    }


def test_from_kafka_and_a_label_file_to_checked_predictions_and_an_export(
    stack: StackRecord,
    topic: str,
    pipeline_resources: dict[str, object],
    store: MongoStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("FRAUDSTREAM_EXPORT_DIR", str(tmp_path / "exports"))
    simulated = TransactionSimulator(SimulationConfig(seed=11, tx_per_day=6_000)).transactions(DAYS)
    with TransactionPublisher(stack.kafka_bootstrap, topic) as publisher:
        publisher.publish(simulated)
    # The first two days' labels, as the handbook ships them (upper-case columns, extras).
    labelled = simulated[simulated["tx_datetime"] < SCORED_DAY.start]
    label_file = tmp_path / "landing" / "labels" / "handbook.csv"
    label_file.parent.mkdir(parents=True)
    labelled.rename(columns=str.upper).to_csv(label_file, index=False)
    past = time.time() - 60
    os.utime(label_file, (past, past))

    instance = dg.DagsterInstance.ephemeral()

    def materialize(selection: list[str], **kwargs: object) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            ASSETS, selection=selection, resources=pipeline_resources, instance=instance, **kwargs
        )
        assert result.success
        return result

    ingested = materialize(["transactions"], tags=day_range("2026-11-08-00:00", "2026-11-10-23:50"))
    assert checks_of(ingested)["dead_letter_rate"].passed
    assert store.collection("transactions").count_documents({}) == len(simulated)

    loaded = materialize(["labels"])
    assert checks_of(loaded)["labels_have_both_classes"].passed
    assert store.collection("labels").count_documents({}) == len(labelled)

    materialize(["transaction_features"], tags=day_range("2026-11-08-00:00", "2026-11-10-23:50"))
    early = materialize(["ensemble_predictions"], partition_key="2026-11-10-00:00")
    assert not early.asset_materializations_for_node("ensemble_predictions")  # no model yet
    trained = materialize(["fraud_models"], partition_key="2026-11-09-23:00")
    model_check = checks_of(trained)["model_holdout_quality"]
    assert "version 1" in model_check.description
    picture = trained.asset_materializations_for_node("fraud_models")[0].metadata
    assert png_in(picture["holdout_pr_curve"].value)

    scored_counts = []
    for _ in range(2):  # a re-run of the range changes no count
        scored = materialize(
            ["ensemble_predictions"], tags=day_range("2026-11-10-00:00", "2026-11-10-23:50")
        )
        scored_counts.append(
            [store.collection(c).count_documents({}) for c in
             ("model_predictions", "ensemble_results", "flagged_transactions")]
        )  # fmt: skip
    day_count = int((simulated["tx_datetime"] >= SCORED_DAY.start).sum())
    assert scored_counts[0] == scored_counts[1]
    assert scored_counts[0][:2] == [day_count, day_count]
    checks = checks_of(scored)
    assert checks["flag_rate"].passed, checks["flag_rate"].description
    assert checks["ensemble_agreement"].metadata["scored"].value == day_count
    assert "not measured" in checks["ensemble_quality"].description  # its labels come later
    metadata = scored.asset_materializations_for_node("ensemble_predictions")[0].metadata
    assert "trained on data before the window" in metadata["version_choice"].value

    exported = materialize(["excel_export"], partition_key="2026-11-10")
    metadata = exported.asset_materializations_for_node("excel_export")[0].metadata
    assert metadata["model_versions"].value == "v1"
    directory = tmp_path / "exports" / "2026-11-10"
    assert {p.name for p in directory.iterdir()} == {
        ".manifest.json",
        "summary.xlsx",
        *(f"hour-{h:02d}" for h in range(24)),
    }
    assert {p.name for p in (directory / "hour-23").iterdir()} == {
        "transactions.xlsx", "model_predictions.xlsx", "ensemble_results.xlsx",
        "flagged_transactions.xlsx", "scored_windows.xlsx",
    }  # fmt: skip
    assert metadata["hour_parts_written"].value == 24
    # Three rows per transaction, the flagged ones, and a row per scored window (144 a day).
    assert metadata["rows"].value == 3 * day_count + scored_counts[0][2] + 144
    # A range is written newest day first: the day reviewers work on is ready soonest.
    materialize(["excel_export"], tags=day_range("2026-11-09", "2026-11-10"))
    summaries = {
        day: (tmp_path / "exports" / day / "summary.xlsx").stat().st_mtime_ns
        for day in ("2026-11-09", "2026-11-10")
    }
    assert summaries["2026-11-10"] < summaries["2026-11-09"]

    # The day's quality report: not measurable before its labels, then the ensemble's AP over
    # the day's labelled transactions, per version, with a picture.
    report = materialize(["model_quality_report"], partition_key="2026-11-10")
    metadata = report.asset_materializations_for_node("model_quality_report")[0].metadata
    assert metadata["labelled"].value == 0
    late = tmp_path / "landing" / "labels" / "late.csv"
    scored_day = simulated[simulated["tx_datetime"] >= SCORED_DAY.start]
    scored_day[["transaction_id", "tx_fraud"]].to_csv(late, index=False)
    os.utime(late, (past, past))
    materialize(["labels"])
    report = materialize(["model_quality_report"], partition_key="2026-11-10")
    metadata = report.asset_materializations_for_node("model_quality_report")[0].metadata
    assert metadata["labelled"].value == day_count
    assert metadata["labelled_frauds"].value == int(scored_day["tx_fraud"].sum())
    stored = pd.DataFrame(list(store.collection("ensemble_results").find({}, {"confidence": 1})))
    truth = stored["_id"].map(scored_day.set_index("transaction_id")["tx_fraud"])
    expected = average_precision_score(truth, stored["confidence"])
    assert metadata["ensemble_average_precision"].value == pytest.approx(expected, abs=1e-4)
    [v1] = metadata["by_model_version"].value.records
    assert (v1.data["version"], v1.data["labelled"]) == ("v1", day_count)
    assert png_in(metadata["pr_curves"].value)


def png_in(markdown: str) -> bool:
    """The Markdown holds an inline PNG image."""
    encoded = markdown.split("data:image/png;base64,", 1)[1].rstrip(")")
    return base64.b64decode(encoded).startswith(b"\x89PNG")

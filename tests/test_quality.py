"""Check verdicts as plain functions of their numbers."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudstream.reporting.quality import (
    QualityThresholds,
    agreement,
    ensemble_quality,
    flag_rate,
    holdout_quality,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, partition_key

LIMITS = QualityThresholds(max_flag_rate=0.05, min_agreement=0.7, min_auc=0.75)


@pytest.mark.parametrize(
    ("flagged", "scored", "passed"), [(5, 100, True), (6, 100, False), (0, 0, True)]
)
def test_flag_rate_within_bounds(flagged: int, scored: int, passed: bool) -> None:
    verdict = flag_rate({"scored": scored, "flagged": flagged, "unanimous": scored}, LIMITS)
    assert verdict.passed is passed
    assert ("too many for review" in verdict.description) is not passed


def test_agreement_below_the_minimum_warns_with_the_rate() -> None:
    verdict = agreement({"scored": 10, "flagged": 0, "unanimous": 6}, LIMITS)
    assert not verdict.passed and "60.0% of 10" in verdict.description
    assert agreement({"scored": 10, "flagged": 0, "unanimous": 7}, LIMITS).passed


def test_holdout_quality_names_the_failing_model() -> None:
    good = {"auc_roc": 0.9, "average_precision": 0.6}
    metrics = {"random_forest": good, "gradient_boosting": good,
               "logistic_regression": {"auc_roc": 0.6, "average_precision": 0.5},
               "ensemble": good}  # fmt: skip
    verdict = holdout_quality(metrics, LIMITS)
    assert not verdict.passed and "logistic_regression auc_roc 0.600 < 0.75" in verdict.description
    nan = {"auc_roc": float("nan"), "average_precision": float("nan")}
    unmeasured = holdout_quality(dict.fromkeys(metrics, nan), LIMITS)
    assert unmeasured.passed and "not measurable" in unmeasured.description


def test_ensemble_quality_is_measured_on_the_labelled_scored_transactions(
    store: MongoStore,
) -> None:
    rng = np.random.default_rng(0)
    start = datetime(2026, 11, 23, 8, tzinfo=UTC)
    fraud = rng.random(400) < 0.05
    score = np.clip(fraud * 0.6 + rng.random(400) * 0.5, 0, 1)
    models = ("random_forest", "gradient_boosting", "logistic_regression")
    for i in range(400):
        key = partition_key(start + timedelta(minutes=i % 60))
        store.collection("ensemble_results").insert_one(
            {"_id": f"t{i}", "partition_key": key, "confidence": float(score[i]),
             "is_fraud": bool(score[i] > 0.5), "flagged": False, "fraud_votes": 0,
             "model_version": 1}
        )  # fmt: skip
        store.collection("model_predictions").insert_one(
            {"_id": f"t{i}", "partition_key": key,
             "probability": dict.fromkeys(models, float(score[i]))}
        )  # fmt: skip
        if i % 4:  # three in four labelled so far
            store.collection("labels").insert_one({"_id": f"t{i}", "tx_fraud": int(fraud[i])})
    limits = QualityThresholds(min_labelled=100, min_labelled_frauds=3)
    verdict = ensemble_quality(store, TimeRange(start, start + timedelta(hours=1)), limits)
    assert verdict.numbers["labelled"] == 300
    assert verdict.numbers["random_forest_auc_roc"] == verdict.numbers["ensemble_auc_roc"] > 0.9
    assert verdict.passed, verdict.description
    # A live window that does not end an hour leaves the 24 h read to the one that does.
    quarter = TimeRange(start + timedelta(minutes=10), start + timedelta(minutes=20))
    skipped = ensemble_quality(store, quarter, limits)
    assert skipped.passed and skipped.numbers == {"measured": "no"}
    last = TimeRange(start + timedelta(minutes=50), start + timedelta(hours=1))
    assert ensemble_quality(store, last, limits).numbers["labelled"] == 300

"""Check verdicts as plain functions of their numbers."""

import pytest

from fraudstream.quality import QualityThresholds, agreement, flag_rate, holdout_quality

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

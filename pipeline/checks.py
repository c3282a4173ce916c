"""Validation as asset checks: each stage's output against thresholds (`quality_limits`).

Blocking checks stop downstream work when a bad result must not spread: a broken producer (the
dead-letter rate), labels without both classes, a flag rate investigators cannot review. The
others warn. A check covers the run's range of windows (a backfill is checked as a whole).
"""

from collections.abc import Callable

import dagster as dg

from fraudstream.reporting import quality
from fraudstream.store.collections import MODELS
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange
from pipeline.keys import ENSEMBLE_PREDICTIONS, FRAUD_MODELS, LABELS, TRANSACTIONS
from pipeline.partitions import hourly_partitions, ten_minute_partitions
from pipeline.resources import MongoResource, QualityResource

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def result(verdict: quality.Verdict, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=severity,
        description=verdict.description,
        metadata=verdict.numbers,
    )


def window_check(
    asset: dg.AssetKey,
    name: str,
    verdict_of: Callable[[MongoStore, TimeRange, quality.QualityThresholds], quality.Verdict],
    description: str,
    *,
    blocking: bool = False,
) -> dg.AssetChecksDefinition:
    """A check of a 10-minute asset over the run's windows; ERROR severity when blocking."""

    @dg.asset_check(
        asset=asset,
        name=name,
        description=description,
        partitions_def=ten_minute_partitions,
        blocking=blocking,
    )
    def check(
        context: dg.AssetCheckExecutionContext,
        mongo: MongoResource,
        quality_limits: QualityResource,
    ) -> dg.AssetCheckResult:
        window = context.op_execution_context.partition_time_window
        with mongo.store() as store:
            verdict = verdict_of(
                store, TimeRange(window.start, window.end), quality_limits.thresholds()
            )
        return result(verdict, ERROR if blocking else WARN)

    return check


dead_letter_rate = window_check(
    TRANSACTIONS,
    "dead_letter_rate",
    quality.dead_letter_rate,
    "Share of the range's records rejected to `dead_letters`; above `max_dead_letter_rate` the "
    "producer is broken and features, training and scoring wait (blocking).",
    blocking=True,
)
transaction_volume = window_check(
    TRANSACTIONS,
    "transaction_volume",
    quality.volume,
    "The range's transaction count against the same windows a day earlier (warns below "
    "`min_volume_ratio` of it).",
)
ensemble_quality = window_check(
    ENSEMBLE_PREDICTIONS,
    "ensemble_quality",
    quality.ensemble_quality,
    "Per-model and ensemble AUC ROC / Average Precision (from `confidence`) and the vote's "
    "precision / recall on the labelled transactions scored over the lookback (24 h); measured "
    "by the runs whose windows include an hour's end, the others pass as not measured.",
)
ensemble_agreement = window_check(
    ENSEMBLE_PREDICTIONS,
    "ensemble_agreement",
    lambda s, w, limits: quality.agreement(quality.scored_counts(s, w), limits),
    "Share of transactions on which all three models vote alike (warns below `min_agreement`).",
)
flag_rate = window_check(
    ENSEMBLE_PREDICTIONS,
    "flag_rate",
    lambda s, w, limits: quality.flag_rate(quality.scored_counts(s, w), limits),
    "Share of transactions flagged for review; above `max_flag_rate` the export waits "
    "(blocking): investigators cannot review that many.",
    blocking=True,
)


@dg.asset_check(asset=LABELS, blocking=True)
def labels_have_both_classes(mongo: MongoResource) -> dg.AssetCheckResult:
    """Fraud and genuine labels are both present; training needs both (blocking)."""
    with mongo.store() as store:
        return result(quality.label_classes(store), ERROR)


@dg.asset_check(asset=FRAUD_MODELS, partitions_def=hourly_partitions)
def model_holdout_quality(
    context: dg.AssetCheckExecutionContext, mongo: MongoResource, quality_limits: QualityResource
) -> dg.AssetCheckResult:
    """AUC ROC and Average Precision of each model and of the ensemble of the version this run
    trained, on its evaluation set (recent labelled rows the promoted version never saw), against
    `min_auc` / `min_average_precision`."""
    until = context.op_execution_context.partition_time_window.end
    with mongo.store() as store:
        record = store.collection(MODELS).find_one({"trained_until": until}, sort=[("_id", -1)])
    if record is None:
        return dg.AssetCheckResult(
            passed=True, severity=WARN, description="no version trained for this hour (skipped)"
        )
    verdict = quality.holdout_quality(record["metrics"], quality_limits.thresholds())
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=WARN,
        description=f"version {record['_id']}: {verdict.description}",
        metadata={**verdict.numbers, "version": record["_id"]},
    )


quality_checks = [
    dead_letter_rate,
    transaction_volume,
    labels_have_both_classes,
    model_holdout_quality,
    ensemble_quality,
    ensemble_agreement,
    flag_rate,
]

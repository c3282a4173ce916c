"""Prediction assets: the ensemble's verdict on every transaction of each 10-minute window."""

from collections.abc import Iterator

import dagster as dg

from fraudstream.ml.ensemble import EnsembleThresholds
from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.scoring import NoModelVersion, score_range
from fraudstream.store.collections import SCORE_COLLECTIONS, SCORED_WINDOWS
from fraudstream.windows import TimeRange
from pipeline.automation import scoring
from pipeline.freshness import window_freshness
from pipeline.keys import FRAUD_MODELS, TRANSACTION_FEATURES
from pipeline.owners import ML
from pipeline.partitions import ten_minute_partitions
from pipeline.resources import MongoResource

_THRESHOLDS = EnsembleThresholds()


class PredictionConfig(dg.Config):
    """Where a probability becomes a vote and when a transaction is flagged for review."""

    vote_threshold: float = _THRESHOLDS.vote
    flag_confidence: float = _THRESHOLDS.flag_confidence


@dg.asset(
    partitions_def=ten_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[
        TRANSACTION_FEATURES,
        # A window is scored by a model trained before it, at the latest the previous hour's
        # version. Offsets count downstream (10-minute) windows: -6 is the hour before.
        dg.AssetDep(
            FRAUD_MODELS,
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-6, end_offset=-6),
        ),
    ],
    group_name="ml",
    owners=ML,
    automation_condition=scoring,
    kinds={"scikit-learn", "mongodb"},
    freshness_policy=window_freshness(),
    output_required=False,
)
def ensemble_predictions(
    context: dg.AssetExecutionContext, config: PredictionConfig, mongo: MongoResource
) -> Iterator[dg.MaterializeResult]:
    """Each window's transactions scored by the three models (`model_predictions`) and the
    ensemble (`ensemble_results`: majority vote, mean-probability confidence, flag), flagged ones
    copied to `flagged_transactions`. The model version is the promoted one whose training data
    ends closest before the window (or the oldest, recorded); a re-score by a better version
    (`model_rescoring_sensor`) reports the versions replaced and the flags that changed. Before
    the first model version the
    windows stay unmaterialized (automation retries them when the version they map to lands, or
    every 2 minutes). Re-runs replace, never duplicate."""
    window = context.partition_time_window
    thresholds = EnsembleThresholds(
        vote=config.vote_threshold, flag_confidence=config.flag_confidence
    )
    with mongo.store() as store:
        store.ensure_indexes(*SCORE_COLLECTIONS, SCORED_WINDOWS)
        try:
            report = score_range(
                store, ModelRegistry(store), TimeRange(window.start, window.end), thresholds
            )
        except NoModelVersion as waiting:
            context.log.warning(f"not scored yet: {waiting}")
            return
    for reason in sorted(report.reasons):
        context.log.info(reason)
    yield dg.MaterializeResult(
        metadata={
            "scored": report.scored,
            "flagged": report.flagged,
            "voted_fraud": report.frauds_voted,
            "agreement_rate": round(report.agreement_rate, 4),
            "model_versions": ", ".join(f"v{v}" for v in sorted(report.versions)) or "none",
            "version_choice": "; ".join(sorted(report.reasons)) or "no transactions",
            "rescored_windows": report.rescored_windows,
            "replaced_versions": ", ".join(
                f"v{v} ({n} windows)" for v, n in sorted(report.replaced_versions.items())
            )
            or "none",
            "flags_added": report.flags_added,
            "flags_removed": report.flags_removed,
        }
    )

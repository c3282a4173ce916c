"""Training assets: the hourly incremental update of the fraud models, and the full retrain."""

from datetime import timedelta

import dagster as dg

from definitions.automation import hourly_training
from definitions.features import transaction_features
from definitions.labels import labels
from definitions.owners import ML
from definitions.resources import MongoResource
from fraudstream.model_registry import ModelRegistry
from fraudstream.models import TrainingParams
from fraudstream.plots import markdown_image, pr_curves_png
from fraudstream.reports import metrics_table
from fraudstream.training import HoldoutScores, TrainingPolicy, train_step
from partitions import hourly_partitions
from spark_jobs.features import FEATURE_COLUMNS


class TrainingConfig(dg.Config):
    """How one training run chooses its data and judges its result."""

    full_retrain: bool = False
    promotion_margin: float = 0.02
    min_labels: int = 100
    full_fit_days: float = 30.0  # a full fit learns from this many recent days (0: all)


@dg.asset(
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[transaction_features, labels],
    group_name="ml",
    owners=ML,
    automation_condition=hourly_training,
    kinds={"scikit-learn", "mongodb"},
)
def fraud_models(
    context: dg.AssetExecutionContext, config: TrainingConfig, mongo: MongoResource
) -> dg.MaterializeResult:
    """A new version of the three fraud models (random forest, gradient boosting, logistic
    regression) each hour: the promoted version updated with the labelled transactions that
    arrived since its data ended (a full fit when none exists, or with `full_retrain`). Stored in
    the `models` registry; promoted when its holdout Average Precision does not drop more than
    `promotion_margin` below its parent's. Too little data is a skip, with the reason."""
    until = context.partition_time_window.end
    policy = TrainingPolicy(
        params=TrainingParams(min_labels=config.min_labels),
        promotion_margin=config.promotion_margin,
        full_fit_window=timedelta(days=config.full_fit_days) if config.full_fit_days else None,
    )
    with mongo.store() as store:
        registry = ModelRegistry(store)
        outcome = train_step(
            store, registry, FEATURE_COLUMNS, until, policy, full=config.full_retrain
        )
    if outcome.version is None:
        context.log.warning(f"training skipped: {outcome.skipped}")
        return dg.MaterializeResult(metadata={"skipped": outcome.skipped})
    version = outcome.version
    context.log.info(f"model version {version.version}: {version.decision}")
    return dg.MaterializeResult(
        metadata={
            "version": version.version,
            "kind": version.kind,
            "parent": version.parent if version.parent is not None else "none",
            "promoted": version.promoted,
            "decision": version.decision,
            "training_rows": version.rows,
            "training_frauds": version.frauds,
            "trained_until": version.trained_until.isoformat(),
            "metrics": dg.MetadataValue.md(metrics_table(version.metrics)),
            "holdout_pr_curve": dg.MetadataValue.md(
                holdout_picture(outcome.holdout, version.version)
            ),
        }
    )


def holdout_picture(holdout: HoldoutScores, version: int) -> str:
    """The version's precision-recall curves on its holdout, or why there are none."""
    png = pr_curves_png(holdout.labels, holdout.scores, f"model version {version}: holdout")
    if png is None:
        return (
            f"No curve: the holdout's {len(holdout.labels)} rows hold one class only "
            "(common for an hourly update; the full fits draw one)."
        )
    return markdown_image(png, f"precision-recall curves of version {version} on its holdout")


full_retrain_job = dg.define_asset_job(
    "full_retrain_job",
    selection=[fraud_models],
    config={"ops": {"fraud_models": {"config": {"full_retrain": True}}}},
    description="Retrain the three fraud models from scratch on every labelled transaction "
    "before the end of the chosen hour (instead of the hourly incremental update).",
)

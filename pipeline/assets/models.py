"""Training assets: the hourly training step (a full fit when the data has grown enough, else an
incremental update) and the full-retrain job."""

import math
from datetime import timedelta
from typing import Any

import dagster as dg

from fraudstream.ml.lifecycle import GatePolicy, RefitPolicy
from fraudstream.ml.models import TrainingParams
from fraudstream.ml.registry import ModelRegistry, ModelVersion
from fraudstream.ml.training import HoldoutScores, TrainingPolicy, train_step
from fraudstream.reporting.plots import markdown_image, pr_curves_png
from fraudstream.reporting.reports import metrics_table
from pipeline.automation import hourly_training
from pipeline.keys import LABELS, TRAINING_POOL, TRANSACTION_FEATURES
from pipeline.metadata import bounded, report_table
from pipeline.owners import ML
from pipeline.partitions import hourly_partitions
from pipeline.resources import MongoResource

_POLICY = TrainingPolicy()
_PARAMS, _REFIT, _GATE = _POLICY.params, _POLICY.refit, _POLICY.gate
_FULL_FIT_DAYS = (
    _POLICY.full_fit_window.total_seconds() / 86_400 if _POLICY.full_fit_window else 0.0
)


class TrainingConfig(dg.Config):
    """How one training run chooses its data, when it refits, and how it judges its result
    (defaults: fraudstream/ml/lifecycle.py)."""

    full_retrain: bool = False
    min_labels: int = _PARAMS.min_labels
    full_fit_days: float = _FULL_FIT_DAYS  # a full fit learns from this many recent days (0: all)
    # A full fit keeps every fraud and genuine rows up to this many rows in all (0: every row).
    max_full_fit_rows: int = _PARAMS.max_full_fit_rows or 0
    threads: int = _PARAMS.threads  # scikit-learn's threads (and BLAS/OpenMP pools) in a run
    refit_growth: float = _REFIT.growth  # frauds or rows since the last full fit, as its share
    refit_every_hours: float = _REFIT.every.total_seconds() / 3600  # of data time
    gate_min_frauds: int = _GATE.min_frauds  # in the evaluation set, for a measured decision
    promotion_margin: float = _GATE.margin

    def policy(self) -> TrainingPolicy:
        return TrainingPolicy(
            params=TrainingParams(
                min_labels=self.min_labels,
                max_full_fit_rows=self.max_full_fit_rows or None,
                threads=self.threads,
            ),
            refit=RefitPolicy(
                growth=self.refit_growth, every=timedelta(hours=self.refit_every_hours)
            ),
            gate=GatePolicy(min_frauds=self.gate_min_frauds, margin=self.promotion_margin),
            full_fit_window=timedelta(days=self.full_fit_days) if self.full_fit_days else None,
        )


@dg.asset(
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[TRANSACTION_FEATURES, LABELS],
    group_name="ml",
    owners=ML,
    automation_condition=hourly_training,
    kinds={"scikit-learn", "mongodb"},
    pool=TRAINING_POOL,
)
def fraud_models(
    context: dg.AssetExecutionContext, config: TrainingConfig, mongo: MongoResource
) -> dg.MaterializeResult:
    """A new version of the three fraud models (random forest, gradient boosting, logistic
    regression) each hour: a full fit when the labelled data has grown enough since the last one
    (frauds or rows doubled, or a day of data time), else the promoted version updated with the
    labelled transactions that arrived since. Judged against the promoted version on recent
    labelled rows neither has seen (promoted by a stated rule when they hold too few frauds) and
    stored in the `models` registry. Too little data is a skip, with the reason."""
    until = context.partition_time_window.end
    with mongo.store() as store:
        registry = ModelRegistry(store)
        outcome = train_step(store, registry, until, config.policy(), full=config.full_retrain)
    if outcome.version is None:
        context.log.warning(f"training skipped: {outcome.skipped}")
        return dg.MaterializeResult(metadata={"skipped": outcome.skipped})
    version = outcome.version
    context.log.info(f"model version {version.version}: {version.decision}")
    details: dict[str, Any] = {
        "holdout_pr_curve": dg.MetadataValue.md(holdout_picture(outcome.holdout, version))
    }
    if outcome.holdout is not None:
        details["metrics"] = report_table(metrics_table(version.metrics))
    return dg.MaterializeResult(
        metadata=bounded(
            context,
            {
                "version": version.version,
                "kind": version.kind,
                "parent": version.parent if version.parent is not None else "none",
                "promoted": version.promoted,
                "decision": version.decision,
                "fit_reason": version.fit_reason,
                **gate_metadata(version.gate),
                **ensemble_metadata(version.metrics),
                "training_rows": version.rows,
                "training_frauds": version.frauds,
                "trained_until": version.trained_until.isoformat(),
                "data_until": version.data_until.isoformat(),
            },
            details,
        )
    )


def ensemble_metadata(metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """The ensemble's AUC, AP and vote precision and recall on the evaluation set as numbers, so
    the UI charts them across versions (none when the version was promoted by rule)."""
    ensemble = metrics.get("ensemble", {})
    return {
        f"ensemble_{name}": round(ensemble[name], 4)
        for name in ("auc_roc", "average_precision", "precision", "recall")
        if name in ensemble and not math.isnan(ensemble[name])
    }


def gate_metadata(evidence: dict[str, Any]) -> dict[str, float | int]:
    """The promotion gate's numbers as plain metadata values, so the UI charts them across
    versions (absent ones are left out)."""
    names = ("candidate_ap", "incumbent_ap", "candidate_auc", "incumbent_auc",
             "ap_difference_low", "ap_difference_high")  # fmt: skip
    numbers: dict[str, float | int] = {
        f"evaluation_{key}": int(evidence[key]) for key in ("rows", "frauds") if key in evidence
    }
    return numbers | {
        f"gate_{name}": round(float(evidence[name]), 4)
        for name in names
        if evidence.get(name) is not None and not math.isnan(evidence[name])
    }


def holdout_picture(holdout: HoldoutScores | None, version: ModelVersion) -> str:
    """The version's precision-recall curves on its evaluation set, or why there are none."""
    if holdout is None:
        return f"No curve: no evaluation set ({version.decision})."
    number = version.version
    png = pr_curves_png(holdout.labels, holdout.scores, f"model version {number}: evaluation set")
    if png is None:
        return f"No curve: the evaluation set's {len(holdout.labels)} rows hold one class only."
    return markdown_image(png, f"precision-recall curves of version {number} on its evaluation set")

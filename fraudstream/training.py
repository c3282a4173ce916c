"""One training step of the model registry: a full fit, or an incremental update of the promoted
version with the labelled data that arrived since it; evaluation on a time-ordered holdout and the
promotion decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudstream.metrics import ranking_metrics
from fraudstream.model_registry import ModelRegistry, ModelVersion, promotion_decision
from fraudstream.models import MODEL_NAMES, FraudModels, NotEnoughData, TrainingParams
from fraudstream.mongo_store import MongoStore
from fraudstream.training_data import (
    SETTLE,
    current_cut,
    cut_rows,
    ensure_training_indexes,
    new_rows,
    time_split,
)


@dataclass(frozen=True)
class TrainingPolicy:
    """How a training step chooses its data and judges its result."""

    params: TrainingParams = field(default_factory=TrainingParams)
    holdout_share: float = 0.2
    promotion_margin: float = 0.02
    # An hour's holdout often holds no fraud, and its AP is then undefined. Promoting keeps the
    # hourly updates small (each starts from the latest promoted version); False requires a
    # measured AP before a version may score.
    promote_without_holdout_frauds: bool = True
    settle: timedelta = SETTLE
    # A full fit learns from the recent past only: fraud patterns drift (a compromised terminal
    # is only risky for weeks), and the oldest stored rows lack the 30-37 days of history their
    # features need. None: all of history.
    full_fit_window: timedelta | None = timedelta(days=30)


@dataclass(frozen=True)
class HoldoutScores:
    """The candidate's scores on its holdout rows, for pictures (not stored in the registry)."""

    labels: np.ndarray
    scores: dict[str, np.ndarray]  # per model and "ensemble"


@dataclass(frozen=True)
class TrainingOutcome:
    """A stored version, or the reason nothing was trained."""

    version: ModelVersion | None
    skipped: str | None = None
    holdout: HoldoutScores | None = None


def train_step(
    store: MongoStore,
    registry: ModelRegistry,
    columns: list[str],
    until: datetime,
    policy: TrainingPolicy,
    *,
    full: bool = False,
) -> TrainingOutcome:
    """A new version from the labelled feature rows stamped before ``until``: all of them for a
    full fit (or when nothing is promoted yet), else the promoted version updated with the rows
    that are new since its data cut (``training_data``).

    The candidate is evaluated on the latest ``holdout_share`` of each class after training on
    the rest, next to its parent on the same rows; the stored version is then fitted on all the
    rows, so none is held out of every version for good."""
    ensure_training_indexes(store)
    parent = registry.latest()
    full = full or parent is None
    if not full and until <= parent.trained_until:
        return TrainingOutcome(
            None,
            f"the hour ending {until.isoformat()} is already covered by version "
            f"{parent.version} (trained until {parent.trained_until.isoformat()}); its late labels "
            "go into the next hourly update (run full_retrain_job for a version that ends here)",
        )
    cut = current_cut(store, until, policy.settle)
    data = (
        cut_rows(store, columns, cut, policy.full_fit_window)
        if full
        else new_rows(store, columns, cut, parent.cut)
    )
    if data.empty:
        since = "" if full else f" new since version {parent.version}"
        return TrainingOutcome(
            None, f"no labelled transactions before {until.isoformat()}{since}: wait for labels"
        )
    train, holdout = time_split(data, policy.holdout_share)
    parent_models = registry.load(parent) if parent is not None else None
    base = FraudModels(columns, policy.params) if full else parent_models
    try:
        candidate = _fit(base, train, columns, full)
        scored = holdout_scores(candidate, holdout, columns)
        metrics = evaluate(scored)
        models = _fit(base, data, columns, full)
    except NotEnoughData as reason:
        return TrainingOutcome(None, str(reason))
    parent_ap = None
    if parent is not None:
        parent_scores = parent_models.predict_proba(_x(holdout, columns)).mean(axis=1)
        parent_ap = ranking_metrics(_y(holdout), parent_scores)["average_precision"]
        metrics["parent_ensemble"] = {"average_precision": parent_ap}
    candidate_ap = metrics["ensemble"]["average_precision"]
    if np.isnan(candidate_ap):
        promoted = parent is None or policy.promote_without_holdout_frauds
        decision = "holdout has one class only: AP undefined, " + (
            "promoted" if promoted else "kept, not promoted"
        )
    else:
        promoted, decision = promotion_decision(
            candidate_ap, None if parent_ap is None or np.isnan(parent_ap) else parent_ap,
            policy.promotion_margin,
        )  # fmt: skip
    record = ModelVersion(
        version=registry.next_version(),
        kind="full" if full else "incremental",
        parent=None if full else parent.version,
        trained_from=data["tx_datetime"].min().to_pydatetime(),
        trained_until=until,
        seen_until=cut.seen_until,
        rows=len(data),
        frauds=int(data["tx_fraud"].sum()),
        feature_columns=columns,
        metrics=metrics,
        promoted=promoted,
        decision=decision,
    )
    return TrainingOutcome(registry.save(record, models), holdout=scored)


def _fit(base: FraudModels, rows: pd.DataFrame, columns: list[str], full: bool) -> FraudModels:
    features, labels = _x(rows, columns), _y(rows)
    return base.fit(features, labels) if full else base.update(features, labels)


def holdout_scores(models: FraudModels, holdout: pd.DataFrame, columns: list[str]) -> HoldoutScores:
    """Each model's probability and the ensemble's mean probability on the holdout rows."""
    probabilities = models.predict_proba(_x(holdout, columns))
    scores = {name: probabilities[:, i] for i, name in enumerate(MODEL_NAMES)}
    return HoldoutScores(_y(holdout), scores | {"ensemble": probabilities.mean(axis=1)})


def evaluate(holdout: HoldoutScores) -> dict:
    """Ranking metrics of each model and of the ensemble on the holdout."""
    labels = holdout.labels
    metrics = {name: ranking_metrics(labels, score) for name, score in holdout.scores.items()}
    metrics["holdout"] = {"rows": float(len(labels)), "frauds": float(labels.sum())}
    return metrics


def _x(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].to_numpy(dtype=np.float64)


def _y(frame: pd.DataFrame) -> np.ndarray:
    return frame["tx_fraud"].to_numpy(dtype=np.int64)

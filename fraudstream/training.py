"""One training step of the model registry: a full fit, or an incremental update of the promoted
version with the labelled data that arrived since it; evaluation on a time-ordered holdout and the
promotion decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from fraudstream.metrics import ranking_metrics
from fraudstream.model_registry import ModelRegistry, ModelVersion, promotion_decision
from fraudstream.models import MODEL_NAMES, FraudModels, NotEnoughData, TrainingParams
from fraudstream.mongo_store import MongoStore
from fraudstream.training_data import labelled_features, time_split


@dataclass(frozen=True)
class TrainingPolicy:
    """How a training step chooses its data and judges its result."""

    params: TrainingParams = field(default_factory=TrainingParams)
    holdout_share: float = 0.2
    promotion_margin: float = 0.02


@dataclass(frozen=True)
class TrainingOutcome:
    """A stored version, or the reason nothing was trained."""

    version: ModelVersion | None
    skipped: str | None = None


def train_step(
    store: MongoStore,
    registry: ModelRegistry,
    columns: list[str],
    until: datetime,
    policy: TrainingPolicy,
    *,
    full: bool = False,
) -> TrainingOutcome:
    """Train on labelled feature rows stamped before ``until``: all of them for a full fit (or
    when nothing is promoted yet), else those since the promoted version's data ended."""
    parent = registry.latest()
    full = full or parent is None
    since = None if full else parent.trained_until
    data = labelled_features(store, columns, since, until)
    if data.empty:
        return TrainingOutcome(None, f"no labelled transactions between {since} and {until}")
    train, holdout = time_split(data, policy.holdout_share)
    try:
        if full:
            models = FraudModels(columns, policy.params).fit(_x(train, columns), _y(train))
        else:
            models = registry.load(parent).update(_x(train, columns), _y(train))
    except NotEnoughData as reason:
        return TrainingOutcome(None, str(reason))
    metrics = evaluate(models, holdout, columns)
    parent_ap = None
    if parent is not None:
        parent_scores = registry.load(parent).predict_proba(_x(holdout, columns)).mean(axis=1)
        parent_ap = ranking_metrics(_y(holdout), parent_scores)["average_precision"]
        metrics["parent_ensemble"] = {"average_precision": parent_ap}
    candidate_ap = metrics["ensemble"]["average_precision"]
    if np.isnan(candidate_ap):
        promoted, decision = parent is None, "holdout has one class only: AP undefined"
    else:
        promoted, decision = promotion_decision(
            candidate_ap, None if parent_ap is None or np.isnan(parent_ap) else parent_ap,
            policy.promotion_margin,
        )  # fmt: skip
    record = ModelVersion(
        version=registry.next_version(),
        kind="full" if full else "incremental",
        parent=None if full else parent.version,
        trained_from=train["tx_datetime"].min().to_pydatetime(),
        trained_until=until,
        rows=len(train),
        frauds=int(train["tx_fraud"].sum()),
        feature_columns=columns,
        metrics=metrics,
        promoted=promoted,
        decision=decision,
    )
    return TrainingOutcome(registry.save(record, models))


def evaluate(models: FraudModels, holdout: pd.DataFrame, columns: list[str]) -> dict:
    """Ranking metrics of each model and of the ensemble's mean probability on the holdout."""
    probabilities = models.predict_proba(_x(holdout, columns))
    labels = _y(holdout)
    metrics = {
        name: ranking_metrics(labels, probabilities[:, i]) for i, name in enumerate(MODEL_NAMES)
    }
    metrics["ensemble"] = ranking_metrics(labels, probabilities.mean(axis=1))
    metrics["holdout"] = {"rows": float(len(labels)), "frauds": float(labels.sum())}
    return metrics


def _x(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].to_numpy(dtype=np.float64)


def _y(frame: pd.DataFrame) -> np.ndarray:
    return frame["tx_fraud"].to_numpy(dtype=np.int64)

"""One training step of the model registry: a full fit or an incremental update of the promoted
version (``lifecycle.refit_reason`` decides which), judged against the incumbent on rows neither
has seen (``lifecycle.gate_decision``), stored with its lineage and the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudstream.features.contract import FEATURE_COLUMNS
from fraudstream.ml.ensemble import EnsembleThresholds, decide
from fraudstream.ml.lifecycle import (
    FullFit,
    GatePolicy,
    GateResult,
    RefitPolicy,
    evaluation_split,
    gate_decision,
    refit_reason,
    rule_decision,
)
from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.ml.models import MODEL_NAMES, FraudModels, NotEnoughData, TrainingParams
from fraudstream.ml.registry import ModelRegistry, ModelVersion
from fraudstream.ml.training_data import (
    current_cut,
    cut_rows,
    new_rows,
)
from fraudstream.store.collections import LABELS, TRANSACTION_FEATURES
from fraudstream.store.mongo import MongoStore


@dataclass(frozen=True)
class TrainingPolicy:
    """How a training step chooses its data, when it refits, and how it judges the result."""

    params: TrainingParams = field(default_factory=TrainingParams)
    refit: RefitPolicy = field(default_factory=RefitPolicy)
    gate: GatePolicy = field(default_factory=GatePolicy)
    # A full fit learns from the recent past only: fraud patterns drift (a compromised terminal
    # is only risky for weeks), and the oldest stored rows lack the 30-37 days of history their
    # features need. None: all of history.
    full_fit_window: timedelta | None = timedelta(days=30)
    feature_columns: list[str] = field(default_factory=lambda: list(FEATURE_COLUMNS))


@dataclass(frozen=True)
class HoldoutScores:
    """The trial fit's scores on the evaluation rows, for pictures (not stored in the registry)."""

    labels: np.ndarray
    scores: dict[str, np.ndarray]  # per model and "ensemble"
    votes: dict[str, np.ndarray]  # each model's vote, and the ensemble's majority


@dataclass(frozen=True)
class TrainingOutcome:
    """A stored version, or the reason nothing was trained."""

    version: ModelVersion | None
    skipped: str | None = None
    holdout: HoldoutScores | None = None


def train_step(
    store: MongoStore,
    registry: ModelRegistry,
    until: datetime,
    policy: TrainingPolicy,
    *,
    full: bool = False,
) -> TrainingOutcome:
    """A new version from the labelled feature rows stamped before ``until``: the promoted
    version updated with the rows new since its data cut, or a full fit on the last
    ``full_fit_window`` of the cut when asked (``full``), when nothing is promoted, when the
    refit policy says the data has grown enough since the last full fit, or once when no new
    labels came and the promoted version is an update (its lineage consolidated)."""
    columns = policy.feature_columns
    store.ensure_indexes(TRANSACTION_FEATURES, LABELS)
    parent = registry.latest()
    if parent is not None and not full and until <= parent.trained_until:
        return TrainingOutcome(
            None,
            f"the hour ending {until.isoformat()} is already covered by version "
            f"{parent.version} (trained until {parent.trained_until.isoformat()}); its late labels "
            "go into the next update (run full_retrain_job for a version that ends here)",
        )
    cut = current_cut(store, until)
    new = new_rows(store, columns, cut, parent.cut) if parent is not None else None
    if full:
        reason = "full retrain requested"
    elif new is not None and new.empty:
        if parent.kind == "full":
            return TrainingOutcome(
                None,
                f"no labelled transactions before {until.isoformat()} new since version "
                f"{parent.version}: wait for labels",
            )
        # The labels have paused (a catch-up past its labelled days, a quiet hour): the
        # promoted lineage is refitted once, so what scores next is a fit on all that is known.
        reason = (
            f"refit: no labelled rows new since v{parent.version}, an update of the full fit "
            f"v{parent.full_fit_version}: consolidating its lineage into one full fit"
        )
    else:
        reason = _refit_reason(registry, parent, new, until, policy)
    data = new if reason is None else cut_rows(store, columns, cut, policy.full_fit_window)
    if data.empty:
        return TrainingOutcome(
            None, f"no labelled transactions before {until.isoformat()}: wait for labels"
        )
    parent_models = registry.load(parent) if parent is not None else None
    base = FraudModels(columns, policy.params) if reason is not None else parent_models
    unseen = data if new is None else new
    try:
        models, gate, holdout = _fit_and_judge(
            base, reason is not None, parent, parent_models, data, unseen, columns, policy
        )
    except NotEnoughData as why:
        return TrainingOutcome(None, str(why))
    data_until = data["tx_datetime"].max().to_pydatetime()
    record = ModelVersion(
        version=registry.next_version(),
        kind="incremental" if reason is None else "full",
        parent=None if reason is not None else parent.version,
        trained_from=data["tx_datetime"].min().to_pydatetime(),
        trained_until=until,
        seen_until=cut.seen_until,
        rows=len(data),
        frauds=int(data["tx_fraud"].sum()),
        feature_columns=columns,
        metrics=_metrics(holdout, gate),
        promoted=gate.promoted,
        decision=gate.decision,
        data_until=data_until if reason is not None else max(data_until, parent.data_until),
        full_fit=None if reason is not None else parent.full_fit_version,
        seen_rows=models.trained_rows,
        seen_frauds=models.trained_frauds,
        fit_reason=reason or f"update of v{parent.version} with {len(data)} new labelled rows",
        gate=gate.evidence,
    )
    return TrainingOutcome(registry.save(record, models), holdout=holdout)


def _refit_reason(
    registry: ModelRegistry,
    parent: ModelVersion | None,
    new: pd.DataFrame | None,
    until: datetime,
    policy: TrainingPolicy,
) -> str | None:
    """The refit policy applied to the last full fit (promoted or not: a refused refit is not
    retried every hour) and what the promoted lineage learned since."""
    last = registry.latest_full()
    if parent is None or new is None or last is None:
        return refit_reason(None, until=until, rows_since=0, frauds_since=0, policy=policy.refit)
    return refit_reason(
        FullFit(last.version, last.trained_until, last.rows, last.frauds),
        until=until,
        rows_since=max(0, parent.seen_rows + len(new) - last.rows),
        frauds_since=max(0, parent.seen_frauds + int(new["tx_fraud"].sum()) - last.frauds),
        policy=policy.refit,
    )


def _fit_and_judge(
    base: FraudModels,
    full: bool,
    incumbent: ModelVersion | None,
    incumbent_models: FraudModels | None,
    data: pd.DataFrame,
    unseen: pd.DataFrame,
    columns: list[str],
    policy: TrainingPolicy,
) -> tuple[FraudModels, GateResult, HoldoutScores | None]:
    """The version's models and its promotion decision. A trial fitted on the rows before the
    evaluation set is compared with the incumbent on it, then updated with the set's rows: the
    version (one fit, not a trial and a refit). A full fit whose set is more than
    ``fold_in_share`` of its rows is refitted on all of them instead (an update would leave too
    much out of the trees' structure). Without a set, the decision is by rule."""
    number = incumbent.version if incumbent is not None else None
    start = evaluation_split(unseen, len(data), policy.gate)
    if start is not None:
        before, after = data[data["tx_datetime"] < start], data[data["tx_datetime"] >= start]
        try:
            trial = _fit(base, before, columns, full)
        except NotEnoughData:
            start = None  # the rows before the set cannot train: judged by rule below
    if start is None:
        frauds = int(unseen["tx_fraud"].sum())
        decision = rule_decision(len(unseen), frauds, incumbent_version=number, policy=policy.gate)
        return _fit(base, data, columns, full), decision, None
    evaluation = unseen[unseen["tx_datetime"] >= start]
    scored = holdout_scores(trial, evaluation, columns)
    theirs = (
        incumbent_models.predict_proba(_x(evaluation, columns)).mean(axis=1)
        if incumbent_models is not None
        else None
    )
    decision = gate_decision(
        scored.labels, scored.scores["ensemble"], theirs, incumbent_version=number,
        policy=policy.gate,
    )  # fmt: skip
    if full and len(after) > policy.gate.fold_in_share * len(data):
        return _fit(base, data, columns, full), decision, scored
    try:
        return _fit(trial, after, columns, False), decision, scored
    except NotEnoughData:  # too few rows (or one class) after the split to update with
        return _fit(base, data, columns, full), decision, scored


def _fit(base: FraudModels, rows: pd.DataFrame, columns: list[str], full: bool) -> FraudModels:
    features, labels = _x(rows, columns), _y(rows)
    return base.fit(features, labels) if full else base.update(features, labels)


def holdout_scores(models: FraudModels, holdout: pd.DataFrame, columns: list[str]) -> HoldoutScores:
    """Each model's probability and the ensemble's mean probability on the evaluation rows."""
    probabilities = models.predict_proba(_x(holdout, columns))
    decision = decide(probabilities, EnsembleThresholds())
    scores = {name: probabilities[:, i] for i, name in enumerate(MODEL_NAMES)}
    votes = {name: decision.votes[:, i] for i, name in enumerate(MODEL_NAMES)}
    return HoldoutScores(
        _y(holdout),
        scores | {"ensemble": decision.confidence},
        votes | {"ensemble": decision.is_fraud},
    )


def _metrics(holdout: HoldoutScores | None, gate: GateResult) -> dict[str, dict[str, float]]:
    """Ranking metrics and the vote's precision and recall of each model and of the ensemble on
    the evaluation set (none when the decision was by rule), and the set's size."""
    size = {"rows": float(gate.evidence["rows"]), "frauds": float(gate.evidence["frauds"])}
    if holdout is None:
        return {"holdout": size}
    metrics = {
        name: ranking_metrics(holdout.labels, s)
        | alert_metrics(holdout.labels, holdout.votes[name])
        for name, s in holdout.scores.items()
    }
    if "incumbent_ap" in gate.evidence:
        metrics["incumbent_ensemble"] = {
            "auc_roc": gate.evidence["incumbent_auc"],
            "average_precision": gate.evidence["incumbent_ap"],
        }
    return metrics | {"holdout": size}


def _x(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].to_numpy(dtype=np.float64)


def _y(frame: pd.DataFrame) -> np.ndarray:
    return frame["tx_fraud"].to_numpy(dtype=np.int64)

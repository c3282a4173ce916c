"""The model lifecycle's decisions, as plain functions: when a training step refits from scratch,
which rows judge a candidate, and whether the candidate replaces the incumbent.

- **Refit** (``refit_reason``): a full fit when nothing is promoted, when the labelled frauds or
  rows seen since the last full fit have grown by ``growth`` of what it learned from, or when a
  day of *data time* (the training hour's end, not the wall clock) has passed since it. A
  catch-up of any length therefore ends with a fit on all that was known, and incremental
  updates fill the hours in between. (When no new labels come and the promoted version is an
  update, ``training.train_step`` refits its lineage once: the labels have paused.)
- **Evaluation set** (``evaluation_split``): the newest labelled rows the incumbent never saw,
  grown backwards until they hold ``min_frauds`` frauds; the candidate's trial fit learns from
  the rows before them. Both models are judged on the same unseen rows.
- **Gate** (``gate_decision``): with enough frauds, a paired, class-stratified bootstrap of the
  Average Precision difference; the candidate is refused only when it is worse by more than the
  margin *and* the bootstrap says so with 95 % confidence. Too few frauds to mean anything: the
  candidate is promoted by a stated rule (it learned from a superset of the incumbent's labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from fraudstream.ml.metrics import ranking_metrics


@dataclass(frozen=True)
class RefitPolicy:
    """When a training step relearns the models from scratch instead of updating them."""

    growth: float = 1.0  # refit once frauds (or rows) seen since the full fit reach this share
    every: timedelta = timedelta(days=1)  # of data time since the last full fit


@dataclass(frozen=True)
class FullFit:
    """What the last full fit learned from, and the hour it was trained for."""

    version: int
    trained_until: datetime
    rows: int
    frauds: int


def refit_reason(
    last_full: FullFit | None,
    *,
    until: datetime,
    rows_since: int,
    frauds_since: int,
    policy: RefitPolicy,
) -> str | None:
    """Why the step training up to ``until`` refits from scratch, or None for an update.
    ``rows_since``/``frauds_since``: labelled rows learned since ``last_full``, this step's
    new rows included."""
    if last_full is None:
        return "first version: nothing to update"
    v = last_full.version
    if frauds_since >= policy.growth * max(last_full.frauds, 1):
        return (
            f"refit: {frauds_since} labelled frauds since the full fit v{v}, at least "
            f"{policy.growth:g} x its {last_full.frauds}"
        )
    if rows_since >= policy.growth * max(last_full.rows, 1):
        return (
            f"refit: {rows_since} labelled rows since the full fit v{v}, at least "
            f"{policy.growth:g} x its {last_full.rows}"
        )
    if until - last_full.trained_until >= policy.every:
        return (
            f"refit: data time {until.isoformat()} is {_days(until - last_full.trained_until)} "
            f"after the full fit v{v} (every {_days(policy.every)})"
        )
    return None


@dataclass(frozen=True)
class GatePolicy:
    """How much evidence a promotion decision needs."""

    min_frauds: int = 50  # in the evaluation set, for a measured comparison
    max_share: float = 0.5  # of the candidate's rows that may be held out for the trial fit
    # A full fit's trial becomes the version, updated with the held-out rows, when they are at
    # most this share of its rows; a larger share is refitted on all rows.
    fold_in_share: float = 0.1
    margin: float = 0.02  # AP the candidate may lose before it can be refused
    resamples: int = 200
    seed: int = 0


def evaluation_split(
    unseen: pd.DataFrame, training_rows: int, policy: GatePolicy
) -> pd.Timestamp | None:
    """The start of the evaluation set: the newest of the ``unseen`` rows (those the incumbent
    never learned from, sorted by ``tx_datetime``) that hold ``min_frauds`` frauds, taken at a
    whole timestamp. None when they do not exist within ``max_share`` of ``training_rows``."""
    frauds = unseen["tx_fraud"].to_numpy()[::-1].cumsum()
    enough = np.flatnonzero(frauds >= policy.min_frauds)
    if len(enough) == 0:
        return None
    start = unseen["tx_datetime"].iloc[len(unseen) - 1 - enough[0]]
    held_out = int((unseen["tx_datetime"] >= start).sum())
    if held_out > policy.max_share * training_rows:
        return None
    return start


@dataclass(frozen=True)
class GateResult:
    """A promotion decision and the evidence behind it (stored with the version)."""

    promoted: bool
    decision: str
    evidence: dict[str, Any]


def gate_decision(
    labels: np.ndarray,
    candidate: np.ndarray,
    incumbent: np.ndarray | None,
    *,
    incumbent_version: int | None,
    policy: GatePolicy,
) -> GateResult:
    """Candidate against incumbent on the same evaluation rows (``labels`` with both scores)."""
    frauds = int(labels.sum())
    measured = ranking_metrics(labels, candidate)
    evidence: dict[str, Any] = {
        "rows": len(labels),
        "frauds": frauds,
        "candidate_ap": measured["average_precision"],
        "candidate_auc": measured["auc_roc"],
        "incumbent": incumbent_version,
    }
    if incumbent is None:
        ap = measured["average_precision"]
        return GateResult(
            True, f"first version (AP {ap:.3f} on its {len(labels)} newest rows)", evidence
        )
    theirs = ranking_metrics(labels, incumbent)
    low, high = ap_difference_interval(labels, candidate, incumbent, policy)
    evidence |= {
        "incumbent_ap": theirs["average_precision"],
        "incumbent_auc": theirs["auc_roc"],
        "ap_difference_low": low,
        "ap_difference_high": high,
    }
    difference = measured["average_precision"] - theirs["average_precision"]
    compared = (
        f"AP {measured['average_precision']:.3f} vs {theirs['average_precision']:.3f} for "
        f"v{incumbent_version} on {len(labels)} unseen rows with {frauds} frauds "
        f"(difference 95 % interval [{low:+.3f}, {high:+.3f}])"
    )
    if difference < -policy.margin and high < 0:
        return GateResult(False, f"kept, not promoted: {compared}", evidence)
    return GateResult(True, f"promoted: {compared}", evidence)


def rule_decision(
    unseen_rows: int, unseen_frauds: int, *, incumbent_version: int | None, policy: GatePolicy
) -> GateResult:
    """The decision when the unseen rows are too few to compare on: promote, saying why."""
    evidence = {"rows": unseen_rows, "frauds": unseen_frauds, "incumbent": incumbent_version}
    if unseen_rows == 0:
        return GateResult(
            True,
            f"promoted by rule: refitted on the labelled rows v{incumbent_version} learned, "
            "nothing new to compare on",
            evidence,
        )
    if incumbent_version is None:
        return GateResult(
            True,
            f"first version, promoted by rule: {unseen_frauds} frauds, too few to measure "
            f"(a measure needs {policy.min_frauds})",
            evidence,
        )
    return GateResult(
        True,
        f"promoted by rule: the {unseen_rows} rows v{incumbent_version} never saw hold "
        f"{unseen_frauds} frauds, too few to compare on (a comparison needs "
        f"{policy.min_frauds} within {policy.max_share:.0%} of the rows); this version learned "
        f"from all that v{incumbent_version} knew plus them",
        evidence,
    )


def ap_difference_interval(
    labels: np.ndarray, candidate: np.ndarray, incumbent: np.ndarray, policy: GatePolicy
) -> tuple[float, float]:
    """The 95 % interval of AP(candidate) - AP(incumbent), by a paired bootstrap that resamples
    frauds and genuine rows separately (every resample holds the set's frauds count)."""
    rng = np.random.default_rng(policy.seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    differences = np.empty(policy.resamples)
    for i in range(policy.resamples):
        rows = np.concatenate(
            [rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))]
        )
        sample = labels[rows]
        differences[i] = average_precision_score(sample, candidate[rows]) - average_precision_score(
            sample, incumbent[rows]
        )
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86_400:g} d"

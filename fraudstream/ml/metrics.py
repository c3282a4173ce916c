"""Detection-quality metrics: AUC ROC, Average Precision, precision/recall at the vote, and the
handbook's Card Precision@k."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC ROC and Average Precision of a continuous score (NaN when one class is absent)."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return {"auc_roc": float("nan"), "average_precision": float("nan")}
    return {
        "auc_roc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
    }


def alert_metrics(labels: np.ndarray, alerts: np.ndarray) -> dict[str, float]:
    """Precision and recall of binary alerts."""
    return {
        "precision": float(precision_score(labels, alerts, zero_division=0)),
        "recall": float(recall_score(labels, alerts, zero_division=0)),
    }


def card_precision_at_k(frame: pd.DataFrame, score: str, k: int = 100) -> float:
    """The handbook's CP@k: per day, the share of compromised cards among the ``k`` cards with the
    highest score (a card's score is its highest transaction score that day), averaged over days.

    ``frame`` needs ``tx_datetime``, ``customer_id``, ``tx_fraud`` and the ``score`` column.
    """
    daily = frame.assign(day=frame["tx_datetime"].dt.floor("D"))
    cards = daily.groupby(["day", "customer_id"]).agg(
        score=(score, "max"), fraud=("tx_fraud", "max")
    )
    per_day = [
        group.nlargest(k, "score")["fraud"].sum() / k for _, group in cards.groupby(level="day")
    ]
    return float(np.mean(per_day)) if per_day else float("nan")

"""The Fraud Detection Handbook's evaluation protocol (chapter 3): train on a window, skip a
feedback delay, test on the following days, and score with AUC ROC, Average Precision and Card
Precision@100. Pure pandas; used by ``bench/quality.py`` and the quality tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudstream.ml.metrics import card_precision_at_k, ranking_metrics

# The handbook's published baseline (chapter 3.4): AUC ROC, Average Precision, CP@100.
PUBLISHED_BASELINE = {
    "logistic regression": (0.871, 0.606, 0.291),
    "random forest": (0.867, 0.658, 0.287),
    "XGBoost": (0.862, 0.639, 0.273),
}


@dataclass(frozen=True)
class Protocol:
    """Train ``[start, start + train)``, then test each of the ``test`` days that follow a
    ``delay``, without the cards known compromised by then."""

    train_start: datetime
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7

    @property
    def test_start(self) -> datetime:
        return self.train_start + timedelta(days=self.train_days + self.delay_days)

    @property
    def test_end(self) -> datetime:
        return self.test_start + timedelta(days=self.test_days)


def split(frame: pd.DataFrame, protocol: Protocol) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The handbook's ``get_train_test_set``: ``frame`` needs ``tx_datetime`` (UTC),
    ``customer_id`` and ``tx_fraud``. A test day drops the customers with a fraud in the training
    window or in the delay period before that day (their card is known compromised)."""
    day = timedelta(days=1)
    start = pd.Timestamp(protocol.train_start)
    train_end = start + protocol.train_days * day
    train = frame[(frame["tx_datetime"] >= start) & (frame["tx_datetime"] < train_end)]
    known = set(train.loc[train["tx_fraud"] == 1, "customer_id"])
    test_days = []
    for n in range(protocol.test_days):
        # The delay-period day whose frauds are known by this test day (handbook: day - 1).
        seen = train_end + (n - 1) * day
        seen_day = frame[(frame["tx_datetime"] >= seen) & (frame["tx_datetime"] < seen + day)]
        known |= set(seen_day.loc[seen_day["tx_fraud"] == 1, "customer_id"])
        first = pd.Timestamp(protocol.test_start) + n * day
        test_day = frame[(frame["tx_datetime"] >= first) & (frame["tx_datetime"] < first + day)]
        test_days.append(test_day[~test_day["customer_id"].isin(known)])
    return train, pd.concat(test_days)


def scores_table(test: pd.DataFrame, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """AUC ROC, Average Precision and CP@100 of each named score on ``test``."""
    rows = {}
    for name, score in scores.items():
        ranked = ranking_metrics(test["tx_fraud"].to_numpy(), score)
        rows[name] = {
            "auc_roc": ranked["auc_roc"],
            "average_precision": ranked["average_precision"],
            "card_precision@100": card_precision_at_k(test.assign(score=score), "score", 100),
        }
    return pd.DataFrame.from_dict(rows, orient="index")

"""Labelled feature rows for training and evaluation, read from MongoDB."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from fraudstream.feature_history import LABELS, TRANSACTION_FEATURES
from fraudstream.mongo_store import MongoStore


def labelled_features(
    store: MongoStore, columns: list[str], start: datetime | None, end: datetime
) -> pd.DataFrame:
    """Feature rows with ``start <= tx_datetime < end`` (no lower bound if ``start`` is None)
    that have a label, in event-time order, with a ``tx_fraud`` column."""
    when: dict[str, datetime] = {"$lt": end}
    if start is not None:
        when["$gte"] = start
    projection = {"_id": 1, "tx_datetime": 1, **dict.fromkeys(columns, 1)}
    rows = list(store.collection(TRANSACTION_FEATURES).find({"tx_datetime": when}, projection))
    if not rows:
        return pd.DataFrame(columns=["transaction_id", "tx_datetime", *columns, "tx_fraud"])
    frame = pd.DataFrame(rows).rename(columns={"_id": "transaction_id"})
    labels = {
        doc["_id"]: int(doc["tx_fraud"])
        for doc in store.collection(LABELS).find(
            {"_id": {"$in": frame["transaction_id"].tolist()}}, {"tx_fraud": 1}
        )
    }
    frame["tx_fraud"] = frame["transaction_id"].map(labels)
    frame = frame.dropna(subset=["tx_fraud"]).sort_values("tx_datetime", kind="stable")
    frame["tx_fraud"] = frame["tx_fraud"].astype(np.int64)
    return frame.reset_index(drop=True)


def time_split(frame: pd.DataFrame, holdout_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earlier rows of each class for training, the latest ``holdout_share`` of each class for
    evaluation: the holdout lies in the training rows' future and holds frauds even when they are
    rare."""
    train, holdout = [], []
    for _, rows in frame.groupby("tx_fraud", sort=True):
        cut = round(len(rows) * (1 - holdout_share))
        train.append(rows.iloc[:cut])
        holdout.append(rows.iloc[cut:])
    if not train:
        return frame, frame
    return (
        pd.concat(train).sort_values("tx_datetime", kind="stable"),
        pd.concat(holdout).sort_values("tx_datetime", kind="stable"),
    )

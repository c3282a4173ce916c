"""Labelled feature rows for training and evaluation, read from MongoDB.

A model version is trained on a *data cut*: the feature rows stamped before ``until`` whose
features and label were both stored by ``seen_until`` (MongoDB's clock: the features'
``first_computed_at``, the label's ``loaded_at``). Labels arrive long after their transactions,
so an hourly update cannot take "the transactions of the last hour": it takes what the parent's
cut did not hold — rows of the new hours, late labels of old transactions, late features of old
labels. Each part is one indexed query, so an update costs in proportion to the new data, and
every labelled row is trained on exactly once along a lineage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.store.collections import LABELS, TRANSACTION_FEATURES
from fraudstream.store.mongo import MongoStore
from fraudstream.store.stamps import committed_until


@dataclass(frozen=True)
class DataCut:
    """Feature rows with ``tx_datetime < until`` whose features and label were stored by
    ``seen_until``."""

    until: datetime
    seen_until: datetime


def current_cut(store: MongoStore, until: datetime) -> DataCut:
    """The cut of a version trained now: everything stored and committed until now (MongoDB's
    clock; a write still in flight keeps the cut before its stamp, ``store/stamps.py``)."""
    return DataCut(until, committed_until(store))


def cut_rows(
    store: MongoStore, columns: list[str], cut: DataCut, window: timedelta | None = None
) -> pd.DataFrame:
    """The labelled feature rows of the cut (a full fit), the last ``window`` of them if given."""
    when: dict[str, datetime] = {"$lt": cut.until}
    if window is not None:
        when["$gte"] = cut.until - window
    features = _features(
        store, {"tx_datetime": when, "first_computed_at": {"$lte": cut.seen_until}}, columns
    )
    return _labelled(store, features, {"$lte": cut.seen_until}, columns)


def new_rows(store: MongoStore, columns: list[str], cut: DataCut, parent: DataCut) -> pd.DataFrame:
    """The rows of ``cut`` outside the ``parent`` cut (three disjoint parts)."""
    p = parent
    # Rows of the new hours.
    new_hours = _labelled(
        store,
        _features(
            store,
            {
                "tx_datetime": {"$gte": p.until, "$lt": cut.until},
                "first_computed_at": {"$lte": cut.seen_until},
            },
            columns,
        ),
        {"$lte": cut.seen_until},
        columns,
    )
    # Labels that arrived (or changed) since the parent, for older transactions.
    arrived = [
        doc["_id"]
        for doc in store.collection(LABELS).find(
            {"loaded_at": {"$gt": p.seen_until, "$lte": cut.seen_until}}, {"_id": 1}
        )
    ]
    late_labels = _labelled(
        store,
        _features_of(
            store,
            arrived,
            {"tx_datetime": {"$lt": p.until}, "first_computed_at": {"$lte": cut.seen_until}},
            columns,
        ),
        {"$gt": p.seen_until, "$lte": cut.seen_until},
        columns,
    )
    # Features computed since the parent for transactions whose label it already had.
    late_features = _labelled(
        store,
        _features(
            store,
            {
                "tx_datetime": {"$lt": p.until},
                "first_computed_at": {"$gt": p.seen_until, "$lte": cut.seen_until},
            },
            columns,
        ),
        {"$lte": p.seen_until},
        columns,
    )
    parts = [f for f in (new_hours, late_labels, late_features) if not f.empty]
    if not parts:
        return _empty(columns)
    return pd.concat(parts).sort_values("tx_datetime", kind="stable").reset_index(drop=True)


def _features(store: MongoStore, query: dict[str, Any], columns: list[str]) -> pd.DataFrame:
    rows = store.collection(TRANSACTION_FEATURES).find(query, _projection(columns))
    return _frame(rows, columns)


def _features_of(
    store: MongoStore, ids: list[str], query: dict[str, Any], columns: list[str]
) -> pd.DataFrame:
    rows = store.find_in(TRANSACTION_FEATURES, "_id", ids, query, _projection(columns))
    return _frame(rows, columns)


def _projection(columns: list[str]) -> dict[str, int]:
    return {"_id": 1, "tx_datetime": 1, **dict.fromkeys(columns, 1)}


def _frame(rows: Iterable[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["_id", "tx_datetime", *columns])


def _labelled(
    store: MongoStore, features: pd.DataFrame, loaded: dict[str, datetime], columns: list[str]
) -> pd.DataFrame:
    """``features`` joined with the labels whose ``loaded_at`` matches ``loaded``."""
    if features.empty:
        return _empty(columns)
    verdicts = {
        doc["_id"]: int(doc["tx_fraud"])
        for doc in store.find_in(
            LABELS, "_id", features["_id"].tolist(), {"loaded_at": loaded}, {"tx_fraud": 1}
        )
    }
    frame = features.rename(columns={"_id": "transaction_id"})
    frame["tx_fraud"] = frame["transaction_id"].map(verdicts)
    frame = frame.dropna(subset=["tx_fraud"])
    frame["tx_fraud"] = frame["tx_fraud"].astype(np.int64)
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], utc=True)
    return frame.sort_values("tx_datetime", kind="stable").reset_index(drop=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": pd.Series(dtype=object),
            "tx_datetime": pd.Series(dtype="datetime64[ns, UTC]"),
            **{c: pd.Series(dtype=np.float64) for c in columns},
            "tx_fraud": pd.Series(dtype=np.int64),
        }
    )

"""What the feature computation of a range reads from MongoDB, and where it writes the result.

Incremental by construction: a range's features read the range's transactions plus the history of
the customers and terminals that appear in it (customers: 30 days, terminals: 37 days, through the
``(customer_id, tx_datetime)`` and ``(terminal_id, tx_datetime)`` indexes), never the whole
collection. The cost grows with the range's size times its entities' history density, not with
the length of the stored history.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from fraudstream.store import UpdateOne
from fraudstream.store.collections import LABELS, TRANSACTION_FEATURES, TRANSACTIONS
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, partition_key

FEATURE_VERSION = "handbook-v1"
HISTORY_FIELDS = {"_id": 1, "tx_datetime": 1, "customer_id": 1, "terminal_id": 1, "tx_amount": 1}
WRITE_BATCH = 10_000


def load_history(
    store: MongoStore,
    time_range: TimeRange,
    *,
    customer_days: int,
    terminal_days: int,
    delay: timedelta,
) -> pd.DataFrame:
    """The range's transactions and their entities' history, with ``fraud_known`` per row.

    ``fraud_known`` is 1 when the transaction's label says fraud and was reported within
    ``delay`` of the transaction (or has no report time: assumed so, as the handbook does): a
    label the terminal features may use ``delay`` later.
    """
    collection = store.collection(TRANSACTIONS)
    in_range = {"tx_datetime": {"$gte": time_range.start, "$lt": time_range.end}}
    target = list(collection.find(in_range, HISTORY_FIELDS))
    if not target:
        return _frame([])
    customers = sorted({row["customer_id"] for row in target})
    terminals = sorted({row["terminal_id"] for row in target})
    customer_times = {
        "$gte": time_range.start - timedelta(days=customer_days),
        "$lt": time_range.end,
    }
    terminal_times = {
        "$gte": time_range.start - timedelta(days=terminal_days),
        "$lt": time_range.end - delay,
    }
    by_customer = store.find_in(
        TRANSACTIONS, "customer_id", customers, {"tx_datetime": customer_times}, HISTORY_FIELDS
    )
    by_terminal = store.find_in(
        TRANSACTIONS, "terminal_id", terminals, {"tx_datetime": terminal_times}, HISTORY_FIELDS
    )
    rows = {row["_id"]: row for source in (target, by_customer, by_terminal) for row in source}
    frame = _frame(list(rows.values()))
    known = _frauds_known(store, frame, delay)
    frame["fraud_known"] = frame["transaction_id"].isin(known).astype("int32")
    return frame


def write_features(store: MongoStore, features: pd.DataFrame, computed_at: datetime) -> int:
    """Replace the feature documents of these transactions (idempotent); returns the count.
    ``first_computed_at`` (MongoDB's clock) is kept from the first write: training uses it to
    find rows that became usable since the previous model version (training_data.py)."""
    collection = store.collection(TRANSACTION_FEATURES)
    times = pd.to_datetime(features["tx_datetime"])
    # Spark hands back session-time-zone (UTC) wall times without a zone.
    features = features.assign(
        tx_datetime=times.dt.tz_localize(UTC) if times.dt.tz is None else times
    )
    written = 0
    for start in range(0, len(features), WRITE_BATCH):
        chunk = features.iloc[start : start + WRITE_BATCH]
        operations = [
            UpdateOne(
                {"_id": doc["transaction_id"]},
                [
                    {
                        "$set": {
                            **{
                                name: {"$literal": value}
                                for name, value in _feature_document(doc, computed_at).items()
                            },
                            "first_computed_at": {"$ifNull": ["$first_computed_at", "$$NOW"]},
                        }
                    }
                ],
                upsert=True,
            )
            for doc in chunk.to_dict("records")
        ]
        collection.bulk_write(operations, ordered=False)
        written += len(operations)
    return written


def _feature_document(row: dict[str, Any], computed_at: datetime) -> dict[str, Any]:
    when = row["tx_datetime"].to_pydatetime()
    return {
        **row,
        "tx_datetime": when,
        "partition_key": partition_key(when),
        "feature_version": FEATURE_VERSION,
        "computed_at": computed_at,
    }


def _frauds_known(store: MongoStore, frame: pd.DataFrame, delay: timedelta) -> set[str]:
    times = dict(zip(frame["transaction_id"], frame["tx_datetime"], strict=True))
    found = store.find_in(LABELS, "_id", times, {"tx_fraud": 1}, {"reported_at": 1})
    return {
        label["_id"]
        for label in found
        if _as_utc(label.get("reported_at")) <= times[label["_id"]] + delay
    }


def _as_utc(moment: datetime | None) -> pd.Timestamp:
    if moment is None:
        return pd.Timestamp.min.tz_localize(UTC)
    return pd.Timestamp(moment).tz_convert(UTC) if moment.tzinfo else pd.Timestamp(moment, tz=UTC)


def _frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(HISTORY_FIELDS))
    frame = frame.rename(columns={"_id": "transaction_id"})
    frame["tx_datetime"] = pd.to_datetime(frame["tx_datetime"], utc=True)
    frame["tx_amount"] = frame["tx_amount"].astype("float64")
    return frame

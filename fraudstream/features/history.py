"""What a feature task reads from MongoDB, and how it writes its result.

A task reads a slice (``ReadSlice``) of ``transactions``: every row of a time range (a scan), or
the rows of a short range plus the customers' 30 and the terminals' 30 + feedback delay (37 by
default) days of history through the ``(customer_id, tx_datetime)`` and
``(terminal_id, tx_datetime)`` indexes (a lookup). Either way
each row read carries ``fraud_known`` from one label lookup. Writes insert first and update only
the rows already stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from fraudstream.features.contract import DELAY_DAYS
from fraudstream.store import UpdateOne
from fraudstream.store.collections import LABELS, TRANSACTION_FEATURES, TRANSACTIONS
from fraudstream.store.mongo import MongoStore
from fraudstream.store.stamps import stamped_write
from fraudstream.windows import PARTITION_KEY_FORMAT, WINDOW, TimeRange

FEATURE_VERSION = "handbook-v1"  # with the handbook's 7-day feedback delay
HISTORY_FIELDS = {"_id": 1, "tx_datetime": 1, "customer_id": 1, "terminal_id": 1, "tx_amount": 1}
HISTORY_SCHEMA = (
    "transaction_id string, tx_datetime timestamp, customer_id string, terminal_id string, "
    "tx_amount double, fraud_known int"
)
WRITE_BATCH = 10_000


def feature_version(delay: timedelta) -> str:
    """What stored features were computed by: the definitions and the feedback delay."""
    if delay == timedelta(days=DELAY_DAYS):
        return FEATURE_VERSION
    return f"{FEATURE_VERSION}-delay-{delay.days}d"


@dataclass(frozen=True)
class Lookback:
    """How far back a row's features look: customers, terminals, and the feedback delay."""

    customer: timedelta
    terminal: timedelta
    delay: timedelta

    @property
    def longest(self) -> timedelta:
        return max(self.customer, self.terminal)


@dataclass(frozen=True)
class ReadSlice:
    """A task's share of a feature job's reads: the rows stamped in ``[start, end)``, with their
    customers' and terminals' history when ``expand``."""

    start: datetime
    end: datetime
    expand: bool


def read_slice(store: MongoStore, part: ReadSlice, lookback: Lookback) -> pd.DataFrame:
    """The slice's rows (and, when it expands, their entities' history) with ``fraud_known``.

    ``fraud_known`` is 1 when the transaction's label says fraud and was reported within the
    feedback delay of the transaction (or has no report time: assumed so, as the handbook does):
    a label the terminal features may use that much later.
    """
    collection = store.collection(TRANSACTIONS)
    in_range = {"tx_datetime": {"$gte": part.start, "$lt": part.end}}
    rows = list(collection.find(in_range, HISTORY_FIELDS, batch_size=WRITE_BATCH))
    if part.expand and rows:
        rows = _with_history(store, rows, TimeRange(part.start, part.end), lookback)
    frame = _frame(rows)
    known = _frauds_known(store, frame, lookback.delay) if len(frame) else set()
    frame["fraud_known"] = frame["transaction_id"].isin(known).astype("int32")
    return frame


def _with_history(
    store: MongoStore, target: list[dict[str, Any]], time_range: TimeRange, lookback: Lookback
) -> list[dict[str, Any]]:
    customers = sorted({row["customer_id"] for row in target})
    terminals = sorted({row["terminal_id"] for row in target})
    customer_times = {"$gte": time_range.start - lookback.customer, "$lt": time_range.end}
    terminal_times = {
        "$gte": time_range.start - lookback.terminal,
        "$lt": time_range.end - lookback.delay,
    }
    by_customer = store.find_in(
        TRANSACTIONS, "customer_id", customers, {"tx_datetime": customer_times}, HISTORY_FIELDS
    )
    by_terminal = store.find_in(
        TRANSACTIONS, "terminal_id", terminals, {"tx_datetime": terminal_times}, HISTORY_FIELDS
    )
    rows = {row["_id"]: row for source in (target, by_customer, by_terminal) for row in source}
    return list(rows.values())


def write_features(
    store: MongoStore, features: pd.DataFrame, computed_at: datetime, version: str = FEATURE_VERSION
) -> int:
    """Store the feature documents of these transactions (idempotent); returns the count.
    New ones are inserted; a transaction already stored is updated and keeps its
    ``first_computed_at`` (MongoDB's clock, read under a write lease just before the insert):
    training finds rows that became usable since the previous version by it (training_data.py)."""
    times = pd.to_datetime(features["tx_datetime"])
    # Spark hands back session-time-zone (UTC) wall times without a zone.
    features = features.assign(
        tx_datetime=times.dt.tz_localize(UTC) if times.dt.tz is None else times
    )
    features = features.assign(partition_key=_partition_keys(features["tx_datetime"]))
    written = 0
    for start in range(0, len(features), WRITE_BATCH):
        chunk = features.iloc[start : start + WRITE_BATCH]
        documents = [
            _feature_document(doc, computed_at, version) for doc in chunk.to_dict("records")
        ]
        _insert_or_update(store, documents)
        written += len(documents)
    return written


def _insert_or_update(store: MongoStore, documents: list[dict[str, Any]]) -> None:
    with stamped_write(store, "features") as now:
        first = {"first_computed_at": now}
        stored = store.insert_new(
            TRANSACTION_FEATURES, [doc | first for doc in documents], "feature document"
        )
    if stored:
        store.collection(TRANSACTION_FEATURES).bulk_write(
            [
                UpdateOne(
                    {"_id": documents[i]["_id"]},
                    [{"$set": {name: {"$literal": value} for name, value in documents[i].items()}}],
                )
                for i in stored
            ],
            ordered=False,
        )


def _feature_document(row: dict[str, Any], computed_at: datetime, version: str) -> dict[str, Any]:
    return {
        "_id": row["transaction_id"],
        **row,
        "tx_datetime": row["tx_datetime"].to_pydatetime(),
        "feature_version": version,
        "computed_at": computed_at,
    }


def _partition_keys(times: pd.Series) -> pd.Series:
    """``windows.partition_key`` of each time, vectorised."""
    floored = times.dt.floor(f"{int(WINDOW.total_seconds())}s")
    return pd.Series(
        floored.dt.strftime(PARTITION_KEY_FORMAT).to_numpy(dtype=object), index=times.index
    )


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

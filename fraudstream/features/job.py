"""The feature job of a range on Spark's executors: MongoDB to MongoDB, never through the driver.

The driver only plans: it splits the rows to read into slices (a task each) with one aggregation.
Each task reads its slice from MongoDB itself (``history.read_slice``), Spark's window functions
compute the features over the shuffle by entity (``spark.transaction_features``), and each task
of the result writes its rows (``history.write_features``) and hands back a count. Memory is
bounded by a task's share, not the range, and the same job scales out on a cluster.

Two ways to read, chosen by the range's length (``FeatureJob.scan_from``):

- *scan*: a long range (a catch-up, a backfill) reads every transaction of the range and of the
  lookback before it once, in time slices: each stored row is read once, whatever the range.
- *lookup*: a short range (a live window) reads its own rows plus the history of the customers
  and terminals in it through the entity indexes: tens of rows cost their entities' history, not
  the whole lookback.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from fraudstream import config
from fraudstream.features.contract import WINDOW_DAYS, lookback_days
from fraudstream.features.history import (
    HISTORY_SCHEMA,
    Lookback,
    ReadSlice,
    feature_version,
    read_slice,
    write_features,
)
from fraudstream.features.spark import transaction_features
from fraudstream.store.access import MongoSource
from fraudstream.store.collections import TRANSACTIONS
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange


@dataclass(frozen=True)
class FeatureJob:
    """How a range's feature job splits its work."""

    rows_per_task: int = 100_000  # rows a scan task reads
    lookup_rows_per_task: int = 2_500  # range rows a lookup task expands (~37 history rows each)
    max_tasks: int = 64
    scan_from: timedelta = timedelta(days=1)  # ranges at least this long are scanned
    lookback: Lookback = field(default_factory=lambda: lookback_for(config.feedback_delay()))


def lookback_for(delay: timedelta) -> Lookback:
    """The history a row's features need with this feedback delay."""
    return Lookback(
        customer=timedelta(days=max(WINDOW_DAYS)),
        terminal=timedelta(days=lookback_days(delay=delay.days)),
        delay=delay,
    )


@dataclass(frozen=True)
class FeatureRun:
    """What a range's feature job did."""

    mode: str  # "scan" or "lookup"
    tasks: int
    rows_read: int  # documents read from `transactions` by all tasks (duplicates included)
    frauds_known: int  # history rows whose fraud label the terminal features may use
    written: int  # feature documents written (the range's transactions)
    version: str  # the stored documents' feature_version (definitions and feedback delay)


def compute_features(
    spark: SparkSession,
    source: MongoSource,
    time_range: TimeRange,
    computed_at: datetime,
    job: FeatureJob | None = None,
) -> FeatureRun:
    """Compute and store the features of the range's transactions (idempotent)."""
    job = job or FeatureJob()
    delay = job.lookback.delay
    version = feature_version(delay)
    slices = plan_slices(source, time_range, job)
    if not slices:
        return FeatureRun("none", 0, 0, 0, 0, version)
    mode = "lookup" if slices[0].expand else "scan"
    history = _read(spark, source, slices, job.lookback)
    if mode == "lookup":  # tasks share entities: a row read twice is computed once
        history = history.dropDuplicates(["transaction_id"])
    history = history.persist()
    try:
        counts = history.agg(F.count(F.lit(1)), F.sum("fraud_known")).first()
        rows_read, frauds_known = int(counts[0]), int(counts[1] or 0)
        features = transaction_features(history, time_range.start, time_range.end, delay.days)
        written = features.mapInPandas(_writer(source, computed_at, version), "written long")
        total = written.agg(F.sum("written")).first()[0]
    finally:
        history.unpersist()
    return FeatureRun(mode, len(slices), rows_read, frauds_known, int(total or 0), version)


def plan_slices(source: MongoSource, time_range: TimeRange, job: FeatureJob) -> list[ReadSlice]:
    """The tasks' slices: time ranges holding about the same number of rows (MongoDB's
    ``$bucketAuto`` over the rows' times, one aggregation); none when the range holds no row."""
    store = source.connect()
    try:
        in_range = store.collection(TRANSACTIONS).count_documents(_between(time_range))
        if in_range == 0:
            return []
        if time_range.end - time_range.start < job.scan_from:
            tasks = min(job.max_tasks, math.ceil(in_range / job.lookup_rows_per_task))
            return [
                ReadSlice(r.start, r.end, expand=True) for r in _buckets(store, time_range, tasks)
            ]
        span = TimeRange(time_range.start - job.lookback.longest, time_range.end)
        rows = store.collection(TRANSACTIONS).count_documents(_between(span))
        tasks = min(job.max_tasks, math.ceil(rows / job.rows_per_task))
        return [ReadSlice(r.start, r.end, expand=False) for r in _buckets(store, span, tasks)]
    finally:
        store.close()


def _buckets(store: MongoStore, time_range: TimeRange, count: int) -> list[TimeRange]:
    """``count`` consecutive sub-ranges covering ``time_range`` with about equal rows each."""
    if count <= 1:
        return [time_range]
    bounds = store.collection(TRANSACTIONS).aggregate(
        [
            {"$match": _between(time_range)},
            {"$bucketAuto": {"groupBy": "$tx_datetime", "buckets": count}},
        ]
    )
    cuts = sorted({bucket["_id"]["min"] for bucket in bounds} - {time_range.start})
    edges = [time_range.start, *(c for c in cuts if time_range.start < c < time_range.end)]
    return [
        TimeRange(start, end)
        for start, end in zip(edges, [*edges[1:], time_range.end], strict=True)
    ]


def _between(time_range: TimeRange) -> dict[str, object]:
    return {"tx_datetime": {"$gte": time_range.start, "$lt": time_range.end}}


def _read(
    spark: SparkSession, source: MongoSource, slices: list[ReadSlice], lookback: Lookback
) -> DataFrame:
    """One task per slice, each reading its rows from MongoDB."""

    def read(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        store = source.connect()
        try:
            for batch in batches:
                for index in batch["id"]:
                    yield read_slice(store, slices[int(index)], lookback)
        finally:
            store.close()

    tasks = spark.range(0, len(slices), numPartitions=len(slices))
    return tasks.mapInPandas(read, HISTORY_SCHEMA)


def _writer(
    source: MongoSource, computed_at: datetime, version: str
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The write of a task's feature rows, returning how many it wrote."""

    def write(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        store = source.connect()
        try:
            written = sum(write_features(store, batch, computed_at, version) for batch in batches)
        finally:
            store.close()
        yield pd.DataFrame({"written": [written]})

    return write


def remote_answers(url: str) -> bool:
    """Whether the Spark Connect server at ``sc://host:port`` accepts connections."""
    host, port = url.removeprefix("sc://").split("/", 1)[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False

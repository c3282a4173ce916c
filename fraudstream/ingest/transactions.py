"""Kafka → MongoDB ingestion of an event-time range (one 10-minute window or many in one pass).

Guarantee: every valid record whose ``tx_datetime`` falls in the range is upserted exactly once
(by ``transaction_id``) with the ``partition_key`` of its window; every invalid record whose Kafka
timestamp falls in the range lands in ``dead_letters`` exactly once (by topic/partition/offset),
and so does an invalid record the scan meets out of order (stamped long before its neighbours).
Offsets are committed only after all writes succeeded, so a crash loses nothing and a re-run
double-counts nothing.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from fraudstream.batching import BackgroundWriter
from fraudstream.ingest.kafka_source import (
    KafkaSettings,
    PartitionExtent,
    PartitionScan,
    TopicReader,
)
from fraudstream.ingest.schema import InvalidRecord, check_lateness, parse_transaction_json
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import WINDOW, TimeRange, from_millis, partition_key

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
# Below this many records to scan, worker processes (~0.6 s to start, then contending with mongod
# for 2 cores) save nothing: measured about even at 200k records, 1.5x at 1M (bench/ingest.py).
PARALLEL_MIN_RECORDS = 150_000
WINDOW_MS = WINDOW // timedelta(milliseconds=1)


@dataclass
class AmountStats:
    """Running count / sum / min / max of ``tx_amount``."""

    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None

    def add(self, amount: float) -> None:
        self.count += 1
        self.total += amount
        self.minimum = amount if self.minimum is None else min(self.minimum, amount)
        self.maximum = amount if self.maximum is None else max(self.maximum, amount)

    def merge(self, other: AmountStats) -> None:
        self.count += other.count
        self.total += other.total
        lows = [v for v in (self.minimum, other.minimum) if v is not None]
        highs = [v for v in (self.maximum, other.maximum) if v is not None]
        self.minimum, self.maximum = min(lows, default=None), max(highs, default=None)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class IngestReport:
    """What one ingestion did, for logs and the asset's metadata."""

    time_range: TimeRange
    run_id: str
    per_window: Counter[str] = field(default_factory=Counter)
    inserted: int = 0
    replaced: int = 0
    dead_letters: int = 0
    new_dead_letters: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    amounts: AmountStats = field(default_factory=AmountStats)
    scans: dict[int, PartitionScan] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    expired_but_kept: bool = False
    duration_s: float = 0.0

    def merge(self, part: IngestReport) -> None:
        """Add what one share of the partitions did."""
        self.per_window.update(part.per_window)
        self.inserted += part.inserted
        self.replaced += part.replaced
        self.dead_letters += part.dead_letters
        self.new_dead_letters += part.new_dead_letters
        self.dead_letter_reasons.update(part.dead_letter_reasons)
        self.amounts.merge(part.amounts)
        self.scans.update(part.scans)
        self.committed.update(part.committed)

    @property
    def transactions(self) -> int:
        return sum(self.per_window.values())

    @property
    def records_scanned(self) -> int:
        return sum(scan.records_read for scan in self.scans.values())

    @property
    def records_per_second(self) -> float:
        return self.transactions / self.duration_s if self.duration_s > 0 else 0.0


class WindowExpired(RuntimeError):
    """The range's records left the topic and MongoDB does not hold the range either."""


def ingest_range(
    reader: TopicReader,
    store: MongoStore,
    time_range: TimeRange,
    *,
    allowed_lateness: timedelta,
    run_id: str,
    batch_size: int = BATCH_SIZE,
    on_batch_written: Callable[[int], None] | None = None,
    workers: int = 1,
    parallel_min_records: int = PARALLEL_MIN_RECORDS,
) -> IngestReport:
    """Ingest every transaction of ``time_range`` from the topic into MongoDB.

    A large range (at least ``parallel_min_records`` to scan) is split by topic partition over
    ``workers`` processes: one Python process is CPU-bound on decoding and validation
    (bench/ingest.py). ``on_batch_written`` (single process only) is called with the running
    count of written transactions after each batch, for progress logging.
    """
    started = time.monotonic()
    report = IngestReport(time_range, run_id)
    keys = [partition_key(window.start) for window in time_range.windows()]
    lateness_ms = allowed_lateness // timedelta(milliseconds=1)
    extents = reader.extents()
    lost = _lost_partitions(reader, store, keys, extents, time_range.start_ms - lateness_ms)
    if lost:
        if store.ingested_windows(keys) == set(keys):
            log.warning("%s; MongoDB already holds %s, keeping it", lost, time_range)
            report.expired_but_kept = True
            report.duration_s = time.monotonic() - started
            return report
        raise WindowExpired(
            f"Cannot ingest {time_range}: {lost}. MongoDB does not hold this range, so it cannot "
            "be rebuilt from Kafka; load it from a batch file in landing/transactions/ or "
            "restore MongoDB from a backup."
        )
    plan = ScanPlan(
        time_range=time_range,
        allowed_lateness=allowed_lateness,
        run_id=run_id,
        extents=extents,
        starts=reader.scan_starts(time_range.start_ms - lateness_ms, extents),
        rerun=bool(store.ingested_windows(keys)),
        batch_size=batch_size,
    )
    to_scan = sum(extents[p].end - first for p, first in plan.starts.items())
    groups = [g for g in (sorted(extents)[i::workers] for i in range(workers)) if g]
    if len(groups) > 1 and to_scan >= parallel_min_records and on_batch_written is None:
        context = multiprocessing.get_context("spawn")  # no fork: the clients hold threads
        with ProcessPoolExecutor(len(groups), mp_context=context) as pool:
            futures = [
                pool.submit(
                    _read_and_write_partitions,
                    reader.settings,
                    reader.max_disorder,
                    group,
                    store.uri,
                    store.db.name,
                    plan,
                )
                for group in groups
            ]
            for future in futures:
                report.merge(future.result())
    else:
        report.merge(read_and_write(reader, store, plan, on_batch_written))

    now = datetime.now(UTC)
    store.record_ingested_windows(
        {
            "_id": key,
            "transactions": report.per_window[key],
            "run_id": run_id,
            "completed_at": now,
            "source": "kafka",
            "topic": reader.settings.topic,
            # What was read, so a later run can tell a reset topic from a quiet one.
            "offsets": {str(p): scan.next_offset for p, scan in report.scans.items()},
        }
        for key in keys
    )
    report.duration_s = time.monotonic() - started
    return report


@dataclass(frozen=True)
class ScanPlan:
    """What one ingestion reads, decided once and shared with its worker processes."""

    time_range: TimeRange
    allowed_lateness: timedelta
    run_id: str
    extents: dict[int, PartitionExtent]
    starts: dict[int, int]
    rerun: bool
    batch_size: int


def read_and_write(
    reader: TopicReader,
    store: MongoStore,
    plan: ScanPlan,
    on_batch_written: Callable[[int], None] | None = None,
) -> IngestReport:
    """Scan the reader's partitions, write what they hold, then commit their offsets."""
    report = IngestReport(plan.time_range, plan.run_id)
    margin_ms = plan.allowed_lateness // timedelta(milliseconds=1)
    scans, batches = reader.scan(
        plan.time_range.start_ms - margin_ms,
        plan.time_range.end_ms + margin_ms,
        plan.extents,
        starts=plan.starts,
    )
    report.scans = scans

    def write(batch: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
        documents, letters = batch
        inserted, replaced = store.upsert_transactions(
            documents, plan.run_id, expect_existing=plan.rerun
        )
        report.inserted += inserted
        report.replaced += replaced
        report.new_dead_letters += store.record_dead_letters(letters, plan.run_id)
        if on_batch_written is not None:
            on_batch_written(report.inserted + report.replaced)

    router = RecordRouter(reader.settings.topic, plan.time_range, plan.allowed_lateness, report)
    with BackgroundWriter(write) as writer:
        for records in batches:
            for record in records:
                router.route(record)
            if router.pending >= plan.batch_size:
                writer.submit(router.take())
        writer.submit(router.take())

    positions = {p: scan.next_offset for p, scan in scans.items() if scan.records_read}
    report.committed = reader.commit(positions, metadata=f"run {plan.run_id} {plan.time_range}")
    return report


def _read_and_write_partitions(
    settings: KafkaSettings,
    max_disorder: timedelta,
    partitions: list[int],
    mongo_uri: str,
    database: str,
    plan: ScanPlan,
) -> IngestReport:
    """A worker process's share of an ingestion: some partitions, own clients."""
    store = MongoStore.connect(mongo_uri, database)
    try:
        with TopicReader(settings, max_disorder=max_disorder, partitions=partitions) as reader:
            return read_and_write(reader, store, plan)
    finally:
        store.close()


def _lost_partitions(
    reader: TopicReader,
    store: MongoStore,
    keys: list[str],
    extents: dict[int, PartitionExtent],
    start_ms: int,
) -> str:
    """Why records of the range may have left the topic ("" if there is no sign they did).

    Two signs: retention moved a partition's start past the range, or a partition now ends below
    offsets an earlier ingestion already read (the topic was deleted and re-created, or the
    embedded broker restarted with its memory storage empty).
    """
    truncated = reader.truncated_partitions(start_ms, extents)
    if truncated:
        return f"retention deleted records of partition(s) {truncated} of {reader.settings.topic!r}"
    read_before = store.ingested_offsets(keys, reader.settings.topic)
    shrunk = sorted(
        p for p, offset in read_before.items() if p not in extents or extents[p].end < offset
    )
    if shrunk:
        return (
            f"partition(s) {shrunk} of {reader.settings.topic!r} end below offsets already "
            "ingested: the topic was re-created or the broker lost its data"
        )
    return ""


class RecordRouter:
    """Sends each Kafka record of a scan to the pending documents, the pending dead letters, or
    nowhere (it belongs to another window). The hot path of ingestion: integer bounds, cached
    partition keys."""

    def __init__(
        self, topic: str, time_range: TimeRange, allowed_lateness: timedelta, report: IngestReport
    ) -> None:
        self.topic = topic
        self.time_range = time_range
        self.allowed_lateness = allowed_lateness
        self.report = report
        self.start_ms, self.end_ms = time_range.start_ms, time_range.end_ms
        self.margin_ms = allowed_lateness // timedelta(milliseconds=1)
        self.documents: dict[str, dict[str, Any]] = {}
        self.letters: list[dict[str, Any]] = []
        self._keys: dict[int, str] = {}

    @property
    def pending(self) -> int:
        return len(self.documents) + len(self.letters)

    def take(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The pending documents and dead letters, handed over for writing."""
        batch = (list(self.documents.values()), self.letters)
        self.documents, self.letters = {}, []
        return batch

    def route(self, record: ConsumerRecord) -> None:
        position = {
            "topic": self.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp,
        }
        try:
            tx = parse_transaction_json(record.value)
            check_lateness(tx, record.timestamp, self.allowed_lateness)
        except InvalidRecord as error:
            # An invalid record belongs to the window its Kafka timestamp falls in. One stamped
            # before the scanned range was met out of order, where its own window's scan may
            # never look.
            stamped = record.timestamp
            if stamped < self.end_ms and not (
                self.start_ms - self.margin_ms <= stamped < self.start_ms
            ):
                self.report.dead_letters += 1
                self.report.dead_letter_reasons[_reason_kind(str(error))] += 1
                self.letters.append(dead_letter(record, position, str(error)))
            return
        event_ms = tx.tx_datetime.timestamp() * 1000
        if not self.start_ms <= event_ms < self.end_ms:
            return
        window = int(event_ms // WINDOW_MS)
        key = self._keys.get(window)
        if key is None:
            key = self._keys[window] = partition_key(tx.tx_datetime)
        self.report.per_window[key] += 1
        self.report.amounts.add(tx.tx_amount)
        document = tx.fields()
        document["_id"] = tx.transaction_id
        document["partition_key"] = key
        document["source"] = "kafka"
        document["kafka"] = position
        # Same id twice in one batch: the later offset wins, as it would across batches.
        self.documents[tx.transaction_id] = document


def dead_letter(record: ConsumerRecord, position: dict[str, Any], error: str) -> dict[str, Any]:
    """The dead-letter document of a rejected Kafka record, keyed by its position."""
    payload: Any = record.value
    if payload is not None:
        with contextlib.suppress(UnicodeDecodeError):  # undecodable: kept as raw BSON binary
            payload = payload.decode("utf-8")
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    return {
        "_id": f"kafka:{position['topic']}:{position['partition']}:{position['offset']}",
        "source": "kafka",
        "position": position,
        "key": key,
        "payload": payload,
        "error": error,
        "partition_key": partition_key(from_millis(record.timestamp)),
    }


def _reason_kind(error: str) -> str:
    """A short, groupable form of a rejection reason (for metadata tables)."""
    return error.split(":")[0].split(",")[0][:80]

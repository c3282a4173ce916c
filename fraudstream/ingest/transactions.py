"""Kafka → MongoDB ingestion of an event-time range (one 10-minute window or many in one pass).

Guarantee: every valid record whose ``tx_datetime`` falls in the range is upserted exactly once
(by ``transaction_id``) with the ``partition_key`` of its window; every invalid record whose Kafka
timestamp falls in the range lands in ``dead_letters`` exactly once (by topic/partition/offset),
and so does an invalid record the scan meets out of order (stamped long before its neighbours) or
stamped in the future. A *late* record — valid, of an earlier window, at an offset no scan had read
(from the group's committed offset when the run was planned, or from the start of a partition
emptied since) — is stored in its own window and counted (``late_arrivals``); one whose window
ended more than the late horizon before the range is dead-lettered instead. Offsets are committed
only after all writes succeeded, so a crash loses nothing and a re-run double-counts nothing.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta

from fraudstream import config
from fraudstream.batching import BackgroundWriter
from fraudstream.ingest.kafka_source import KafkaSettings, PartitionExtent, TopicReader
from fraudstream.ingest.lag import unread_offsets
from fraudstream.ingest.report import IngestReport, ScanPlan
from fraudstream.ingest.routing import RecordRouter, RoutedBatch
from fraudstream.ingest.schema import holdable_event_times
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import WINDOW_MS, TimeRange, partition_key, to_millis

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
# Below this many records to scan, worker processes (~0.6 s to start, then contending with mongod
# for 2 cores) save nothing: measured about even at 200k records, 1.5x at 1M (bench/ingest.py).
PARALLEL_MIN_RECORDS = 150_000


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
    late_horizon: timedelta | None = None,
) -> IngestReport:
    """Ingest every transaction of ``time_range`` from the topic into MongoDB.

    A large range (at least ``parallel_min_records`` to scan) is split by topic partition over
    ``workers`` processes: one Python process is CPU-bound on decoding and validation
    (bench/ingest.py). ``on_batch_written`` is called with the running count of written
    transactions after each batch, for progress logging (by the single-process path only).
    ``late_horizon`` (default ``FRAUDSTREAM_LATE_HORIZON_HOURS``) bounds how old a late
    record's window may be.
    """
    started = time.monotonic()
    report = IngestReport(time_range, run_id)
    keys = time_range.partition_keys()
    lateness_ms = allowed_lateness // timedelta(milliseconds=1)
    extents = reader.extents()
    high_water = store.topic_high_water(reader.settings.topic)
    held = store.ingested_windows(keys)
    # Only the windows MongoDB does not hold need their records from the topic.
    missing = [w for w in time_range.windows() if partition_key(w.start) not in held]
    needed = TimeRange(missing[0].start, time_range.end) if missing else time_range
    lost = _lost_partitions(reader, store, keys, extents, needed, lateness_ms, high_water)
    if lost:
        if held != set(keys):
            raise WindowExpired(
                f"Cannot ingest {time_range}: {lost}. MongoDB does not hold this range, so it "
                "cannot be rebuilt from Kafka; load it from a batch file in landing/transactions/ "
                "or restore MongoDB from a backup."
            )
        # MongoDB holds the range: keep it, and still read what the topic holds now (replays).
        log.warning("%s; MongoDB already holds %s, keeping it", lost, time_range)
        report.expired_but_kept = True
    holdable = holdable_event_times()
    # Records no scan has read are read whatever their time: late ones, replays after a reset.
    unread = unread_offsets(extents, reader.committed(), high_water)
    by_time = reader.scan_starts(time_range.start_ms - lateness_ms, extents)
    plan = ScanPlan(
        time_range=time_range,
        allowed_lateness=allowed_lateness,
        run_id=run_id,
        extents=extents,
        starts={p: min(at, unread.get(p, at)) for p, at in by_time.items()},
        rerun=bool(held),
        batch_size=batch_size,
        unread_from=unread,
        earliest=holdable.start,
        latest=holdable.end,
        late_horizon=config.late_horizon() if late_horizon is None else late_horizon,
    )
    to_scan = sum(extents[p].end - first for p, first in plan.starts.items())
    groups = [g for g in (sorted(extents)[i::workers] for i in range(workers)) if g]
    report.processes = len(groups) if len(groups) > 1 and to_scan >= parallel_min_records else 1
    if report.processes > 1:
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
    read_to = {p: scan.next_offset for p, scan in report.scans.items()}
    # The ledger and the metadata count what is stored: a record delivered twice counts once.
    report.stored_per_window = store.recount_windows([*keys, *sorted(report.other_windows)])
    store.record_ingested_windows(
        {
            "_id": key,
            "transactions": report.stored_per_window.get(key, 0),
            "run_id": run_id,
            "completed_at": now,
            "source": "kafka",
            "topic": reader.settings.topic,
            # What was read, so a later run can tell a reset topic from a quiet one.
            "offsets": {str(p): offset for p, offset in read_to.items()},
        }
        for key in keys
    )
    store.record_topic_offsets(reader.settings.topic, read_to)
    report.duration_s = time.monotonic() - started
    return report


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
        latest_ms=to_millis(plan.latest),
        unread_from=plan.unread_from,
    )
    report.scans = scans

    range_keys = set(plan.time_range.partition_keys())

    def write(batch: RoutedBatch) -> None:
        upserted = store.upsert_transactions(
            batch.documents, plan.run_id, expect_existing=plan.rerun
        )
        report.inserted += upserted.new
        report.replaced += upserted.stored
        late = store.upsert_transactions(batch.late, plan.run_id, expect_existing=True)
        report.late_arrivals.update(
            d["partition_key"] for d in batch.late if d["_id"] in late.written_ids
        )
        report.other_windows |= (upserted.changed_windows | late.changed_windows) - range_keys
        report.new_dead_letters += store.record_dead_letters(batch.letters, plan.run_id)
        if on_batch_written is not None:
            on_batch_written(report.inserted + report.replaced)

    router = RecordRouter(reader.settings.topic, plan, report, store.ingested_windows)
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
    time_range: TimeRange,
    lateness_ms: int,
    high_water: dict[int, int],
) -> str:
    """Why records of the range may have left the topic ("" if there is no sign they did).

    Two signs: retention moved a partition's start past the range, or a partition now ends below
    offsets an earlier ingestion already read (the topic was deleted and re-created, or the
    embedded broker restarted with its memory storage empty).
    """
    truncated = reader.truncated_partitions(time_range.start_ms - lateness_ms, extents)
    if truncated:
        return f"retention deleted records of partition(s) {truncated} of {reader.settings.topic!r}"
    read_before = store.ingested_offsets(keys, reader.settings.topic)
    for partition, offset in high_water.items():
        read_before[partition] = max(offset, read_before.get(partition, 0))
    shrunk = [p for p, offset in read_before.items() if p not in extents or extents[p].end < offset]
    if not shrunk:
        return ""
    # The topic was emptied since (re-created, or the broker restarted with its memory lost):
    # what it holds now starts with its oldest record. A range whose first window ended (plus
    # the lateness) before that had its records in the lost part; later windows read as usual.
    oldest = reader.oldest_timestamps(extents, [p for p in shrunk if p in extents])
    first_window_end_ms = time_range.start_ms + WINDOW_MS + lateness_ms
    if any(ts is None or ts > first_window_end_ms for ts in oldest.values()) or any(
        p not in extents for p in shrunk
    ):
        return (
            f"partition(s) {sorted(shrunk)} of {reader.settings.topic!r} end below offsets "
            "already ingested and hold nothing from this range: the topic was re-created or the "
            "broker lost its data"
        )
    return ""

"""Reading a record-time range of a Kafka topic: correct on real Kafka, fast on the embedded broker.

Delivery contract: at-least-once reading, made exactly-once in effect by idempotent writes
downstream. Positions are committed under the group id only by the caller, after its writes succeed.

The broker's indexes are not trusted (see DESIGN.md): a partition's true end comes from reading its
tail record, and a range's first offset from a binary search over record timestamps seeded with
the broker's ``offsets_for_times`` answer. Record timestamps within a partition are assumed ordered
up to ``max_disorder`` (records are stamped with their event time or sent promptly after it), so
the scan starts where timestamps reach ``start - max_disorder`` and stops at the first record
stamped at or after ``end + max_disorder``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from fraudstream.config import ServiceUnavailable
from fraudstream.kafka_admin import BOOTSTRAP_TIMEOUT_MS, CONNECT_ERRORS, broker_unreachable

# Measured on 2 cores (DESIGN.md): 5-10k records per poll and multi-MB fetches saturate the decoder.
SCAN_OPTIONS = {
    "max_poll_records": 10_000,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_max_bytes": 32 * 1024 * 1024,
    "fetch_max_wait_ms": 100,
}
PROBE_RECORDS = 100_000
STALL_SECONDS = 30.0


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the topic; ``client_options`` pass through to kafka-python (TLS, SASL)."""

    bootstrap_servers: str
    topic: str
    group_id: str
    client_options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionExtent:
    """What one topic partition holds: offsets ``[start, end)`` and its newest record's time."""

    partition: int
    start: int
    end: int
    last_timestamp_ms: int | None

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start


@dataclass
class PartitionScan:
    """How far a scan read one partition: ``[first_offset, next_offset)``."""

    partition: int
    first_offset: int
    next_offset: int
    records_read: int = 0
    newest_timestamp_ms: int = -(2**63)


class TopicNotFound(RuntimeError):
    """The configured topic does not exist on the broker."""


class TopicReader:
    """Reads records of one topic by record-timestamp range. Use as a context manager."""

    def __init__(self, settings: KafkaSettings, *, max_disorder: timedelta) -> None:
        self.settings = settings
        self.max_disorder_ms = int(max_disorder.total_seconds() * 1000)
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers,
                group_id=settings.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                **SCAN_OPTIONS,
                **settings.client_options,
            )
        except CONNECT_ERRORS:
            raise broker_unreachable(settings.bootstrap_servers) from None
        self._partitions = self._topic_partitions()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close(autocommit=False)

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)

    def extents(self) -> dict[int, PartitionExtent]:
        """Start, true end and newest record time of every partition (one tail fetch each)."""
        starts = self._consumer.beginning_offsets(self._partitions)
        # On the embedded broker the reported end is the last batch's base offset + 1; on Kafka it
        # is the high watermark. Reading from (reported end - 1) yields the true tail either way.
        reported = self._consumer.end_offsets(self._partitions)
        extents = {}
        for tp in self._partitions:
            start, end, last_ts = starts[tp], reported[tp], None
            if end > start:
                # A transaction marker at the tail yields nothing: keep the reported end then.
                tail = self._records_from(tp, end - 1, timeout=1.0)
                if tail:
                    end = max(end, tail[-1].offset + 1)
                    last_ts = tail[-1].timestamp
            extents[tp.partition] = PartitionExtent(tp.partition, start, end, last_ts)
        return extents

    def truncated_partitions(self, start_ms: int, extents: dict[int, PartitionExtent]) -> list[int]:
        """Partitions whose retention deleted records that may be stamped at or after ``start_ms``.

        Evidence of deletion is a log start offset above 0; the loss reaches the range when the
        oldest record left is stamped after ``start_ms - max_disorder``.
        """
        truncated = []
        for tp in self._partitions:
            extent = extents[tp.partition]
            if extent.start == 0:
                continue
            oldest = self._records_from(tp, extent.start) if not extent.is_empty else []
            if not oldest or oldest[0].timestamp > start_ms - self.max_disorder_ms:
                truncated.append(tp.partition)
        return truncated

    def committed(self) -> dict[int, int | None]:
        """The group's committed next-offset per partition (None where nothing was committed)."""
        return {tp.partition: self._consumer.committed(tp) for tp in self._partitions}

    def scan(
        self, start_ms: int, end_ms: int, extents: dict[int, PartitionExtent]
    ) -> tuple[dict[int, PartitionScan], Iterator[list[ConsumerRecord]]]:
        """Records stamped in ``[start_ms, end_ms)`` from every partition, in batches, plus the
        records met on the way that arrived out of order (stamped more than ``max_disorder``
        before a record ahead of them): the caller decides what they are, not the position.

        Returns the per-partition scan positions (filled in as the iterator is consumed) and the
        iterator. Reads each partition once from its located start to the first record beyond
        ``end_ms + max_disorder`` or its end as of ``extents``.
        """
        scans: dict[int, PartitionScan] = {}
        for tp in self._partitions:
            extent = extents[tp.partition]
            first = self._locate(tp, extent, start_ms - self.max_disorder_ms)
            scans[tp.partition] = PartitionScan(tp.partition, first, first)
        return scans, self._scan_records(start_ms, end_ms, extents, scans)

    def commit(self, positions: dict[int, int], metadata: str) -> dict[int, int]:
        """Commit next-offsets under the group where they move the committed offset forward."""
        committed = self.committed()
        advance = {
            partition: offset
            for partition, offset in positions.items()
            if committed.get(partition) is None or offset > committed[partition]
        }
        if advance:
            self._consumer.commit(
                {
                    TopicPartition(self.settings.topic, partition): OffsetAndMetadata(
                        offset, metadata, -1
                    )
                    for partition, offset in advance.items()
                }
            )
        return advance

    def _scan_records(
        self,
        start_ms: int,
        end_ms: int,
        extents: dict[int, PartitionExtent],
        scans: dict[int, PartitionScan],
    ) -> Iterator[list[ConsumerRecord]]:
        stop_ms = end_ms + self.max_disorder_ms
        active = {
            tp
            for tp in self._partitions
            if scans[tp.partition].first_offset < extents[tp.partition].end
        }
        if not active:
            return
        self._consumer.assign(sorted(active, key=lambda tp: tp.partition))
        self._consumer.resume(*active)
        for tp in active:
            self._consumer.seek(tp, scans[tp.partition].first_offset)
        last_progress = time.monotonic()
        while active:
            polled = self._consumer.poll(timeout_ms=500)
            if not polled:
                if time.monotonic() - last_progress > STALL_SECONDS:
                    raise TimeoutError(
                        f"Kafka returned no records for {STALL_SECONDS:.0f}s while "
                        f"{len(active)} partition(s) of {self.settings.topic!r} were still "
                        "behind their end offsets; check the broker's health and re-run."
                    )
                continue
            last_progress = time.monotonic()
            for tp, records in polled.items():
                if tp not in active:
                    continue
                scan, end = scans[tp.partition], extents[tp.partition].end
                batch, finished = [], False
                for record in records:
                    if record.offset >= end or record.timestamp >= stop_ms:
                        finished = True
                        break
                    scan.next_offset = record.offset + 1
                    scan.records_read += 1
                    if start_ms <= record.timestamp < end_ms or (
                        record.timestamp < scan.newest_timestamp_ms - self.max_disorder_ms
                    ):
                        batch.append(record)
                    scan.newest_timestamp_ms = max(scan.newest_timestamp_ms, record.timestamp)
                if finished or scan.next_offset >= end:
                    active.discard(tp)
                    self._consumer.pause(tp)
                if batch:
                    yield batch

    def _locate(self, tp: TopicPartition, extent: PartitionExtent, timestamp_ms: int) -> int:
        """A seek position before which every record is stamped before ``timestamp_ms``.

        Binary search over record timestamps: each probe fetches the batch at an offset, which
        settles the answer when it straddles the timestamp. The broker's own answer is the first
        probe: exact on Kafka (one fetch), merely a starting guess on brokers whose time index is
        batch-granular.
        """
        lo, hi = extent.start, extent.end
        if lo >= hi:
            return lo
        hint = self._consumer.offsets_for_times({tp: max(timestamp_ms, 0)}).get(tp)
        guess = hint.offset - 1 if hint is not None else None
        while lo < hi:
            mid = guess if guess is not None and lo <= guess < hi else (lo + hi) // 2
            guess = None
            records = self._records_from(tp, mid)
            if not records:
                hi = mid
                continue
            first_late = next((r for r in records if r.timestamp >= timestamp_ms), None)
            if first_late is None:
                lo = records[-1].offset + 1
            elif first_late is not records[0]:
                return first_late.offset
            else:
                hi = mid
        return lo

    def _records_from(
        self, tp: TopicPartition, offset: int, timeout: float = 5.0
    ) -> list[ConsumerRecord]:
        """The records of the fetch at ``offset`` (at least one batch); [] if none come in time."""
        self._consumer.assign([tp])
        self._consumer.resume(tp)  # assign() keeps a partition paused by an earlier scan
        self._consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            polled = self._consumer.poll(timeout_ms=200, max_records=PROBE_RECORDS)
            records = [r for r in polled.get(tp, ()) if r.offset >= offset]
            if records:
                return records
        return []

    def _topic_partitions(self) -> list[TopicPartition]:
        try:
            partitions = self._consumer.partitions_for_topic(self.settings.topic)
        except KafkaError as error:
            raise ServiceUnavailable(
                f"Kafka broker at {self.settings.bootstrap_servers} did not answer a metadata "
                f"request ({error}); check that it is running (`fraudstream status`)."
            ) from None
        if not partitions:
            raise TopicNotFound(
                f"Kafka topic {self.settings.topic!r} does not exist on "
                f"{self.settings.bootstrap_servers}: create it (`fraudstream up` does) or set "
                "FRAUDSTREAM_KAFKA_TOPIC to the topic your producers write to."
            )
        return [TopicPartition(self.settings.topic, p) for p in sorted(partitions)]

"""Reading a record-time range of a Kafka topic: correct on real Kafka, fast on the embedded broker.

Delivery contract: at-least-once reading, made exactly-once in effect by idempotent writes
downstream. Positions are committed under the group id only by the caller, after its writes succeed.

The broker's indexes are not trusted (docs/contracts.md): a partition's true end comes from its
tail record, and a range's first offset from a binary search over record timestamps seeded with
the broker's ``offsets_for_times`` answer. Record timestamps within a partition are assumed ordered
up to ``max_disorder`` (records are stamped with their event time or sent promptly after it), so
the scan starts where timestamps reach ``start - max_disorder`` and stops at the first record
stamped at or after ``end + max_disorder``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from fraudstream.config import ServiceUnavailable, kafka_client_options
from fraudstream.ingest.kafka_admin import BOOTSTRAP_TIMEOUT_MS, CONNECT_ERRORS, broker_unreachable
from fraudstream.ingest.offset_search import OffsetSearch

# Measured on 2 cores: 5-10k records per poll and multi-MB fetches saturate the decoder.
SCAN_OPTIONS = {
    "max_poll_records": 10_000,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_max_bytes": 32 * 1024 * 1024,
    "fetch_max_wait_ms": 100,
}
# A probe decodes two records at its offset (enough to see a straddle); a tail read decodes the
# whole last batch.
PROBE_RECORDS = 2
TAIL_RECORDS = 100_000
PROBE_FETCH_BYTES = 256 * 1024
STALL_SECONDS = 30.0


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach the topic; ``client_options`` pass through to kafka-python (TLS, SASL; by
    default from the ``FRAUDSTREAM_KAFKA_*`` security variables)."""

    bootstrap_servers: str
    topic: str
    group_id: str
    client_options: dict[str, object] = field(default_factory=kafka_client_options)


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


def records_behind(
    extents: dict[int, PartitionExtent], committed: dict[int, int | None]
) -> dict[int, int]:
    """Per partition, the records the group has not committed yet (all it holds if it never
    committed there)."""
    return {
        p: extent.end - (committed[p] if committed.get(p) is not None else extent.start)
        for p, extent in extents.items()
    }


@dataclass
class PartitionScan:
    """How far a scan read one partition: ``[first_offset, next_offset)``."""

    partition: int
    first_offset: int
    next_offset: int
    records_read: int = 0
    newest_timestamp_ms: int = -(2**63)
    # Records met out of order: offset -> the newest time read before it (where the scan of the
    # record's own window stops decides whether that scan can still reach it).
    newest_before: dict[int, int] = field(default_factory=dict)


class TopicNotFound(RuntimeError):
    """The configured topic does not exist on the broker."""


class TopicReader:
    """Reads records of one topic by record-timestamp range. Use as a context manager."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        max_disorder: timedelta,
        partitions: Sequence[int] | None = None,
    ) -> None:
        """``partitions`` restricts the reader to some of the topic's partitions (all if None)."""
        self.settings = settings
        self.max_disorder = max_disorder
        self.max_disorder_ms = max_disorder // timedelta(milliseconds=1)
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
            # Probes fetch little: their cost is a round trip, not a multi-MB transfer.
            self._prober = KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers,
                enable_auto_commit=False,
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                max_partition_fetch_bytes=PROBE_FETCH_BYTES,
                fetch_max_wait_ms=100,
                **settings.client_options,
            )
        except CONNECT_ERRORS:
            raise broker_unreachable(settings.bootstrap_servers) from None
        self._partitions = [
            tp
            for tp in self._topic_partitions()
            if partitions is None or tp.partition in partitions
        ]

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close(autocommit=False)
        self._prober.close(autocommit=False)

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._partitions)

    def extents(self) -> dict[int, PartitionExtent]:
        """Start, true end and newest record time of every partition (one fetch for all tails)."""
        starts = self._consumer.beginning_offsets(self._partitions)
        # On the embedded broker the reported end is the last batch's base offset + 1; on Kafka it
        # is the high watermark. Reading from (reported end - 1) yields the true tail either way.
        reported = self._consumer.end_offsets(self._partitions)
        # A transaction marker at the tail yields nothing: the reported end stands then.
        tails = self._records_at(
            {tp: reported[tp] - 1 for tp in self._partitions if reported[tp] > starts[tp]},
            TAIL_RECORDS,
            timeout=1.0,
        )
        extents = {}
        for tp in self._partitions:
            tail = tails.get(tp)
            end = max(reported[tp], tail[-1].offset + 1) if tail else reported[tp]
            last_ts = tail[-1].timestamp if tail else None
            extents[tp.partition] = PartitionExtent(tp.partition, starts[tp], end, last_ts)
        return extents

    def truncated_partitions(self, start_ms: int, extents: dict[int, PartitionExtent]) -> list[int]:
        """Partitions whose retention deleted records that may be stamped at or after ``start_ms``
        (evidence of deletion: a log start offset above 0)."""
        deleted = [p for p, extent in extents.items() if extent.start > 0]
        oldest = self.oldest_timestamps(extents, deleted)
        return sorted(
            p for p, ts in oldest.items() if ts is None or ts > start_ms - self.max_disorder_ms
        )

    def oldest_timestamps(
        self, extents: dict[int, PartitionExtent], partitions: list[int]
    ) -> dict[int, int | None]:
        """The timestamp of the oldest record of each of ``partitions`` (None: it holds none)."""
        mine = [tp for tp in self._partitions if tp.partition in partitions]
        oldest = self._records_at(
            {tp: extents[tp.partition].start for tp in mine if not extents[tp.partition].is_empty}
        )
        return {tp.partition: oldest[tp][0].timestamp if oldest.get(tp) else None for tp in mine}

    def committed(self) -> dict[int, int | None]:
        """The group's committed next-offset per partition (None where nothing was committed)."""
        return {tp.partition: self._consumer.committed(tp) for tp in self._partitions}

    def first_unconsumed_ms(
        self, committed: dict[int, int | None], extents: dict[int, PartitionExtent]
    ) -> dict[int, int]:
        """Timestamp of the first record not consumed by the group, per partition with lag
        (one single-record fetch each, bounded by a one-second timeout)."""
        offsets = {
            tp: next_offset
            for tp in self._partitions
            if (next_offset := max(committed.get(tp.partition) or 0, extents[tp.partition].start))
            < extents[tp.partition].end
        }
        found = self._records_at(offsets, limit=1, timeout=1.0)
        return {tp.partition: records[0].timestamp for tp, records in found.items()}

    def scan_starts(self, start_ms: int, extents: dict[int, PartitionExtent]) -> dict[int, int]:
        """Where a scan of a range beginning at ``start_ms`` starts, per partition."""
        return self._locate(extents, start_ms - self.max_disorder_ms)

    def scan(
        self,
        start_ms: int,
        end_ms: int,
        extents: dict[int, PartitionExtent],
        starts: dict[int, int] | None = None,
        latest_ms: int | None = None,
        unread_from: dict[int, int] | None = None,
    ) -> tuple[dict[int, PartitionScan], Iterator[list[ConsumerRecord]]]:
        """Records stamped in ``[start_ms, end_ms)`` from every partition, in batches, plus the
        records met on the way that arrived out of order (stamped more than ``max_disorder``
        before a record ahead of them) or stamped after ``latest_ms`` (in the future: such a
        record neither ends the scan nor counts as the partition's newest time), and the records
        stamped before the range at or after ``unread_from`` (offsets no scan has read): the
        caller decides what they are, not the position.

        Returns the per-partition scan positions (filled in as the iterator is consumed) and the
        iterator. Reads each partition once from its start (``starts``, located if not given) to
        the first record beyond ``end_ms + max_disorder`` or its end as of ``extents``.
        """
        if starts is None:
            starts = self.scan_starts(start_ms, extents)
        scans = {
            tp.partition: PartitionScan(tp.partition, starts[tp.partition], starts[tp.partition])
            for tp in self._partitions
        }
        latest = latest_ms if latest_ms is not None else 2**63
        return scans, self._scan_records(
            start_ms, end_ms, extents, scans, latest, unread_from or {}
        )

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
        latest_ms: int,
        unread: dict[int, int],
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
        self._consumer.resume(*active)  # assign() keeps partitions paused by an earlier scan
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
                unread_from = unread.get(tp.partition, end)
                batch, finished = [], False
                for record in records:
                    stamped = record.timestamp
                    if record.offset >= end or stop_ms <= stamped <= latest_ms:
                        finished = True
                        break
                    scan.next_offset = record.offset + 1
                    scan.records_read += 1
                    if stamped > latest_ms:
                        batch.append(record)
                        continue
                    if stamped < scan.newest_timestamp_ms - self.max_disorder_ms:
                        scan.newest_before[record.offset] = scan.newest_timestamp_ms
                        batch.append(record)
                    elif start_ms <= stamped < end_ms or (
                        stamped < start_ms and record.offset >= unread_from
                    ):
                        batch.append(record)
                    scan.newest_timestamp_ms = max(scan.newest_timestamp_ms, stamped)
                if finished or scan.next_offset >= end:
                    active.discard(tp)
                    self._consumer.pause(tp)
                if batch:
                    yield batch

    def _locate(self, extents: dict[int, PartitionExtent], timestamp_ms: int) -> dict[int, int]:
        """Per partition, a seek position before which every record is stamped before
        ``timestamp_ms``: a search over record timestamps, all partitions advancing together.

        A probe decodes two records at an offset, which settle the answer when they straddle the
        timestamp. The broker's own answer seeds the first probe: exact on Kafka (one fetch),
        merely a guess on brokers whose time index is batch-granular. Then the partition's first
        record (a range that starts before the data is settled there), then interpolation between
        the known timestamps alternating with bisection (few probes on evenly spread data, never
        more than bisection's). It stops within LOCATE_PRECISION offsets, on the early side.
        """
        hints = self._prober.offsets_for_times(
            {tp: max(timestamp_ms, 0) for tp in self._partitions}
        )
        searches = {}
        for tp in self._partitions:
            extent, hint = extents[tp.partition], hints.get(tp)
            searches[tp] = OffsetSearch(extent.start, extent.end, extent.last_timestamp_ms)
            if hint is not None and extent.start <= hint.offset - 1 < extent.end:
                searches[tp].guess = hint.offset - 1
        while True:
            planned = {tp: search.next_probe(timestamp_ms) for tp, search in searches.items()}
            probes = {tp: at for tp, at in planned.items() if at is not None}
            if not probes:
                break
            answers = self._records_at(probes)
            for tp, at in probes.items():
                searches[tp].settle(at, answers.get(tp, []), timestamp_ms)
        return {tp.partition: search.answer for tp, search in searches.items()}

    def _records_at(
        self, offsets: dict[TopicPartition, int], limit: int = PROBE_RECORDS, timeout: float = 5.0
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Up to ``limit`` records from each partition's offset on; a partition that returns
        nothing in time is left out.

        One partition at a time: measured on the embedded broker, a single-partition fetch
        answers in ~15 ms while a fetch spanning partitions waits out ``fetch_max_wait_ms``.
        """
        found: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp, offset in offsets.items():
            self._prober.assign([tp])
            self._prober.seek(tp, offset)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                polled = self._prober.poll(timeout_ms=200, max_records=limit)
                records = [r for r in polled.get(tp, ()) if r.offset >= offset]
                if records:
                    found[tp] = records
                    break
        return found

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

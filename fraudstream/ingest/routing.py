"""Where each record of a scan goes: the range's documents, a late record's own window, the dead
letters, or nowhere (another window's scan reads it). The hot path of ingestion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kafka.consumer.fetcher import ConsumerRecord

from fraudstream.ingest.report import IngestReport, ScanPlan
from fraudstream.ingest.schema import (
    InvalidRecord,
    Transaction,
    check_event_time,
    check_lateness,
    dead_letter_payload,
    parse_transaction_json,
)
from fraudstream.windows import WINDOW_MS, from_millis, partition_key, to_millis


@dataclass(frozen=True)
class RoutedBatch:
    """One batch of a scan, handed to the writer."""

    documents: list[dict[str, Any]]  # the range's transactions
    late: list[dict[str, Any]]  # unread records of earlier windows, for their own windows
    letters: list[dict[str, Any]]  # dead letters


class RecordRouter:
    """Sends each Kafka record of a scan to the pending documents, the late documents, the
    pending dead letters, or nowhere (a record of a later window, or one an earlier scan read
    already). The hot path of ingestion: integer bounds, cached partition keys."""

    def __init__(
        self,
        topic: str,
        plan: ScanPlan,
        report: IngestReport,
        ingested: Callable[[list[str]], set[str]],
    ) -> None:
        self.topic = topic
        self.plan = plan
        self.report = report
        self.start_ms, self.end_ms = plan.time_range.start_ms, plan.time_range.end_ms
        self.margin_ms = plan.allowed_lateness // timedelta(milliseconds=1)
        self.latest_ms = to_millis(plan.latest)
        self.oldest_late_ms = self.start_ms - plan.late_horizon // timedelta(milliseconds=1)
        self.documents: dict[str, dict[str, Any]] = {}
        self.late: dict[str, dict[str, Any]] = {}
        self.letters: list[dict[str, Any]] = []
        self._keys: dict[int, str] = {}
        self._ingested = ingested
        self._ingested_windows: dict[str, bool] = {}

    @property
    def pending(self) -> int:
        return len(self.documents) + len(self.late) + len(self.letters)

    def take(self) -> RoutedBatch:
        """The pending documents and dead letters, handed over for writing."""
        batch = RoutedBatch(list(self.documents.values()), list(self.late.values()), self.letters)
        self.documents, self.late, self.letters = {}, {}, []
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
            check_event_time(tx, self.plan.earliest, self.plan.latest)
            check_lateness(tx, record.timestamp, self.plan.allowed_lateness)
        except InvalidRecord as error:
            # An invalid record belongs to the window its Kafka timestamp falls in. One stamped
            # before the scanned range was met out of order, where its own window's scan may
            # never look; one stamped in the future has no window that will ever be scanned.
            stamped = record.timestamp
            if stamped > self.latest_ms or (
                stamped < self.end_ms
                and not (self.start_ms - self.margin_ms <= stamped < self.start_ms)
            ):
                self._reject(record, position, str(error))
            return
        event_ms = tx.tx_datetime.timestamp() * 1000
        if self.start_ms <= event_ms < self.end_ms:
            _keep_newest(self.documents, self._document(tx, event_ms, position))
            self.report.per_window[self._key(tx, event_ms)] += 1
            self.report.amounts.add(tx.tx_amount)
        elif event_ms < self.start_ms and self._unread(record):
            self._late(record, tx, event_ms, position)

    def _late(
        self, record: ConsumerRecord, tx: Transaction, event_ms: float, position: dict[str, Any]
    ) -> None:
        """A valid record of an earlier window at an offset no scan had read: stored in its own
        window now, within the horizon (dead-lettered beyond it), when that window's own scan
        will not come back for it: the window was ingested already, or its scan (still to come,
        a retry after a failure) stops at a newer record before this one."""
        key = self._key(tx, event_ms)
        if key not in self._ingested_windows:
            self._ingested_windows[key] = bool(self._ingested([key]))
        if not self._ingested_windows[key]:
            scan = self.report.scans.get(record.partition)
            newest_before = scan.newest_before.get(record.offset, 0) if scan else 0
            window_end_ms = (int(event_ms // WINDOW_MS) + 1) * WINDOW_MS
            if max(record.timestamp, newest_before) < window_end_ms + self.margin_ms:
                return  # its window's scan reaches it
        if event_ms < self.oldest_late_ms:
            self._reject(
                record,
                position,
                f"late record: tx_datetime {tx.tx_datetime.isoformat()} (window {key}) arrived "
                f"more than {self.plan.late_horizon} before the windows being read "
                "(FRAUDSTREAM_LATE_HORIZON_HOURS); load it as a batch file in "
                "landing/transactions/ to place it",
            )
            return
        _keep_newest(self.late, self._document(tx, event_ms, position))

    def _unread(self, record: ConsumerRecord) -> bool:
        first = self.plan.unread_from.get(record.partition)
        return first is None or record.offset >= first

    def _key(self, tx: Transaction, event_ms: float) -> str:
        window = int(event_ms // WINDOW_MS)
        key = self._keys.get(window)
        if key is None:
            key = self._keys[window] = partition_key(tx.tx_datetime)
        return key

    def _document(
        self, tx: Transaction, event_ms: float, position: dict[str, Any]
    ) -> dict[str, Any]:
        document = tx.fields()
        document["_id"] = tx.transaction_id
        document["partition_key"] = self._key(tx, event_ms)
        document["source"] = "kafka"
        document["kafka"] = position
        document["revision"] = position["timestamp"]  # a record sent later supersedes
        return document

    def _reject(self, record: ConsumerRecord, position: dict[str, Any], error: str) -> None:
        self.report.dead_letters += 1
        self.report.dead_letter_reasons[_reason_kind(error)] += 1
        self.letters.append(dead_letter(record, position, error))


def _keep_newest(pending: dict[str, dict[str, Any]], document: dict[str, Any]) -> None:
    """Pend a document unless the same transaction is already pending in a newer version (the
    same id may come from several partitions, in any order the scan meets them)."""
    held = pending.get(document["_id"])
    if held is None or document["revision"] >= held["revision"]:
        pending[document["_id"]] = document


def dead_letter(record: ConsumerRecord, position: dict[str, Any], error: str) -> dict[str, Any]:
    """The dead-letter document of a rejected Kafka record, keyed by its position."""
    key = record.key.decode("utf-8", "replace")[:1_000] if record.key is not None else None
    return {
        "_id": f"kafka:{position['topic']}:{position['partition']}:{position['offset']}",
        "source": "kafka",
        "position": position,
        "key": key,
        **dead_letter_payload(record.value),
        "error": error,
        "partition_key": partition_key(from_millis(record.timestamp)),
    }


def _reason_kind(error: str) -> str:
    """A short, groupable form of a rejection reason (for metadata tables)."""
    return error.split(":")[0].split(",")[0][:80]

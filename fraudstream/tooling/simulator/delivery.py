"""Delivering simulated (or replayed) data the way real sources would: transactions to Kafka with
event-time timestamps keyed by customer, labels later through label files and the label API feed.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
from kafka import KafkaProducer

from fraudstream.config import kafka_client_options
from fraudstream.ingest.kafka_admin import BOOTSTRAP_TIMEOUT_MS, CONNECT_ERRORS, broker_unreachable
from fraudstream.tooling.simulator.label_feed import append_labels

HANDBOOK_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")


@dataclass
class DeliveryReport:
    """What a simulate / replay call delivered."""

    transactions: int = 0
    frauds: int = 0
    first_event: datetime | None = None
    last_event: datetime | None = None
    label_files: list[Path] = field(default_factory=list)
    labels_in_files: int = 0
    labels_in_feed: int = 0


def label_times(frame: pd.DataFrame, delay: timedelta) -> pd.Series:
    """When each label is reported: ``tx_datetime + delay * U(0.5, 1.5)``, fixed per transaction."""
    spread = np.array([zlib.crc32(t.encode()) % 10_000 for t in frame["transaction_id"]]) / 10_000
    return frame["tx_datetime"] + pd.to_timedelta((0.5 + spread) * delay.total_seconds(), unit="s")


def latest_report(delay: timedelta) -> timedelta:
    """How long after its transaction a label of ``label_times`` is reported at the latest."""
    return delay * 1.5


class TransactionPublisher:
    """Publishes transaction frames to the topic (docs/contracts.md). Use as a context manager.

    Delivery: at-least-once (``acks=all`` with retries); the consumer side is idempotent.
    """

    def __init__(self, bootstrap: str, topic: str, **client_options: object) -> None:
        self.topic = topic
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                linger_ms=20,
                batch_size=512 * 1024,
                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
                **(kafka_client_options() | client_options),
            )
        except CONNECT_ERRORS:
            raise broker_unreachable(bootstrap) from None

    def __enter__(self) -> TransactionPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._producer.flush()
        self._producer.close()

    def publish(self, frame: pd.DataFrame) -> int:
        """Send every row; the record timestamp is the event time, the key the customer id."""
        times = frame["tx_datetime"]
        iso = times.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        millis = (times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        for tid, when, ms, customer, terminal, amount in zip(
            frame["transaction_id"],
            iso,
            millis,
            frame["customer_id"],
            frame["terminal_id"],
            frame["tx_amount"],
            strict=True,
        ):
            value = orjson.dumps(
                {
                    "transaction_id": tid,
                    "tx_datetime": when,
                    "customer_id": customer,
                    "terminal_id": terminal,
                    "tx_amount": float(amount),
                }
            )
            self._producer.send(
                self.topic, key=customer.encode(), value=value, timestamp_ms=int(ms)
            )
        self._producer.flush()
        return len(frame)


def deliver_labels(
    frame: pd.DataFrame, state_dir: Path, delay: timedelta, now: datetime
) -> tuple[list[Path], int, int]:
    """Labels of ``frame`` (needs ``tx_fraud``): the feed gets all of them (each visible from its
    report time), ``landing/labels/`` a CSV of those already reported by ``now``.

    Returns (files written, labels in files, labels appended to the feed).
    """
    if frame.empty:
        return [], 0, 0
    reported = label_times(frame, delay)
    appended = append_labels(
        state_dir,
        zip(frame["transaction_id"], frame["tx_fraud"], reported.tolist(), strict=True),
    )
    due = frame.loc[reported <= now, ["transaction_id", "tx_fraud"]].assign(
        reported_at=reported[reported <= now].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    )
    if due.empty:
        return [], 0, appended
    return [write_landing_csv(state_dir / "landing" / "labels", "labels", due)], len(due), appended


def land_transactions(frame: pd.DataFrame, state_dir: Path) -> Path:
    """The transactions as a batch file in ``landing/transactions/`` (the contract's columns):
    the landing-files sensor loads it through the same `transactions` asset as the stream."""
    rows = frame[["transaction_id", "customer_id", "terminal_id", "tx_amount"]].assign(
        tx_datetime=frame["tx_datetime"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    )
    return write_landing_csv(state_dir / "landing" / "transactions", "transactions", rows)


def write_landing_csv(directory: Path, prefix: str, frame: pd.DataFrame) -> Path:
    """Write a CSV atomically (temp file, then rename): a sensor never sees half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    content = buffer.getvalue().encode()
    digest = hashlib.sha256(content).hexdigest()[:12]
    path = directory / f"{prefix}-{digest}.csv"
    tmp = directory / f".{path.name}.tmp"
    tmp.write_bytes(content)
    tmp.replace(path)
    return path


def read_handbook_csv(path: Path, chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """Frames of a handbook-format CSV (headers matched case-insensitively, extras ignored)."""
    with open(path, newline="") as handle:
        header = handle.readline()
    columns = {name.strip().lower(): name for name in header.strip().split(",")}
    missing = [c for c in HANDBOOK_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"{path} lacks the column(s) {', '.join(missing)}; a handbook CSV has "
            "TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT (and TX_FRAUD)"
        )
    wanted = [*HANDBOOK_COLUMNS, "tx_fraud"] if "tx_fraud" in columns else list(HANDBOOK_COLUMNS)
    reader = pd.read_csv(
        path,
        usecols=[columns[c] for c in wanted],
        dtype={columns[c]: str for c in ("transaction_id", "customer_id", "terminal_id")},
        chunksize=chunk_rows,
    )
    for chunk in reader:
        chunk.columns = [c.strip().lower() for c in chunk.columns]
        chunk["tx_datetime"] = pd.to_datetime(chunk["tx_datetime"], utc=True, format="ISO8601")
        yield chunk.sort_values("tx_datetime", kind="stable").reset_index(drop=True)


def deliver(
    frames: Iterable[pd.DataFrame],
    publisher: TransactionPublisher,
    state_dir: Path,
    label_delay: timedelta,
) -> DeliveryReport:
    """Publish every frame and deliver its labels (when the frame has ``tx_fraud``)."""
    report = DeliveryReport()
    now = datetime.now(UTC)
    for frame in frames:
        if frame.empty:
            continue
        report.transactions += publisher.publish(frame)
        first, last = frame["tx_datetime"].min(), frame["tx_datetime"].max()
        report.first_event = min(filter(None, (report.first_event, first.to_pydatetime())))
        report.last_event = max(filter(None, (report.last_event, last.to_pydatetime())))
        if "tx_fraud" in frame:
            report.frauds += int(frame["tx_fraud"].sum())
            files, in_files, in_feed = deliver_labels(frame, state_dir, label_delay, now)
            report.label_files += files
            report.labels_in_files += in_files
            report.labels_in_feed += in_feed
    return report

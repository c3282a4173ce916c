"""What one ingestion plans (``ScanPlan``, shared with its worker processes) and what it reports
(``IngestReport``, for the logs, the ledger and the asset's metadata)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fraudstream.ingest.kafka_source import PartitionExtent, PartitionScan
from fraudstream.windows import TimeRange


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
    stored_per_window: dict[str, int] = field(default_factory=dict)  # distinct, after the run
    late_arrivals: Counter[str] = field(default_factory=Counter)  # new or changed, per window
    # Windows outside the range whose documents this run changed: late records stored in them,
    # or transactions that moved from them to a window of the range (a corrected tx_datetime).
    other_windows: set[str] = field(default_factory=set)
    dead_letters: int = 0
    new_dead_letters: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    amounts: AmountStats = field(default_factory=AmountStats)
    scans: dict[int, PartitionScan] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    expired_but_kept: bool = False
    duration_s: float = 0.0
    processes: int = 1  # a large range is split by topic partition over worker processes

    def merge(self, part: IngestReport) -> None:
        """Add what one share of the partitions did."""
        self.per_window.update(part.per_window)
        self.inserted += part.inserted
        self.replaced += part.replaced
        self.late_arrivals.update(part.late_arrivals)
        self.other_windows |= part.other_windows
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
    unread_from: dict[int, int]  # per partition, the first offset no scan had read when planned
    earliest: datetime  # the first partition's start
    latest: datetime  # the wall clock plus the future tolerance
    late_horizon: timedelta

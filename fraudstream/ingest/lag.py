"""Kafka lag and the ingestion plan the lag sensor acts on (pure functions).

Per topic partition: the true end, the group's committed offset, the lag, the newest record time.
The event-time **watermark** is the oldest of the partitions' newest record times minus the
allowed lateness ``L``: timestamps within a partition are ordered up to ``L`` (the contract), so
every record stamped before it has arrived. A 10-minute window is *closed* once its end is at or
before the watermark; a window still receiving late data waits. When no partition's end has moved
for an idle grace period, the stream has stopped and the newest record's window closes too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fraudstream.ingest.kafka_source import PartitionExtent
from fraudstream.windows import WINDOW, from_millis, window_start


@dataclass(frozen=True)
class PartitionLag:
    """One topic partition, as the lag sensor sees it."""

    partition: int
    end: int
    committed: int | None
    newest: datetime | None
    first_unconsumed: datetime | None  # time of the record at the committed offset

    @property
    def lag(self) -> int:
        return max(self.end - (self.committed or 0), 0)


@dataclass(frozen=True)
class TopicLag:
    partitions: list[PartitionLag]
    allowed_lateness: timedelta
    idle: bool = False  # no partition's end moved for the idle grace period

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def watermark(self) -> datetime | None:
        """The slowest partition's newest record time minus the allowed lateness; once the topic
        has been idle for the grace period, the end of the newest record's window (a stream that
        stops must not leave its last windows open forever)."""
        newest = [p.newest for p in self.partitions if p.newest is not None]
        if not newest:
            return None
        event_time = min(newest) - self.allowed_lateness
        if self.idle:
            return max(event_time, window_start(max(newest)) + WINDOW)
        return event_time

    @property
    def oldest_unconsumed(self) -> datetime | None:
        times = [p.first_unconsumed for p in self.partitions if p.lag and p.first_unconsumed]
        return min(times) if times else None


def topic_lag(
    extents: dict[int, PartitionExtent],
    committed: dict[int, int | None],
    first_unconsumed_ms: dict[int, int],
    allowed_lateness: timedelta,
    now: datetime,
    *,
    idle: bool = False,
) -> TopicLag:
    """The lag of every partition. Record times are bounded by ``now``: a record stamped in the
    future must not close windows whose data has not arrived yet."""
    partitions = [
        PartitionLag(
            partition=p,
            end=extent.end,
            committed=committed.get(p),
            newest=min(from_millis(extent.last_timestamp_ms), now)
            if extent.last_timestamp_ms
            else None,
            first_unconsumed=min(from_millis(first_unconsumed_ms[p]), now)
            if p in first_unconsumed_ms
            else None,
        )
        for p, extent in sorted(extents.items())
    ]
    return TopicLag(partitions, allowed_lateness, idle)


@dataclass(frozen=True)
class WindowRange:
    """Consecutive windows ``[start, end)`` to ingest in one run."""

    start: datetime
    end: datetime

    @property
    def windows(self) -> int:
        return int((self.end - self.start) / WINDOW)


def windows_to_ingest(
    lag: TopicLag,
    requested_until: datetime | None,
    materialized: Iterable[datetime],
    first_window: datetime,
    max_windows: int = 144,
) -> list[WindowRange]:
    """Closed windows not requested before (from the first unconsumed record on, the first
    time) and not materialized, as ranges of at most ``max_windows`` consecutive windows."""
    watermark, oldest = lag.watermark, lag.oldest_unconsumed
    if watermark is None:
        return []
    # Committed offsets mark where a scan stopped, which may lie past its windows' records: once
    # windows were requested, the next ones follow on from there whatever the lag says.
    if requested_until is not None:
        start = requested_until
    elif oldest is not None:
        # A record may sit up to L after its event time's window: start that much earlier.
        start = max(window_start(oldest - lag.allowed_lateness), first_window)
    else:
        return []
    closed_until = window_start(watermark)
    if start >= closed_until:
        return []  # before reading ``materialized``: it may be a lazy, costly query
    done = set(materialized)
    ranges: list[WindowRange] = []
    extending = False
    window = start
    while window < closed_until:
        if window in done:
            extending = False
        elif extending and ranges[-1].windows < max_windows:
            ranges[-1] = WindowRange(ranges[-1].start, window + WINDOW)
        else:
            ranges.append(WindowRange(window, window + WINDOW))
            extending = True
        window += WINDOW
    return ranges


def late_sweep(lag: TopicLag, requested_until: datetime | None) -> WindowRange | None:
    """The newest requested window again, when the topic is idle and still holds unconsumed
    records stamped before it: late records appended after every window was ingested. That
    window's scan reads to the end of each partition and stores them in their own windows."""
    oldest = lag.oldest_unconsumed
    if not lag.idle or requested_until is None or oldest is None or oldest >= requested_until:
        return None
    return WindowRange(requested_until - WINDOW, requested_until)


def failed_windows(
    checked_from: datetime | None,
    requested_until: datetime | None,
    materialized: Iterable[datetime],
    max_windows: int = 144,
) -> list[WindowRange]:
    """Windows from ``checked_from`` (the first requested window no earlier check found
    complete) to ``requested_until`` that are still not materialized, as ranges: their runs
    failed (a successful range run materializes every window of it, empty ones too). The sensor
    asks for them again once none of its runs is in flight, so a gap heals when its cause is
    gone; a check covers only the windows since the last gap, not the whole history."""
    if checked_from is None or requested_until is None:
        return []
    done = set(materialized)
    ranges: list[WindowRange] = []
    window = checked_from
    while window < requested_until:
        if window in done:
            pass
        elif ranges and ranges[-1].end == window and ranges[-1].windows < max_windows:
            ranges[-1] = WindowRange(ranges[-1].start, window + WINDOW)
        else:
            ranges.append(WindowRange(window, window + WINDOW))
        window += WINDOW
    return ranges


def unread_offsets(
    extents: dict[int, PartitionExtent],
    committed: dict[int, int | None],
    high_water: dict[int, int],
) -> dict[int, int]:
    """Per partition, the first offset no scan has read: the group's committed offset, or the
    partition's start when the topic was emptied since that offset was read (the partition ends
    below it, or below offsets read before while the group lost its commits with the broker's
    memory): what it holds now was published afterwards, replays included. A partition whose
    group never committed and was never read is absent: it holds no record a scan skipped."""
    unread = {}
    for p, extent in extents.items():
        done = committed.get(p)
        if done is not None and done <= extent.end:
            unread[p] = done
        elif done is not None or extent.end < high_water.get(p, 0):
            unread[p] = extent.start
    return unread


def emptied_partitions(
    extents: dict[int, PartitionExtent], high_water: dict[int, int]
) -> list[int]:
    """Partitions that end below offsets an ingestion already read: the topic was re-created or
    the broker lost its memory, and records no run had stored are gone from Kafka."""
    return sorted(
        p for p, offset in high_water.items() if p not in extents or extents[p].end < offset
    )

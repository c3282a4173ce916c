"""Time windows: the 10-minute grid every transaction is assigned to by its event time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WINDOW = timedelta(minutes=10)
WINDOW_MS = WINDOW // timedelta(milliseconds=1)
# Dagster's minute-level partition key format; `pipeline/partitions.py` uses the same constant,
# so the keys written to MongoDB are exactly the keys the UI shows.
PARTITION_KEY_FORMAT = "%Y-%m-%d-%H:%M"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_MS = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


@dataclass(frozen=True)
class TimeRange:
    """A half-open event-time interval ``[start, end)``, timezone-aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs timezone-aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"TimeRange end {self.end} must be after start {self.start}")

    @property
    def start_ms(self) -> int:
        return to_millis(self.start)

    @property
    def end_ms(self) -> int:
        return to_millis(self.end)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def shifted(self, by: timedelta) -> TimeRange:
        return TimeRange(self.start + by, self.end + by)

    def key_range(self) -> dict[str, str]:
        """A MongoDB condition on ``partition_key`` for the windows in the range (keys sort in
        time order, so the condition is one indexed range)."""
        return {"$gte": partition_key(self.start), "$lt": partition_key(self.end)}

    def windows(self) -> Iterator[TimeRange]:
        """The 10-minute windows that make up this range (the range must lie on the grid)."""
        if window_start(self.start) != self.start or window_start(self.end) != self.end:
            raise ValueError(f"{self} is not aligned to {WINDOW} windows")
        cursor = self.start
        while cursor < self.end:
            yield TimeRange(cursor, cursor + WINDOW)
            cursor += WINDOW

    def partition_keys(self) -> list[str]:
        """The partition keys of the range's windows, in order."""
        return [partition_key(window.start) for window in self.windows()]

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def to_millis(moment: datetime) -> int:
    """Milliseconds since the epoch, exact (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def from_millis(millis: int) -> datetime:
    """The UTC time of epoch milliseconds; a timestamp beyond what a datetime holds (a record
    stamped in the year 300,000) is clamped to the representable range instead of raising."""
    return _EPOCH + timedelta(milliseconds=min(max(millis, _MIN_MS), _MAX_MS))


def window_start(moment: datetime) -> datetime:
    """Start of the 10-minute window holding ``moment``: a boundary belongs to the later window."""
    return _EPOCH + ((moment - _EPOCH) // WINDOW) * WINDOW


def partition_key(moment: datetime) -> str:
    """The Dagster partition key of the window holding ``moment``."""
    return window_start(moment).strftime(PARTITION_KEY_FORMAT)


def window_of_key(key: str) -> TimeRange:
    """The window a partition key names."""
    start = datetime.strptime(key, PARTITION_KEY_FORMAT).replace(tzinfo=UTC)
    if window_start(start) != start:
        raise ValueError(f"partition key {key!r} is not on the {WINDOW} grid")
    return TimeRange(start, start + WINDOW)


def parse_utc(text: str) -> datetime:
    """Parse an ISO-8601 date-time; a value without an offset is UTC."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)

"""Which model version scores a window, and which scored windows deserve a newer one. Pure.

A window may only be scored by a version whose labelled training rows all precede it
(``data_until < window start``: no leakage). Among those, the best is the one whose data reaches
closest to the window, the newest of equals. A window scored before a better eligible version
landed is *stale* when that version belongs to a newer full fit (its trees learned from more) or
learned from at least ``fraud_growth`` more labelled frauds than the version that scored it.
Only windows within ``horizon`` of the newest scored window are re-scored: past that, a score
is history, and the re-scoring cost stays bounded however long the system runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from fraudstream.windows import WINDOW, TimeRange


@dataclass(frozen=True)
class VersionSummary:
    """What choosing and comparing versions needs of a promoted registry record."""

    version: int
    data_until: datetime  # the newest labelled transaction its lineage learned from
    full_fit: int  # the version number of its lineage's full fit (itself for a full fit)
    seen_frauds: int  # labelled frauds its lineage learned from


@dataclass(frozen=True)
class Choice:
    """The version that scores a window, and why."""

    version: int
    reason: str


def best_for_window(versions: Iterable[VersionSummary], start: datetime) -> Choice | None:
    """The promoted version for the window starting at ``start``: the one whose data ends
    closest before it (the newest of equals); a window older than every version's data gets
    the one with the oldest data, and the reason says so. None without any version."""
    candidates = list(versions)
    if not candidates:
        return None
    eligible = [v for v in candidates if v.data_until < start]
    if eligible:
        best = max(eligible, key=lambda v: (v.data_until, v.version))
        return Choice(best.version, "newest promoted version trained on data before the window")
    oldest = min(candidates, key=lambda v: (v.data_until, v.version))
    return Choice(
        oldest.version,
        "no version's training data precedes this window: the one with the oldest data scores it",
    )


@dataclass(frozen=True)
class RescoringPolicy:
    """Which stale windows are worth re-scoring."""

    horizon: timedelta = timedelta(days=7)  # before the newest scored window
    fraud_growth: float = 0.25  # more labelled frauds learned, within one full fit's lineage
    max_windows_per_run: int = 144  # a day of windows per re-scoring run


@dataclass(frozen=True)
class StaleWindow:
    start: datetime
    scored_by: int
    best: int


def stale_windows(
    scored: dict[datetime, int],
    versions: Sequence[VersionSummary],
    policy: RescoringPolicy,
) -> list[StaleWindow]:
    """The windows of ``scored`` (window start -> version that scored it) within the horizon
    whose best version now is clearly better than the one that scored them. ``versions`` holds
    the promoted versions and every version that scored a window."""
    if not scored:
        return []
    by_number = {v.version: v for v in versions}
    newest = max(scored)
    stale = []
    for start in sorted(scored):
        if start < newest - policy.horizon:
            continue
        choice = best_for_window(versions, start)
        current = by_number.get(scored[start])
        if choice is None or choice.version == scored[start]:
            continue
        best = by_number[choice.version]
        if current is None or is_clearly_better(best, current, policy):
            stale.append(StaleWindow(start, scored[start], best.version))
    return stale


def is_clearly_better(
    best: VersionSummary, current: VersionSummary, policy: RescoringPolicy
) -> bool:
    """A newer full fit, or the same lineage having learned ``fraud_growth`` more frauds."""
    if best.full_fit != current.full_fit:
        return best.full_fit > current.full_fit
    return best.seen_frauds >= (1 + policy.fraud_growth) * max(current.seen_frauds, 1)


def as_ranges(windows: Sequence[StaleWindow], max_windows: int) -> list[TimeRange]:
    """The stale windows as few ranges as possible, each spanning at most ``max_windows``
    windows: one run per range. A range may span windows that are not stale between stale
    ones; scoring them again gives the same result (their best version is theirs already),
    and costs far less than a run of its own (a run's start is seconds, a window's scoring
    milliseconds)."""
    ranges: list[TimeRange] = []
    for window in sorted(windows, key=lambda w: w.start):
        last = ranges[-1] if ranges else None
        if last is not None and (window.start + WINDOW - last.start) // WINDOW <= max_windows:
            ranges[-1] = TimeRange(last.start, window.start + WINDOW)
        else:
            ranges.append(TimeRange(window.start, window.start + WINDOW))
    return ranges

"""The lag sensor's plan as plain functions: watermark, closed windows, ranges, no repeats."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from fraudstream.ingest.kafka_source import PartitionExtent
from fraudstream.ingest.lag import (
    TopicLag,
    WindowRange,
    emptied_partitions,
    failed_windows,
    late_sweep,
    topic_lag,
    unread_offsets,
    windows_to_ingest,
)
from fraudstream.windows import to_millis

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
L = timedelta(minutes=5)
MINUTE = timedelta(minutes=1)
NOW = T0 + timedelta(days=1)  # the wall clock: after every record of these tests


def lag_at(newest: list[datetime], first: datetime, committed: int | None = 0) -> TopicLag:
    extents = {
        p: PartitionExtent(p, 0, 100, to_millis(t)) for p, t in enumerate(newest)
    }  # fmt: skip
    return topic_lag(
        extents,
        dict.fromkeys(extents, committed),
        {p: to_millis(first) for p in extents},
        L,
        NOW,
    )


def test_the_watermark_is_the_slowest_partition_minus_the_lateness() -> None:
    lag = lag_at([T0 + 40 * MINUTE, T0 + 33 * MINUTE], T0)
    assert lag.watermark == T0 + 28 * MINUTE
    assert lag.total == 200 and lag.oldest_unconsumed == T0


def test_closed_windows_become_one_range_and_open_ones_wait() -> None:
    lag = lag_at([T0 + 40 * MINUTE, T0 + 36 * MINUTE], T0 + 2 * MINUTE)
    # watermark 08:31: windows 08:00, 08:10, 08:20 are closed; 08:30 still takes late data.
    # The scan starts one lateness earlier: 07:50 may hold records of 08:00's stream.
    assert windows_to_ingest(lag, None, [], T0 - timedelta(days=1)) == [
        WindowRange(T0 - 10 * MINUTE, T0 + 30 * MINUTE)
    ]


def test_requested_and_materialized_windows_are_never_requested_again() -> None:
    lag = lag_at([T0 + 2 * timedelta(hours=1)] * 2, T0)
    plan = windows_to_ingest(
        lag, requested_until=T0 + 10 * MINUTE, materialized=[T0 + 30 * MINUTE],
        first_window=T0, max_windows=3,
    )  # fmt: skip
    assert plan == [
        WindowRange(T0 + 10 * MINUTE, T0 + 30 * MINUTE),
        WindowRange(T0 + 40 * MINUTE, T0 + 70 * MINUTE),  # split at 3 windows a run
        WindowRange(T0 + 70 * MINUTE, T0 + 100 * MINUTE),
        WindowRange(T0 + 100 * MINUTE, T0 + 110 * MINUTE),
    ]


def test_nothing_unconsumed_means_nothing_to_do() -> None:
    lag = lag_at([T0 + 40 * MINUTE] * 2, T0, committed=100)
    assert lag.total == 0 and windows_to_ingest(lag, None, [], T0) == []


def test_an_idle_topic_closes_the_window_of_its_newest_record() -> None:
    extents = {0: PartitionExtent(0, 0, 10, to_millis(T0 + 29 * MINUTE))}
    lag = topic_lag(extents, {0: 0}, {0: to_millis(T0)}, L, NOW, idle=True)
    assert lag.watermark == T0 + 30 * MINUTE
    assert windows_to_ingest(lag, None, [], T0) == [WindowRange(T0, T0 + 30 * MINUTE)]


def test_windows_after_the_last_request_follow_even_when_the_scan_consumed_them() -> None:
    # The last ingestion's scan read past its range (offsets committed to the end: lag 0), and
    # the stream stopped: the remaining window is requested once the topic is idle.
    extents = {0: PartitionExtent(0, 0, 10, to_millis(T0 + 29 * MINUTE))}
    busy = topic_lag(extents, {0: 10}, {}, L, NOW)
    assert windows_to_ingest(busy, T0 + 20 * MINUTE, [], T0) == []
    idle = topic_lag(extents, {0: 10}, {}, L, NOW, idle=True)
    assert windows_to_ingest(idle, T0 + 20 * MINUTE, [], T0) == [
        WindowRange(T0 + 20 * MINUTE, T0 + 30 * MINUTE)
    ]


def test_materialized_windows_are_read_only_once_a_window_has_closed() -> None:
    def materialized() -> Iterator[datetime]:
        raise AssertionError("read on a tick where no window closed")
        yield T0

    extents = {0: PartitionExtent(0, 0, 10, to_millis(T0 + 29 * MINUTE))}
    busy = topic_lag(extents, {0: 10}, {}, L, NOW)
    assert windows_to_ingest(busy, T0 + 20 * MINUTE, materialized(), T0) == []


def test_a_record_stamped_in_the_future_does_not_close_windows_early() -> None:
    # One partition's tail is stamped 2099 (a broken producer clock): the watermark stays at the
    # wall clock minus the lateness instead of closing every window up to 2099.
    far_future = datetime(2099, 1, 1, tzinfo=UTC)
    lag = lag_at([far_future, far_future], T0)
    assert lag.watermark == NOW - L
    assert lag.partitions[0].newest == NOW


def test_late_records_at_the_end_of_an_idle_topic_are_swept_by_the_newest_window() -> None:
    extents = {0: PartitionExtent(0, 0, 100, to_millis(T0 + 50 * MINUTE))}
    requested_until = T0 + 60 * MINUTE
    # Offsets 90-99 were appended after every window was requested; they are stamped 08:05.
    late = topic_lag(extents, {0: 90}, {0: to_millis(T0 + 5 * MINUTE)}, L, NOW, idle=True)
    assert windows_to_ingest(late, requested_until, [], T0) == []
    assert late_sweep(late, requested_until) == WindowRange(T0 + 50 * MINUTE, requested_until)
    # Not idle: the stream goes on, and the next window's scan meets them anyway.
    busy = topic_lag(extents, {0: 90}, {0: to_millis(T0 + 5 * MINUTE)}, L, NOW)
    assert late_sweep(busy, requested_until) is None
    # Nothing unconsumed, or unconsumed records of windows not requested yet: no sweep.
    done = topic_lag(extents, {0: 100}, {}, L, NOW, idle=True)
    assert late_sweep(done, requested_until) is None
    ahead = topic_lag(extents, {0: 90}, {0: to_millis(T0 + 65 * MINUTE)}, L, NOW, idle=True)
    assert late_sweep(ahead, requested_until) is None


def test_windows_whose_runs_failed_are_found_again_as_ranges() -> None:
    windows = [T0 + i * 10 * MINUTE for i in range(8)]
    materialized = [w for i, w in enumerate(windows) if i not in (2, 3, 6)]
    assert failed_windows(T0, T0 + 80 * MINUTE, materialized) == [
        WindowRange(T0 + 20 * MINUTE, T0 + 40 * MINUTE),
        WindowRange(T0 + 60 * MINUTE, T0 + 70 * MINUTE),
    ]
    # A check starts where the last one found the first gap; nothing requested: nothing.
    assert failed_windows(T0 + 60 * MINUTE, T0 + 80 * MINUTE, materialized) == [
        WindowRange(T0 + 60 * MINUTE, T0 + 70 * MINUTE)
    ]
    assert failed_windows(None, None, materialized) == []
    assert failed_windows(T0, T0 + 80 * MINUTE, windows) == []


def test_partitions_that_end_below_what_was_ingested_were_emptied() -> None:
    extents = {0: PartitionExtent(0, 0, 40, None), 1: PartitionExtent(1, 0, 900, None)}
    # Partition 0 was read up to 500 before: the broker lost it; 2 is gone altogether.
    assert emptied_partitions(extents, {0: 500, 1: 800, 2: 10}) == [0, 2]
    assert emptied_partitions(extents, {}) == []


def test_unread_records_start_at_the_commit_or_at_the_start_of_an_emptied_partition() -> None:
    extents = {p: PartitionExtent(p, 0, 50, None) for p in range(5)}
    committed = {0: 40, 1: None, 2: None, 3: 70, 4: 50}
    high_water = {1: 10, 2: 90, 3: 70}
    assert unread_offsets(extents, committed, high_water) == {
        0: 40,  # read up to its commit
        # 1: no commit and no sign of a reset: scans start where the range does
        2: 0,  # ends below offsets read before and the commits are gone: emptied, all unread
        3: 0,  # committed beyond its end: re-created since, all unread
        4: 50,
    }

from datetime import UTC, datetime, timedelta

import pytest

from fraudstream.windows import (
    TimeRange,
    from_millis,
    parse_utc,
    partition_key,
    to_millis,
    window_of_key,
    window_start,
)


def at(text: str) -> datetime:
    return parse_utc(text)


@pytest.mark.parametrize(
    ("moment", "key"),
    [
        ("2026-11-23T10:00:00Z", "2026-11-23-10:00"),
        ("2026-11-23T10:09:59.999999Z", "2026-11-23-10:00"),
        ("2026-11-23T10:10:00Z", "2026-11-23-10:10"),
        ("2026-11-23T23:59:59Z", "2026-11-23-23:50"),
        ("2026-11-24T00:00:00+01:00", "2026-11-23-23:00"),
    ],
)
def test_a_moment_belongs_to_the_window_that_starts_at_or_before_it(moment: str, key: str) -> None:
    assert partition_key(at(moment)) == key


def test_a_record_on_the_boundary_belongs_to_the_later_window_only() -> None:
    boundary = at("2026-11-23T10:10:00Z")
    earlier, later = window_of_key("2026-11-23-10:00"), window_of_key("2026-11-23-10:10")
    assert not earlier.contains(boundary)
    assert later.contains(boundary)


def test_times_without_offset_are_utc() -> None:
    assert at("2026-11-23 10:00:31") == datetime(2026, 11, 23, 10, 0, 31, tzinfo=UTC)


def test_millis_round_trip_exactly() -> None:
    moment = datetime(2026, 11, 23, 10, 0, 0, 123000, tzinfo=UTC)
    assert from_millis(to_millis(moment)) == moment
    assert window_start(moment) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_a_range_splits_into_its_windows() -> None:
    span = TimeRange(at("2026-11-23T10:00Z"), at("2026-11-23T11:00Z"))
    assert [str(w.start.time()) for w in span.windows()] == [
        "10:00:00",
        "10:10:00",
        "10:20:00",
        "10:30:00",
        "10:40:00",
        "10:50:00",
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-11-23T10:00Z", "2026-11-23T10:00Z"), ("2026-11-23T10:00Z", "2026-11-23T09:00Z")],
)
def test_an_empty_or_reversed_range_is_refused(start: str, end: str) -> None:
    with pytest.raises(ValueError, match="must be after"):
        TimeRange(at(start), at(end))


def test_a_naive_range_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        TimeRange(datetime(2026, 1, 1), datetime(2026, 1, 2))  # noqa: DTZ001


def test_an_off_grid_key_is_refused() -> None:
    with pytest.raises(ValueError, match="grid"):
        window_of_key("2026-11-23-10:05")
    assert window_of_key("2026-11-23-10:10").end - window_of_key("2026-11-23-10:10").start == (
        timedelta(minutes=10)
    )

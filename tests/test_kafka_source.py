"""The range reader against the real embedded broker (whose offset answers are batch-granular)."""

import bisect
import math
import random
from datetime import timedelta
from typing import NamedTuple

import pytest
from kafka import KafkaConsumer, TopicPartition

from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.ingest.offset_search import LOCATE_PRECISION, OffsetSearch
from fraudstream.windows import parse_utc, to_millis
from tests.helpers.producing import RecordProducer

T0 = parse_utc("2026-11-23T10:00:00Z")


def fill(producer: RecordProducer, count: int, step: timedelta, partition: int = 0) -> None:
    for i in range(count):
        producer.send(b"x%d" % i, T0 + i * step, partition=partition)
        if i % 500 == 499:
            producer.flush()  # several record batches, as a real producer makes
    producer.flush()


def test_the_true_end_and_newest_time_come_from_the_tail_not_the_reported_end(
    producer: RecordProducer, reader: TopicReader, kafka_settings: KafkaSettings
) -> None:
    fill(producer, 2_000, timedelta(seconds=1))
    extents = reader.extents()
    assert extents[0].end == 2_000
    assert extents[0].last_timestamp_ms == to_millis(T0 + 1_999 * timedelta(seconds=1))
    assert extents[1].is_empty and extents[2].is_empty
    consumer = KafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers)
    reported = consumer.end_offsets([TopicPartition(kafka_settings.topic, 0)])
    consumer.close()
    # The broker's own answer may stop at the last batch's base offset; ours must not.
    assert reported[TopicPartition(kafka_settings.topic, 0)] <= 2_000


def test_a_scan_returns_exactly_the_records_stamped_in_the_range_and_stops_after_it(
    producer: RecordProducer, reader: TopicReader
) -> None:
    fill(producer, 6_000, timedelta(seconds=1), partition=0)
    fill(producer, 3_000, timedelta(seconds=2), partition=2)
    start, end = T0 + timedelta(minutes=40), T0 + timedelta(minutes=50)
    extents = reader.extents()
    scans, batches = reader.scan(to_millis(start), to_millis(end), extents)
    records = [r for batch in batches for r in batch]
    by_partition = {p: [r for r in records if r.partition == p] for p in (0, 1, 2)}
    assert [r.offset for r in by_partition[0]] == list(range(2_400, 3_000))
    assert [r.offset for r in by_partition[2]] == list(range(1_200, 1_500))
    assert by_partition[1] == []
    # The scan reads the range widened by the disorder margin (5 min) on each side, plus at most
    # the locating precision before it.
    assert scans[0].records_read <= 600 + 2 * 300 + LOCATE_PRECISION
    assert scans[0].first_offset >= 2_400 - 300 - LOCATE_PRECISION
    assert scans[2].records_read <= 300 + 2 * 150 + LOCATE_PRECISION


def test_a_range_before_or_after_all_data_reads_nothing(
    producer: RecordProducer, reader: TopicReader
) -> None:
    fill(producer, 1_000, timedelta(seconds=1))
    extents = reader.extents()
    for start in (T0 - timedelta(hours=2), T0 + timedelta(hours=2)):
        _, batches = reader.scan(
            to_millis(start), to_millis(start + timedelta(minutes=10)), extents
        )
        assert [r for batch in batches for r in batch] == []


def test_commits_only_move_forward(reader: TopicReader, producer: RecordProducer) -> None:
    fill(producer, 10, timedelta(seconds=1))
    assert reader.commit({0: 8}, "first") == {0: 8}
    assert reader.commit({0: 5}, "older window") == {}
    assert reader.committed()[0] == 8


class Stamped(NamedTuple):
    offset: int
    timestamp: int


@pytest.mark.parametrize("seed", range(20))
def test_the_offset_search_is_safe_and_short_on_any_sorted_timestamps(seed: int) -> None:
    rng = random.Random(seed)
    stamps = sorted(rng.randrange(0, 10**9) for _ in range(rng.randrange(1, 200_000)))
    target = rng.randrange(-10, 10**9 + 10)
    search = OffsetSearch(0, len(stamps), stamps[-1])
    probes = 0
    while (at := search.next_probe(target)) is not None:
        probes += 1
        search.settle(
            at, [Stamped(o, stamps[o]) for o in range(at, min(at + 2, len(stamps)))], target
        )
    first_at_or_after = bisect.bisect_left(stamps, target)
    assert search.answer <= first_at_or_after  # never skips a record of the range
    assert first_at_or_after - search.answer <= LOCATE_PRECISION
    assert probes <= 2 * math.ceil(math.log2(max(len(stamps), 2))) + 1

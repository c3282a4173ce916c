"""Late records, records MongoDB cannot store, and impossible timestamps, against the real broker
and mongod: every valid record is stored exactly once in its own window, every other one is in
`dead_letters` with its reason, and nothing stops the rest of the range."""

from datetime import UTC, datetime, timedelta

from fraudstream.ingest.kafka_source import TopicReader
from fraudstream.ingest.report import IngestReport
from fraudstream.ingest.transactions import ingest_range
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, parse_utc
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.stack import LATENESS

START = parse_utc("2026-11-23T08:00:00Z")
HOUR = timedelta(hours=1)
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def ingest(reader: TopicReader, store: MongoStore, start: datetime, end: datetime, run: str,
           **options: object) -> IngestReport:  # fmt: skip
    return ingest_range(
        reader, store, TimeRange(start, end), allowed_lateness=LATENESS, run_id=run, **options
    )


def stream(producer: RecordProducer, start: datetime, minutes: int, prefix: str) -> list[str]:
    """A record every 30 s on each of the three partitions; their ids."""
    sent = []
    for i in range(minutes * 2):
        for partition in range(3):
            name = f"{prefix}-{i}-{partition}"
            when = start + timedelta(seconds=30 * i + partition)
            producer.send_tx(tx(name, when), partition=partition)
            sent.append(name)
    producer.flush()
    return sent


def stored(store: MongoStore) -> dict[str, str]:
    return {d["_id"]: d["partition_key"] for d in store.collection("transactions").find()}


def letters(store: MongoStore) -> list[str]:
    return [d["error"] for d in store.collection("dead_letters").find()]


def test_records_mongodb_cannot_store_are_dead_lettered_and_the_window_lands(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    good = stream(producer, START, 10, "ok")
    deep: dict = {}
    level = deep
    for _ in range(60):
        level["n"] = {}
        level = level["n"]
    poison = {
        "int64": {"overflow": 2**63},
        "int128": {"overflow": 2**70},
        "nul": {"a\x00b": 1},
        "deep": {"nested": deep},
    }
    for name, extra in poison.items():
        record = {**tx(name, START + timedelta(minutes=3)), **extra}
        producer.send(record, START + timedelta(minutes=3), partition=1)
    producer.flush()

    report = ingest(reader, store, START, START + timedelta(minutes=10), "run-1")

    assert sorted(stored(store)) == sorted(good)
    assert report.dead_letters == len(poison)
    reasons = " | ".join(letters(store))
    assert reasons.count("beyond 64 bits") == 2 and "NUL" in reasons and "deeper" in reasons


def test_a_record_stamped_in_the_far_future_neither_stops_the_scan_nor_is_lost(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    first = stream(producer, START, 5, "a")
    future = tx("from-2099", FAR_FUTURE)
    producer.send(future, FAR_FUTURE, partition=0)
    producer.flush()
    later = stream(producer, START + timedelta(minutes=5), 5, "b")

    report = ingest(reader, store, START, START + timedelta(minutes=10), "run-1")

    assert sorted(stored(store)) == sorted(first + later)  # the scan read past the 2099 record
    assert report.dead_letters == 1
    assert "in the future" in letters(store)[0]


def test_a_record_before_the_first_partition_is_dead_lettered_with_the_reason(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    good = stream(producer, START, 5, "ok")
    ancient = tx("ancient", datetime(2019, 1, 1, tzinfo=UTC))
    producer.send(ancient, START + timedelta(minutes=2), partition=2)
    producer.flush()

    ingest(reader, store, START, START + timedelta(minutes=10), "run-1")

    assert sorted(stored(store)) == sorted(good)
    assert any("before the first partition" in reason for reason in letters(store))


def test_late_records_land_in_their_own_window_and_are_counted(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    early = stream(producer, START, 60, "early")  # 08:00-09:00
    ingest(reader, store, START, START + HOUR, "run-1")
    # Five valid records stamped with their event time in 08:00-08:10 reach the topic after the
    # 09:00 data: an offline terminal coming back.
    late = [f"late-{i}" for i in range(5)]
    for i, name in enumerate(late):
        producer.send_tx(tx(name, START + timedelta(minutes=i + 1)), partition=i % 3)
    producer.flush()
    later = stream(producer, START + HOUR, 20, "later")  # 09:00-09:20

    report = ingest(reader, store, START + HOUR, START + HOUR + timedelta(minutes=10), "run-2")

    windows = stored(store)
    assert {windows[name] for name in late} == {"2026-11-23-08:00"}
    assert report.late_arrivals == {"2026-11-23-08:00": 5}
    ledger = store.collection("ingested_windows").find_one({"_id": "2026-11-23-08:00"})
    assert ledger["transactions"] == 20 * 3 + 5
    # Re-running the old window keeps them (it never drops what it does not read).
    ingest(reader, store, START, START + timedelta(minutes=10), "run-3")
    assert set(late) <= set(stored(store))
    assert set(early) | set(later[: 10 * 3]) <= set(stored(store))


def test_a_late_record_beyond_the_horizon_is_dead_lettered_not_dropped(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    stream(producer, START, 10, "old")
    ingest(reader, store, START, START + timedelta(minutes=10), "run-1")
    producer.send_tx(tx("too-late", START + timedelta(minutes=1)), partition=0)
    producer.flush()
    stream(producer, START + 3 * HOUR, 10, "new")

    report = ingest(
        reader,
        store,
        START + 3 * HOUR,
        START + 3 * HOUR + timedelta(minutes=10),
        "run-2",
        late_horizon=HOUR,
    )

    assert "too-late" not in stored(store)
    assert report.late_arrivals == {}
    assert any("late record" in reason and "HORIZON" in reason for reason in letters(store))


def test_counts_are_of_distinct_stored_transactions_when_records_come_twice(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    sent = stream(producer, START, 10, "dup")
    stream(producer, START, 10, "dup")  # the producer retried everything

    report = ingest(reader, store, START, START + timedelta(minutes=10), "run-1")

    assert report.stored_per_window == {"2026-11-23-08:00": len(sent)}
    ledger = store.collection("ingested_windows").find_one({"_id": "2026-11-23-08:00"})
    assert ledger["transactions"] == len(sent)
    assert report.transactions == 2 * len(sent)  # records read: what the topic held


def test_a_late_record_of_a_window_whose_run_failed_is_kept_for_it_by_a_newer_scan(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    """08:00 failed (MongoDB was down); 08:10 was ingested meanwhile; a record of 08:00 arrives
    after 08:10's data. 08:00's retry stops at the first record of 08:15: it never reaches the
    late one, so 08:10's scan stores it in 08:00, and the retry counts it."""
    window = timedelta(minutes=10)
    first = stream(producer, START, 10, "a")
    second = stream(producer, START + window, 10, "b")
    producer.send_tx(tx("late", START + timedelta(minutes=4)), partition=1)
    producer.flush()

    newer = ingest(reader, store, START + window, START + 2 * window, "run-1")
    retry = ingest(reader, store, START, START + window, "run-2")

    assert newer.late_arrivals == {"2026-11-23-08:00": 1}  # only it: not 08:00's own records
    assert stored(store) == dict.fromkeys([*first, "late"], "2026-11-23-08:00") | dict.fromkeys(
        second, "2026-11-23-08:10"
    )
    assert retry.stored_per_window == {"2026-11-23-08:00": len(first) + 1}

"""Kafka → MongoDB ingestion against the real embedded broker and mongod."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from fraudstream.config import StackRecord
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.ingest.report import IngestReport
from fraudstream.ingest.transactions import WindowExpired, ingest_range
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import WINDOW, TimeRange, parse_utc, window_of_key, window_start
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.stack import LATENESS

W = window_of_key("2026-11-23-10:00")
NEXT = window_of_key("2026-11-23-10:10")


def at(text: str) -> datetime:
    return parse_utc(f"2026-11-23T{text}Z")


def ingest(
    reader: TopicReader, store: MongoStore, span: TimeRange = W, run_id: str = "run-1", **options
) -> IngestReport:
    return ingest_range(reader, store, span, allowed_lateness=LATENESS, run_id=run_id, **options)


def ids(store: MongoStore, **query: object) -> list[str]:
    return sorted(d["_id"] for d in store.collection("transactions").find(query, {"_id": 1}))


def test_a_window_holds_exactly_its_transactions_from_every_partition(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    times = {
        "before": "09:59:59.999",
        "on-start": "10:00:00",
        "middle": "10:05:00",
        "last-ms": "10:09:59.999",
        "on-end": "10:10:00",
    }
    for partition, (name, when) in enumerate(times.items()):
        producer.send_tx(tx(name, at(when)), partition=partition % 3)
    producer.flush()

    report = ingest(reader, store)

    assert ids(store) == ["last-ms", "middle", "on-start"]
    assert ids(store, partition_key="2026-11-23-10:00") == ["last-ms", "middle", "on-start"]
    assert report.transactions == 3 and report.dead_letters == 0
    ingest(reader, store, NEXT)
    assert ids(store, partition_key="2026-11-23-10:10") == ["on-end"]
    document = store.collection("transactions").find_one({"_id": "middle"})
    assert document["tx_datetime"] == at("10:05:00")
    assert document["source"] == "kafka"
    assert document["kafka"]["topic"] == reader.settings.topic


def test_re_running_a_window_yields_the_same_documents(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    for i in range(50):
        producer.send_tx(tx(f"t{i}", at("10:00:00") + timedelta(seconds=10 * i)), partition=i % 3)
    producer.flush()

    first = ingest(reader, store, run_id="run-1")
    before = list(store.collection("transactions").find().sort("_id"))
    second = ingest(reader, store, run_id="run-2")
    after = list(store.collection("transactions").find().sort("_id"))

    assert (first.inserted, first.replaced) == (50, 0)
    assert (second.inserted, second.replaced) == (0, 50)
    assert before == after


BAD_RECORDS = [
    b"{not json",
    b"\xff\xfe\x00",
    b"[1, 2, 3]",
    None,
    b'{"transaction_id": "x1", "customer_id": "C", "terminal_id": "T", "tx_amount": 1}',
    b'{"transaction_id": true, "tx_datetime": "2026-11-23T10:01:00Z", "customer_id": "C",'
    b' "terminal_id": "T", "tx_amount": 1}',
    b'{"transaction_id": "x3", "tx_datetime": "2026-11-23T10:01:00Z", "customer_id": "C",'
    b' "terminal_id": "T", "tx_amount": -5}',
    b'{"transaction_id": "x4", "tx_datetime": "2026-11-23T10:01:00Z", "customer_id": "C",'
    b' "terminal_id": "T", "tx_amount": "12"}',
    b'{"transaction_id": "x5", "tx_datetime": "not a time", "customer_id": "C",'
    b' "terminal_id": "T", "tx_amount": 1}',
    # Event time 50 minutes before the record time: beyond the allowed lateness.
    b'{"transaction_id": "x6", "tx_datetime": "2026-11-23T09:13:00Z", "customer_id": "C",'
    b' "terminal_id": "T", "tx_amount": 1}',
]


def test_every_bad_record_lands_in_dead_letters_exactly_once_and_the_run_succeeds(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    for i, raw in enumerate(BAD_RECORDS):
        producer.send(raw, at("10:03:00"), partition=i % 3)
    producer.send_tx(tx("good", at("10:04:00")), partition=1)
    producer.flush()

    first = ingest(reader, store, run_id="run-1")
    second = ingest(reader, store, run_id="run-2")

    letters = list(store.collection("dead_letters").find())
    assert len(letters) == len(BAD_RECORDS)
    assert first.dead_letters == second.dead_letters == len(BAD_RECORDS)
    assert (first.new_dead_letters, second.new_dead_letters) == (len(BAD_RECORDS), 0)
    assert ids(store) == ["good"]
    for letter in letters:
        assert letter["error"]
        assert letter["run_id"] == "run-1" and letter["last_run_id"] == "run-2"
        assert letter["partition_key"] == "2026-11-23-10:00"
        assert set(letter["position"]) == {"topic", "partition", "offset", "timestamp"}
    payloads = {letter["payload"] for letter in letters if isinstance(letter["payload"], str)}
    assert "{not json" in payloads
    assert any(letter["payload"] is None for letter in letters)  # the tombstone
    assert any(isinstance(letter["payload"], bytes) for letter in letters)  # not UTF-8, kept raw
    errors = " | ".join(letter["error"] for letter in letters)
    for reason in ("not valid UTF-8 JSON", "missing", "negative", "must be a number", "lateness"):
        assert reason in errors


def test_bad_records_sent_after_the_good_ones_are_still_dead_lettered(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    for i in range(40):  # ten minutes of good records on each partition, then the bad ones
        producer.send_tx(tx(f"t{i}", at("10:00:00") + timedelta(seconds=15 * i)), i % 3)
    for partition in range(3):
        producer.send(b"{oops", at("10:01:00"), partition=partition)
    producer.flush()

    report = ingest(reader, store)

    assert report.transactions == 40
    assert report.dead_letters == 3 == store.collection("dead_letters").count_documents({})


def test_an_empty_window_succeeds_with_nothing_written(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    producer.send_tx(tx("far", at("13:00:00")))
    producer.flush()
    report = ingest(reader, store)
    assert report.transactions == 0 and ids(store) == []
    assert store.ingested_windows(["2026-11-23-10:00"]) == {"2026-11-23-10:00"}


def test_late_records_within_the_allowed_lateness_join_their_window(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    producer.send_tx(tx("next-window", at("10:12:00")))
    producer.send_tx(tx("late-4min", at("10:09:00")), delay_s=240)  # after a later record
    producer.send_tx(tx("late-6min", at("10:08:00")), delay_s=360)  # beyond 5 minutes
    producer.flush()

    report = ingest(reader, store)

    assert ids(store) == ["late-4min"]
    assert report.dead_letters == 0  # its record time (10:14) lies in the next window
    ingest(reader, store, NEXT)
    assert ids(store) == ["late-4min", "next-window"]
    [letter] = store.collection("dead_letters").find()
    assert letter["partition_key"] == "2026-11-23-10:10" and "lateness" in letter["error"]


def test_a_producer_that_does_not_set_timestamps_is_read_by_event_time(
    stack: StackRecord, topic: str, reader: TopicReader, store: MongoStore
) -> None:
    now = datetime.now(UTC)
    plain = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    for i in range(5):  # record timestamps are the producer's send time
        plain.send(
            topic, value=json.dumps(tx(f"plain-{i}", now - timedelta(seconds=30 + i))).encode()
        )
    plain.flush()
    plain.close()
    span = TimeRange(window_start(now - timedelta(seconds=40)), window_start(now) + WINDOW)
    assert ingest(reader, store, span).transactions == 5


def test_a_crash_mid_window_loses_nothing_and_duplicates_nothing_on_re_run(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    for i in range(1_000):
        producer.send_tx(tx(f"t{i:04d}", at("10:00:00") + timedelta(milliseconds=590 * i)), i % 3)
    producer.flush()

    def crash_after_three_batches(written: int) -> None:
        if written >= 300:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(reader, store, batch_size=100, on_batch_written=crash_after_three_batches)
    assert 100 <= len(ids(store)) < 1_000
    assert all(offset is None for offset in reader.committed().values())

    report = ingest(reader, store, run_id="run-2", batch_size=100)

    assert ids(store) == [f"t{i:04d}" for i in range(1_000)]
    assert report.transactions == 1_000
    assert sum(reader.committed().values()) == 1_000


def test_a_range_of_windows_is_read_in_one_pass_with_each_record_in_its_window(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    hour = TimeRange(at("10:00:00"), at("11:00:00"))
    for i in range(360):
        producer.send_tx(tx(f"t{i:03d}", at("10:00:00") + timedelta(seconds=10 * i)), i % 3)
    producer.flush()

    report = ingest(reader, store, hour)

    assert report.transactions == 360
    assert sorted(report.per_window.values()) == [60] * 6
    for window in hour.windows():
        key = window.start.strftime("%Y-%m-%d-%H:%M")
        assert len(ids(store, partition_key=key)) == 60
    assert len(store.ingested_windows(report.per_window)) == 6


def test_a_re_run_applies_a_correction_sent_after_the_first_run(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    for i in range(5):
        producer.send_tx(tx(f"t{i}", at("10:01:00") + timedelta(seconds=i)))
    producer.flush()
    ingest(reader, store)
    first_seen = store.collection("transactions").find_one({"_id": "t3"})["first_ingested_at"]
    producer.send_tx(tx("t3", at("10:01:03"), amount=99.0), delay_s=60)
    producer.flush()

    report = ingest(reader, store, run_id="run-2")

    assert (report.inserted, report.replaced) == (0, 5)
    corrected = store.collection("transactions").find_one({"_id": "t3"})
    assert corrected["tx_amount"] == 99.0
    assert corrected["first_ingested_at"] == first_seen
    assert store.collection("transactions").count_documents({}) == 5


@pytest.mark.partitions(4)
def test_a_large_range_split_over_worker_processes_ingests_the_same_as_one_process(
    producer: RecordProducer, kafka_settings: KafkaSettings, stack: StackRecord, database: str
) -> None:
    hour = TimeRange(at("10:00:00"), at("11:00:00"))
    for i in range(2_000):
        producer.send_tx(tx(f"t{i:04d}", at("10:00:00") + timedelta(seconds=1.7 * i)), i % 4)
        if i % 500 == 7:
            producer.send(b"{bad", at("10:00:00") + timedelta(seconds=1.7 * i), partition=i % 4)
    producer.flush()
    reports = {}
    for workers in (1, 2):
        store = MongoStore.connect(stack.mongo_uri, f"{database}_{workers}")
        with TopicReader(kafka_settings, max_disorder=LATENESS) as reader:
            reports[workers] = ingest_range(
                reader, store, hour, allowed_lateness=LATENESS, run_id="r",
                workers=workers, parallel_min_records=100,
            )  # fmt: skip
        reports[f"docs{workers}"] = list(
            store.collection("transactions").find({}, {"first_ingested_at": 0}).sort("_id")
        )
        store.client.drop_database(f"{database}_{workers}")
        store.close()

    one, two = reports[1], reports[2]
    assert one.transactions == two.transactions == 2_000
    assert one.per_window == two.per_window
    assert one.dead_letters == two.dead_letters == 4
    assert one.amounts == two.amounts
    assert {p: s.next_offset for p, s in one.scans.items()} == {
        p: s.next_offset for p, s in two.scans.items()
    }
    assert reports["docs1"] == reports["docs2"]


def test_a_transaction_sent_twice_is_stored_once(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    record = tx("retried", at("10:01:00"))
    producer.send_tx(record)
    producer.send_tx({**record, "tx_amount": 11.0}, delay_s=1)
    producer.flush()
    ingest(reader, store)
    assert store.collection("transactions").find_one({"_id": "retried"})["tx_amount"] == 11.0
    assert store.collection("transactions").count_documents({}) == 1


def test_a_window_whose_records_left_the_topic_is_kept_if_mongo_holds_it_else_fails(
    stack: StackRecord,
    topic: str,
    kafka_settings: KafkaSettings,
    producer: RecordProducer,
    store: MongoStore,
) -> None:
    for i in range(30):
        producer.send_tx(tx(f"t{i}", at("10:00:00") + timedelta(seconds=20 * i)), i % 3)
    producer.flush()
    with TopicReader(kafka_settings, max_disorder=LATENESS) as reader:
        ingest(reader, store)
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    admin.delete_topics([topic])
    admin.close()
    ensure_topic(stack.kafka_bootstrap, topic, 3)  # re-created empty, as after a broker restart

    with TopicReader(kafka_settings, max_disorder=LATENESS) as reader:
        kept = ingest(reader, store, run_id="run-2")
        assert kept.expired_but_kept and len(ids(store)) == 30
        assert kept.stored_per_window == {"2026-11-23-10:00": 30}  # counted, not 0
        with pytest.raises(WindowExpired, match="cannot be rebuilt from Kafka"):
            ingest(reader, store, TimeRange(W.start, NEXT.end), run_id="run-3")
        # A window never ingested before the reset: gone from Kafka, so the run fails loudly
        # instead of succeeding with 0 rows.
        with pytest.raises(WindowExpired, match="cannot be rebuilt from Kafka"):
            ingest(reader, store, NEXT, run_id="run-4")
    # What the broker lost, replayed by its producer (the documented recovery): every record is
    # older than the window scanned next, yet that scan reads them, being unread, into their own.
    replayed = [f"t{i}" for i in range(25, 30)] + [f"gone{i}" for i in range(4)]
    for i, name in enumerate(replayed):
        producer.send_tx(tx(name, at("10:08:00") + timedelta(seconds=5 * i)), i % 3)
    producer.flush()
    hour = window_of_key("2026-11-23-11:00")
    with TopicReader(kafka_settings, max_disorder=LATENESS) as reader:
        swept = ingest(reader, store, hour, run_id="run-5")
    assert swept.late_arrivals == {"2026-11-23-10:00": 4}  # the replayed t25-t29 unchanged
    assert len(ids(store)) == 34 and len(ids(store, partition_key="2026-11-23-10:00")) == 34
    # Windows produced after the reset read as usual.
    for i in range(6):
        producer.send_tx(tx(f"new{i}", at("11:00:00") + timedelta(seconds=20 * i)), i % 3)
    producer.flush()
    with TopicReader(kafka_settings, max_disorder=LATENESS) as reader:
        fresh = ingest(reader, store, hour, run_id="run-6")
    assert fresh.stored_per_window == {"2026-11-23-11:00": 6}

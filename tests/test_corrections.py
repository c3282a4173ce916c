"""A transaction re-sent with new content ends in one place, with its newest version, whatever
order the runs come in; both windows' counts follow. Real broker and mongod."""

from datetime import datetime, timedelta
from pathlib import Path

from fraudstream.ingest.batch_files import load_batch_files
from fraudstream.ingest.kafka_source import TopicReader
from fraudstream.ingest.landing import describe
from fraudstream.ingest.transactions import ingest_range
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, parse_utc, window_of_key
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.stack import LATENESS

EIGHT, EIGHT_TEN = window_of_key("2026-11-23-08:00"), window_of_key("2026-11-23-08:10")
START = EIGHT.start


def ingest(reader: TopicReader, store: MongoStore, window: TimeRange, run: str) -> set[str]:
    report = ingest_range(reader, store, window, allowed_lateness=LATENESS, run_id=run)
    return report.other_windows


def background(producer: RecordProducer, start: datetime, minutes: int) -> None:
    for i in range(minutes * 2):
        producer.send_tx(tx(f"bg-{start:%H%M}-{i}", start + timedelta(seconds=30 * i)), i % 3)


def stored(store: MongoStore, transaction_id: str) -> dict:
    return store.collection("transactions").find_one({"_id": transaction_id})


def ledger(store: MongoStore, key: str) -> int:
    return store.collection("ingested_windows").find_one({"_id": key})["transactions"]


def test_a_transaction_moved_to_another_window_stays_there_whatever_the_run_order(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    producer.send_tx(tx("moved", START + timedelta(minutes=1), amount=10.0), partition=0)
    background(producer, START, 30)
    producer.flush()
    # The same id again, later, with a corrected time (08:15) and amount: the newer record.
    producer.send_tx(tx("moved", START + timedelta(minutes=15), amount=20.0), partition=1)
    producer.flush()

    ingest(reader, store, EIGHT, "run-1")
    assert stored(store, "moved")["partition_key"] == "2026-11-23-08:00"
    changed = ingest(reader, store, EIGHT_TEN, "run-2")
    assert changed == {"2026-11-23-08:00"}  # the window it left, to refresh downstream
    # Re-running the old window does not bring the old version back.
    ingest(reader, store, EIGHT, "run-3")

    document = stored(store, "moved")
    assert (document["partition_key"], document["tx_amount"]) == ("2026-11-23-08:10", 20.0)
    assert ledger(store, "2026-11-23-08:00") == 20  # its background records, not the moved one
    assert ledger(store, "2026-11-23-08:10") == 20 + 1


def test_a_batch_file_correction_survives_a_later_kafka_re_run(
    producer: RecordProducer, reader: TopicReader, store: MongoStore, tmp_path: Path
) -> None:
    background(producer, START, 10)
    producer.send_tx(tx("fixed", START + timedelta(minutes=2), amount=10.0), partition=2)
    producer.flush()
    ingest(reader, store, EIGHT, "run-1")
    correction = tmp_path / "correction.csv"
    correction.write_text(
        "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount\n"
        f"fixed,{(START + timedelta(minutes=2)).isoformat()},C1,T1,99.0\n"
    )
    load_batch_files(store, [describe(correction)], EIGHT, "run-file")
    assert stored(store, "fixed")["tx_amount"] == 99.0

    ingest(reader, store, EIGHT, "run-2")  # the Kafka record is older than the file

    assert stored(store, "fixed")["tx_amount"] == 99.0
    assert parse_utc(stored(store, "fixed")["tx_datetime"].isoformat()) == START + timedelta(
        minutes=2
    )


def test_the_newest_version_wins_when_an_older_copy_comes_later_in_the_same_scan(
    producer: RecordProducer, reader: TopicReader, store: MongoStore
) -> None:
    # The correction lands on partition 0 and an old duplicate on partition 2, read after it.
    background(producer, START, 10)
    when = START + timedelta(minutes=2)
    producer.send(tx("dup", when, amount=10.0), when, partition=1)
    producer.send(tx("dup", when, amount=77.0), when + timedelta(minutes=1), partition=0)
    producer.send(tx("dup", when, amount=10.0), when, partition=2)
    producer.flush()

    ingest(reader, store, EIGHT, "run-1")

    assert stored(store, "dup")["tx_amount"] == 77.0

"""The `fraudstream` command line against the session's real stack."""

from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from fraudstream.config import StackRecord
from fraudstream.store import MongoStore
from fraudstream.tooling.cli import duration, main


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800)]
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert duration(text) == timedelta(seconds=seconds)


@pytest.fixture
def cli_env(
    stack: StackRecord, stack_dir: Path, topic: str, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("FRAUDSTREAM_STATE_DIR", str(stack_dir))
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_TOPIC", topic)
    return stack_dir


def topic_size(stack: StackRecord, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=stack.kafka_bootstrap)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    count = 0
    while polled := consumer.poll(timeout_ms=1000):
        count += sum(len(records) for records in polled.values())
    consumer.close()
    return count


def test_simulate_publishes_the_range_and_delivers_labels(
    cli_env: Path, stack: StackRecord, topic: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "--start", "2026-11-20T10:00Z", "--end", "2026-11-20T12:00Z"]
    assert main([*args, "--tx-per-day", "5000", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    published = int(out.split("published ")[1].split()[0])
    assert published > 100
    assert topic_size(stack, topic) == published
    label_files = list((cli_env / "landing" / "labels").glob("labels-*.csv"))
    assert label_files  # reported long before now
    assert (cli_env / "label_feed.jsonl").exists()


def test_simulate_replays_a_handbook_csv(
    cli_env: Path, stack: StackRecord, topic: str, tmp_path: Path
) -> None:
    csv = tmp_path / "handbook.csv"
    csv.write_text(
        ",TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_FRAUD\n"
        "0,0,2018-04-01 00:00:31,596,3156,57.16,31,0\n"
        "1,1,2018-04-01 00:02:10,4961,3412,81.51,130,1\n"
    )
    assert main(["simulate", "--from-csv", str(csv)]) == 0
    assert topic_size(stack, topic) == 2


def test_status_shows_health_and_lag_and_a_topic_that_lost_records(
    cli_env: Path,
    stack: StackRecord,
    topic: str,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FRAUDSTREAM_MONGO_DATABASE", database)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert any(line.split()[:2] == ["ok", "mongodb"] for line in out.splitlines())
    assert "lag" in out and "WARNING" not in out
    # Ingestion once read this topic's partition 0 up to offset 500: the broker lost it since.
    store = MongoStore.connect(stack.mongo_uri, database)
    store.record_topic_offsets(topic, {0: 500})
    store.close()
    assert main(["status"]) == 0
    assert "partition(s) [0] end below offsets already ingested" in capsys.readouterr().out


def test_env_prints_exports_and_fails_clearly_without_a_stack(
    cli_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["env"]) == 0
    assert "export FRAUDSTREAM_KAFKA_BOOTSTRAP=" in capsys.readouterr().out
    assert main(["env", "--state-dir", str(tmp_path / "none")]) == 1
    assert "fraudstream up" in capsys.readouterr().err

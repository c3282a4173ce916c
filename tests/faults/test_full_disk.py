"""A full disk under MongoDB: the ingestion fails loudly instead of reporting what it could not
store, and once space is freed (and `fraudstream up` has restarted a mongod that stopped) the
re-run stores every record once. MongoDB's data lives on a size-limited tmpfs of its own."""

from __future__ import annotations

import errno
import logging
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.ingest.transactions import ingest_range
from fraudstream.store import MongoStore
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.windows import window_of_key
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.stack import LATENESS

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.integration, pytest.mark.faults]
WINDOW = window_of_key("2026-11-23-10:00")
RECORDS = 3_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 600 MB tmpfs (mounting one needs root, as CI's `scripts/test` runs)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600m", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """A ballast file that takes every free byte of the disk."""
    ballast = disk / "ballast"
    chunk = b"\0" * (1 << 20)
    with ballast.open("wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return ballast


def ingest(record: StackRecord, topic: str, run_id: str) -> dict[str, int]:
    store = MongoStore.connect(record.mongo_uri or "", "fraudstream")
    try:
        settings = KafkaSettings(record.kafka_bootstrap or "", topic, "full-disk")
        with TopicReader(settings, max_disorder=LATENESS) as reader:
            report = ingest_range(reader, store, WINDOW, allowed_lateness=LATENESS, run_id=run_id)
        return report.stored_per_window
    finally:
        store.close()


def test_a_full_disk_fails_the_run_loudly_and_the_rerun_stores_each_record_once(
    small_disk: Path,
) -> None:
    stack = EmbeddedStack(small_disk / ".fraudstream", preferred_ports=False)
    record = stack.up()
    try:
        topic = "full-disk"
        ensure_topic(record.kafka_bootstrap or "", topic, 3)
        with RecordProducer(record.kafka_bootstrap or "", topic) as producer:
            for i in range(RECORDS):
                when = WINDOW.start + timedelta(seconds=i * 600 / RECORDS)
                producer.send_tx(tx(f"d{i}", when, note="x" * 400), partition=i % 3)
            producer.flush()
        ballast = fill(small_disk)

        with pytest.raises((ServiceUnavailable, RuntimeError)) as failure:
            ingest(record, topic, "run-1")
        assert "MongoDB" in str(failure.value) and "re-run" in str(failure.value)
        log.warning("the run on a full disk failed: %s", failure.value)

        ballast.unlink()
        # The documented recovery: space freed, `fraudstream up` restarts a mongod that stopped
        # on the full disk (WiredTiger may stop it a moment after the refused write), re-run.
        stored: dict[str, int] = {}
        for attempt in range(2):
            stack.up()
            try:
                stored = ingest(record, topic, f"run-{attempt + 2}")
                break
            except ServiceUnavailable:
                log.warning("mongod stopped after the full disk: `up` again")
        assert stored == {"2026-11-23-10:00": RECORDS}
        store = MongoStore.connect(record.mongo_uri or "", "fraudstream")
        assert store.collection("transactions").count_documents({}) == RECORDS
        store.close()
    finally:
        stack.down()

"""The fault suite: faults and hostile records injected into the running demo (daemon on, nobody
launching a run), each with an oracle of the ids it published. One sequence injects them — as a
bad hour would — and each scenario then asserts its own outcome: 0 lost, 0 duplicated, recovered
by the system itself once the cause was gone (after the documented `fraudstream up` where a
service died), with its time to recover logged (`pytest -rP` shows it) for docs/reliability.md."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from kafka.errors import KafkaError

from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader
from fraudstream.store.collections import (
    DEAD_LETTERS,
    ENSEMBLE_RESULTS,
    INGESTED_WINDOWS,
    LABELS,
    TRANSACTIONS,
)
from fraudstream.tooling.simulator.label_feed import append_labels
from fraudstream.windows import WINDOW, partition_key, window_start
from tests.helpers.dagster_ui import backfill_status
from tests.helpers.demo import Demo
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.waiting import wait_for

log = logging.getLogger(__name__)
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(1200)]
TOPIC = "transactions"
PAUSE_S = 35  # longer than a scan's stall limit (30 s) and than a sensor tick
BACKFILL_DONE = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


@dataclass
class Scenario:
    """What one fault published and when its cause went away."""

    valid: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the newest record
    poison: list[str] = field(default_factory=list)
    cause_gone: float = 0.0  # time.monotonic() when the service was back
    recovered_s: float | None = None
    backfills: list[str] = field(default_factory=list)
    offsets_moved_back: list[str] = field(default_factory=list)
    offset_samples: int = 0
    status: str = ""  # what `fraudstream status` printed after the recovery


def last_complete_window(offset_s: float) -> datetime:
    """A time in the newest window that has ended: its features and scores can follow at once."""
    return window_start(datetime.now(UTC)) - WINDOW + timedelta(seconds=offset_s)


def publish(demo: Demo, scenario: Scenario, prefix: str, count: int) -> None:
    records = {
        f"{prefix}-{i}": tx(f"{prefix}-{i}", last_complete_window(30 + 5 * i), customer=f"C{i % 7}")
        for i in range(count)
    }
    send(demo, records.values())
    scenario.valid |= records


def send(demo: Demo, records: Iterable[dict[str, Any]]) -> None:
    """Records stamped with their event time, spread over the topic's 4 partitions."""
    with RecordProducer(demo.record.kafka_bootstrap or "", TOPIC) as producer:
        for n, record in enumerate(records):
            producer.send_tx(record, partition=n % 4)
        producer.flush()


class OffsetWatch:
    """Samples the ingestion group's committed offsets every 0.5 s; records any move back."""

    def __init__(self, demo: Demo) -> None:
        bootstrap = demo.record.kafka_bootstrap or ""
        self.settings = KafkaSettings(bootstrap, TOPIC, "fraudstream-ingest")
        self.backwards: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> OffsetWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        seen: dict[int, int] = {}
        with TopicReader(self.settings, max_disorder=timedelta(0)) as reader:
            while not self._stop.wait(0.5):
                try:
                    committed = reader.committed()
                except (KafkaError, ServiceUnavailable):  # the broker paused or down: next sample
                    continue
                for partition, offset in committed.items():
                    if offset is None:
                        continue
                    if offset < seen.get(partition, -1):
                        self.backwards.append(f"partition {partition}: {seen[partition]}->{offset}")
                    seen[partition] = max(offset, seen.get(partition, -1))
                self.samples += 1


def pid(demo: Demo, service: str) -> int:
    """The service's process as the stack records it now (`fraudstream up` restarts change it)."""
    record = StackRecord.load(demo.state)
    assert record is not None
    return record.processes[service]


def launch_backfill(demo: Demo, keys: list[str]) -> str:
    """A backfill of `transactions` for ``keys``, as the UI's partitions page launches one."""
    answer = demo.api.query(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
           } }""",
        p={"partitionNames": keys, "assetSelection": [{"path": ["transactions"]}]},
    )["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    return answer["backfillId"]


@pytest.fixture(scope="module")
def faults(demo: Demo) -> Iterator[dict[str, Scenario]]:
    """The bad hour, in order, then a wait until every scenario's valid records are scored."""
    names = ("broker_kill", "mongod", "hostile", "broker_pause", "label_api", "overlap")
    scenarios = {name: Scenario() for name in names}
    bootstrap = demo.record.kafka_bootstrap or ""

    # The broker killed (`kill -9`: its memory storage and the group's offsets are gone) before
    # the newest records were ingested; the documented recovery: `fraudstream up`, `status`
    # says which partitions lost records, the producer re-sends what it sent since.
    kill = scenarios["broker_kill"]
    publish(demo, kill, "bk", 40)
    os.kill(pid(demo, "kafka"), signal.SIGKILL)
    restored = demo.cli("up")
    assert restored.returncode == 0, restored.stderr[-2000:]
    kill.status = demo.cli("status").stdout
    send(demo, kill.valid.values())  # what the producer had sent, again
    kill.cause_gone = time.monotonic()

    # MongoDB killed (`kill -9`) while records and hostile input arrive; while it is down, the
    # broker and the label API stop answering too (SIGSTOP) and labels fall due; then both
    # resume and `fraudstream up` restarts MongoDB.
    os.kill(pid(demo, "mongodb"), signal.SIGKILL)
    mongod, hostile = scenarios["mongod"], scenarios["hostile"]
    publish(demo, mongod, "mk", 60)
    old_window = window_start(datetime.now(UTC) - timedelta(hours=1, minutes=30))
    poison = {
        "p-int": {"overflow": 2**64 + 1},
        "p-nul": {"x\x00y": 1},
        "p-deep": {"deep": _nested(40)},
        "p-2099": {"tx_datetime": "2099-01-01T00:00:00+00:00"},
        "p-ancient": {"tx_datetime": "2001-01-01T00:00:00+00:00"},
    }
    with RecordProducer(bootstrap, TOPIC) as producer:
        for name, extra in poison.items():
            sent_at = last_complete_window(200)
            producer.send({**tx(name, sent_at), **extra}, sent_at, partition=1)
        for i in range(5):  # an offline terminal back: stamped with their event time
            late = tx(f"late-{i}", old_window + timedelta(minutes=1 + i))
            producer.send_tx(late, partition=2)
            hostile.valid[late["transaction_id"]] = late
        for name in list(mongod.valid)[:10]:  # a retrying producer: delivered twice
            producer.send_tx(mongod.valid[name], partition=3)
        # A correction in another window: mk-0 re-sent later (its record time within the
        # allowed lateness of its new event time), moved into the window before, new amount.
        moved = tx("mk-0", last_complete_window(-60), amount=77.0, customer="C0")
        producer.send(moved, last_complete_window(200), partition=0)
        mongod.valid["mk-0"] = moved
        producer.flush()
    hostile.poison = list(poison)
    publish(demo, scenarios["broker_pause"], "bp", 40)
    for name in ("kafka", "label-api"):
        os.kill(pid(demo, name), signal.SIGSTOP)
    # The partner reports labels while its API cannot answer: due, but not fetchable yet.
    reported = list(scenarios["broker_pause"].valid)
    append_labels(demo.state, [(name, 0, datetime.now(UTC)) for name in reported])
    scenarios["label_api"].valid = {name: {} for name in reported}
    time.sleep(PAUSE_S)
    for name in ("kafka", "label-api"):
        os.kill(pid(demo, name), signal.SIGCONT)
    scenarios["broker_pause"].cause_gone = scenarios["label_api"].cause_gone = time.monotonic()
    restored = demo.cli("up")
    assert restored.returncode == 0, restored.stderr[-2000:]
    mongod.cause_gone = hostile.cause_gone = time.monotonic()

    # Two overlapping range runs over the windows being caught up, with new records, the lag
    # sensor and automation at work; the group's committed offsets sampled all along.
    overlap = scenarios["overlap"]
    newest = window_start(last_complete_window(0))
    windows = [partition_key(newest - k * WINDOW) for k in range(5, -1, -1)]
    with OffsetWatch(demo) as watch:
        overlap.backfills = [launch_backfill(demo, windows[:4]), launch_backfill(demo, windows[2:])]
        publish(demo, overlap, "ov", 20)
        overlap.cause_gone = time.monotonic()
        _wait_until_recovered(demo, scenarios)
        wait_for(
            lambda: all(backfill_status(demo.api, b) in BACKFILL_DONE for b in overlap.backfills),
            300,
            "the overlapping backfills ended",
        )
    overlap.offset_samples, overlap.offsets_moved_back = watch.samples, watch.backwards
    yield scenarios


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(depth):
        node = {"n": node}
    return node


def _wait_until_recovered(demo: Demo, scenarios: dict[str, Scenario]) -> None:
    """Until every scenario's valid records are scored (labels: stored), noting each one's time
    to recover when its last record got there."""

    def done(name: str, scenario: Scenario) -> bool:
        ids = sorted(scenario.valid)
        collection = LABELS if name == "label_api" else ENSEMBLE_RESULTS
        return demo.store.collection(collection).count_documents({"_id": {"$in": ids}}) == len(ids)

    def all_recovered() -> bool:
        for name, scenario in scenarios.items():
            if scenario.recovered_s is None and done(name, scenario):
                scenario.recovered_s = time.monotonic() - scenario.cause_gone
        return all(s.recovered_s is not None for s in scenarios.values())

    wait_for(all_recovered, 600, "every scenario's valid records scored", poll=3)


def assert_stored_once_and_counted(demo: Demo, scenario: Scenario) -> None:
    """Every valid record stored once with its newest content, scored, and counted once in its
    window's ledger entry."""
    ids = sorted(scenario.valid)
    stored = {d["_id"]: d for d in demo.store.collection(TRANSACTIONS).find({"_id": {"$in": ids}})}
    assert set(stored) == set(ids)  # ids are keys: none twice
    for tid, sent in scenario.valid.items():
        assert stored[tid]["tx_amount"] == sent["tx_amount"], tid
        assert stored[tid]["partition_key"] == partition_key(
            datetime.fromisoformat(sent["tx_datetime"])
        ), tid
    windows = sorted({d["partition_key"] for d in stored.values()})
    per_window = demo.store.documents_per_window(TRANSACTIONS)
    for entry in demo.store.collection(INGESTED_WINDOWS).find({"_id": {"$in": windows}}):
        assert entry["transactions"] == per_window[entry["_id"]], entry
    scored = demo.store.collection(ENSEMBLE_RESULTS).count_documents({"_id": {"$in": ids}})
    assert scored == len(ids)


def report(name: str, scenario: Scenario) -> None:
    log.warning(
        f"RECOVERY {name}: {len(scenario.valid)} valid records, recovered "
        f"{scenario.recovered_s:.0f} s after the cause was gone"
    )


def test_mongod_killed_while_records_arrive_loses_nothing_after_up(
    faults: dict[str, Scenario], demo: Demo
) -> None:
    assert_stored_once_and_counted(demo, faults["mongod"])
    assert faults["mongod"].valid["mk-0"]["tx_amount"] == 77.0  # the correction won
    report("mongod", faults["mongod"])


def test_hostile_records_are_dead_lettered_once_and_late_ones_stored(
    faults: dict[str, Scenario], demo: Demo
) -> None:
    hostile = faults["hostile"]
    assert_stored_once_and_counted(demo, hostile)
    assert not demo.store.collection(TRANSACTIONS).count_documents({"_id": {"$in": hostile.poison}})
    letters = [
        str(d.get("payload")) for d in demo.store.collection(DEAD_LETTERS).find({}, {"payload": 1})
    ]
    for name in hostile.poison:
        assert sum(name in letter for letter in letters) == 1, name
    report("hostile", hostile)


def test_the_broker_paused_mid_read_loses_nothing(faults: dict[str, Scenario], demo: Demo) -> None:
    assert_stored_once_and_counted(demo, faults["broker_pause"])
    report("broker_pause", faults["broker_pause"])


def test_the_broker_killed_then_up_and_a_replay_loses_nothing_and_status_says_so(
    faults: dict[str, Scenario], demo: Demo
) -> None:
    kill = faults["broker_kill"]
    assert "end below offsets already ingested" in kill.status, kill.status
    assert_stored_once_and_counted(demo, kill)
    report("broker_kill", kill)


def test_overlapping_range_runs_with_automation_never_move_offsets_back(
    faults: dict[str, Scenario], demo: Demo
) -> None:
    overlap = faults["overlap"]
    assert not overlap.offsets_moved_back, overlap.offsets_moved_back
    assert overlap.offset_samples > 20
    instance = dg.DagsterInstance.from_config(str(demo.state / "dagster"))
    try:
        for backfill_id in overlap.backfills:
            runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
            assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [
                r.status for r in runs
            ]
    finally:
        instance.dispose()
    assert_stored_once_and_counted(demo, overlap)
    report("overlap", overlap)


def test_labels_due_while_the_label_api_was_paused_are_all_stored(
    faults: dict[str, Scenario], demo: Demo
) -> None:
    due = sorted(faults["label_api"].valid)
    stored = list(demo.store.collection(LABELS).find({"_id": {"$in": due}}))
    assert sorted(d["_id"] for d in stored) == due and {d["tx_fraud"] for d in stored} == {0}
    report("label_api", faults["label_api"])

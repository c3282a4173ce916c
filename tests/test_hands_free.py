"""Hands-free, end to end, as a newcomer meets it: `fraudstream demo` (the README's first
command) starts the embedded stack with the Dagster daemon and webserver, publishes two hours of
history with labels and watches — nobody launches anything — until the sensors and automation
have ingested, trained, scored, checked and exported it; it prints its summary table and leaves
the UI up. On that running system: the UI in headless Chromium (the asset graph, the partitions
of `transactions`, the sensors RUNNING, a backfill launched from the partitions page and
re-materializing idempotently, the quality report's picture) with screenshots for the README,
and a sensor switched off and on as the UI's toggle does. Ctrl-C stops a demo cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import expect

from fraudstream.config import StackRecord
from fraudstream.store import MongoStore
from fraudstream.tooling.stack.dagster_api import DagsterApi
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.stack.processes import is_running
from fraudstream.windows import partition_key, window_start
from tests.helpers.browser import CHROMIUM, chromium_page, expand_all_groups, screenshot
from tests.helpers.dagster_ui import backfill_status, partitions_with_metadata, sensor_status
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(2400),
]  # the sum of its bounded waits
SENSORS = ("kafka_lag_sensor", "landing_files_sensor", "label_api_sensor")


@dataclass(frozen=True)
class Demo:
    """A finished `fraudstream demo` whose stack still runs."""

    output: str
    record: StackRecord
    state: Path

    @cached_property  # one client for the module's tests, not one per access
    def store(self) -> MongoStore:
        return MongoStore.connect(self.record.mongo_uri or "", "fraudstream")

    @cached_property
    def api(self) -> DagsterApi:
        return DagsterApi(self.record.dagster_url or "")

    @property
    def published(self) -> int:
        return int(re.search(r"published ([\d,]+) simulated", self.output)[1].replace(",", ""))


def demo_environment(state: Path) -> dict[str, str]:
    """The test's environment for a demo of its own state dir; partitions start an hour before
    the demo's history (fewer partitions for automation to evaluate than the default start)."""
    start = window_start(datetime.now(UTC)) - timedelta(hours=3)
    return os.environ | {
        "FRAUDSTREAM_STATE_DIR": str(state),
        "FRAUDSTREAM_PARTITION_START": start.isoformat(),
    }


DEMO_COMMAND = [sys.executable, "-m", "fraudstream.tooling.cli", "demo", "--hours", "2",
                "--tx-per-day", "30000", "--seed", "4"]  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    state = tmp_path_factory.mktemp("demo") / ".fraudstream"
    try:
        finished = subprocess.run(
            DEMO_COMMAND, env=demo_environment(state), capture_output=True, text=True,
            timeout=1500,
        )  # fmt: skip
        assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
        record = StackRecord.load(state)
        assert record is not None and record.dagster_url
        yield Demo(finished.stdout, record, state)
    finally:
        EmbeddedStack(state).down()


def test_the_demo_runs_everything_by_itself_and_ends_with_its_summary(demo: Demo) -> None:
    summary = demo.output.split("summary", 1)[1]
    for row in ("transactions", "frauds caught at the flag threshold", "precision of the flags",
                "recall of the flags", r"average precision \(confidence\)", r"model version\s+v\d",
                r"validation\s+7 checks", "Excel export"):  # fmt: skip
        assert re.search(row, summary), row
    assert f"The UI stays at {demo.record.dagster_url}" in demo.output

    ingested = demo.store.documents_per_window("transactions")
    scored = demo.store.documents_per_window("ensemble_results")
    assert sum(ingested.values()) == demo.published
    assert scored == ingested
    assert demo.store.collection("models").count_documents({}) >= 1
    assert demo.store.collection("labels").count_documents({}) > 0
    statuses = demo.api.check_statuses()
    assert statuses["flag_rate"] == "SUCCEEDED", statuses
    assert statuses["dead_letter_rate"] == "SUCCEEDED", statuses
    exports = re.findall(r"Excel export\s+(\S+)", summary)
    assert exports and all((Path(e) / "summary.xlsx").exists() for e in exports)


@pytest.mark.skipif(
    not CHROMIUM,
    reason="no chromium executable: install Debian's chromium (scripts/test does, as root)",
)
def test_the_ui_in_a_real_browser(demo: Demo, tmp_path: Path) -> None:
    before = {c: demo.store.documents_per_window(c) for c in ("transactions", "ensemble_results")}
    with chromium_page(demo.record.dagster_url, tmp_path) as page:
        # The asset graph: every group expanded shows the whole pipeline.
        page.goto("/asset-groups")
        page.get_by_text("ingestion", exact=True).first.wait_for()
        expand_all_groups(page)
        for group in ("ingestion", "features", "ml", "quality", "export"):
            expect(page.get_by_text(group, exact=True).first).to_be_visible()
        for asset in ("transactions", "labels", "fraud_models", "excel_export"):
            expect(page.get_by_text(asset, exact=True).first).to_be_visible()
        screenshot(page, "asset-graph")

        # The partitions of `transactions`: the demo's windows are materialized.
        page.goto("/assets/transactions?view=partitions")
        materialized = page.get_by_text(re.compile(r"Materialized \(\d+\)")).first
        materialized.wait_for()
        count = int(re.search(r"\((\d+)\)", materialized.inner_text())[1])
        assert count >= len(before["transactions"]), materialized.inner_text()
        screenshot(page, "transactions-partitions")

        # A backfill of a range of windows from that page, as a user launches one.
        windows = sorted(before["transactions"])[:6]
        page.get_by_role("button", name="Materialize…").click()
        dialog = page.get_by_role("dialog")
        selection = dialog.get_by_placeholder(re.compile("partition", re.IGNORECASE)).first
        selection.fill(f"[{windows[0]}...{windows[-1]}]")
        selection.press("Enter")
        expect(dialog.get_by_text("6 partitions")).to_be_visible()
        screenshot(page, "backfill-dialog")
        known = {b["id"] for b in demo.api.backfills()}
        dialog.get_by_role("button", name="Launch backfill").click()
        wait_for(lambda: len(demo.api.backfills()) > len(known), 60, "the backfill registered")
        [launched] = [b for b in demo.api.backfills() if b["id"] not in known]
        assert launched["assetSelection"] == ["transactions"]
        assert sorted(launched["partitionNames"]) == windows

        # The sensors, each RUNNING (its switch on) on the Automation page.
        page.goto("/automation")
        for name in (*SENSORS, "automation_sensor"):
            item = page.locator("[class*=ListItem_listItem_]").filter(
                has=page.get_by_role("link", name=name)
            )
            switches = item.locator("input[type=checkbox]")
            expect(switches).to_have_count(2)  # the row's selection box, then its switch
            expect(switches.nth(1)).to_be_checked()
        screenshot(page, "sensors")

        # The Kafka lag over time: the lag sensor's observations, charted per event.
        page.goto("/assets/transactions")
        page.get_by_role("button", name="Plots").click()
        page.get_by_role("button", name="Events").click()
        lag_chart = page.get_by_text("kafka_lag", exact=True).first
        lag_chart.scroll_into_view_if_needed()
        expect(lag_chart).to_be_visible()
        screenshot(page, "kafka-lag")

        # A day's quality report with its precision-recall curves, once a refresh (at most one
        # per export tick) has measured that day's labelled frauds. Near midnight the newest
        # day may hold no labelled fraud yet, so the page opens the measured day.
        def measured_days() -> list[str]:
            return partitions_with_metadata(
                demo.api, "model_quality_report", "ensemble_average_precision"
            )

        wait_for(lambda: bool(measured_days()), 300, "a quality report with metrics", poll=10)
        page.goto(f"/assets/model_quality_report?view=partitions&partition={measured_days()[0]}")
        page.get_by_text("ensemble_average_precision").first.wait_for()
        screenshot(page, "quality-report")
        page.get_by_text("[Show Markdown]").last.click()
        expect(page.get_by_role("dialog").locator("img")).to_be_visible()
        screenshot(page, "precision-recall-curves")

    def backfill_done() -> bool:
        status = backfill_status(demo.api, launched["id"])
        assert status not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), status
        return status in ("COMPLETED", "COMPLETED_SUCCESS")

    wait_for(backfill_done, 300, "the backfill launched from the UI completed")
    time.sleep(40)  # give automation a tick to act on the re-materialized windows
    wait_for(lambda: not demo.api.active_runs(), 300, "no run in progress")
    after = {c: demo.store.documents_per_window(c) for c in ("transactions", "ensemble_results")}
    assert after == before  # re-materialized, nothing duplicated or lost


def test_a_sensor_switched_off_and_on_as_the_ui_does(demo: Demo) -> None:
    api = demo.api
    assert sensor_status(api, "kafka_lag_sensor") == "RUNNING"
    api.set_sensor("kafka_lag_sensor", running=False)
    assert sensor_status(api, "kafka_lag_sensor") == "STOPPED"
    api.set_sensor("kafka_lag_sensor", running=True)
    assert sensor_status(api, "kafka_lag_sensor") == "RUNNING"
    for name in ("landing_files_sensor", "label_api_sensor", "automation_sensor"):
        assert sensor_status(api, name) == "RUNNING", name


def test_a_run_whose_process_is_killed_is_failed_by_monitoring_and_retried(demo: Demo) -> None:
    instance = dg.DagsterInstance.from_config(str(demo.state / "dagster"))
    window = sorted(demo.store.documents_per_window("transactions"))[0]
    # Features start a Spark session: the run stays STARTED long enough to be killed mid-way.
    run_id = demo.api.launch_run(
        ["transaction_features"], window, tags={"dagster/max_retries": "1"}
    )

    def worker_pid() -> int | None:
        for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
            if event.message.startswith("Started process for run"):
                return int(str(event.dagster_event.engine_event_data.metadata["pid"].value))
        return None

    wait_for(lambda: worker_pid() is not None, 120, "the run's worker started", poll=0.5)
    os.kill(worker_pid(), signal.SIGKILL)

    def status() -> dg.DagsterRunStatus:
        return instance.get_run_by_id(run_id).status

    wait_for(lambda: status() == dg.DagsterRunStatus.FAILURE, 180, "the dead run failed", poll=5)
    retried = dg.RunsFilter(tags={"dagster/parent_run_id": run_id})

    def retry_succeeded() -> bool:
        runs = instance.get_runs(filters=retried)
        return any(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)

    wait_for(retry_succeeded, 300, "the retry of the killed run succeeded", poll=5)
    instance.dispose()


def test_faults_and_hostile_records_end_stored_once_and_scored_without_a_launch(
    demo: Demo,
) -> None:
    """Into the running stack: MongoDB killed (then the documented `fraudstream up`), records
    MongoDB cannot store, impossible timestamps, late records of windows ingested long ago,
    duplicates and a correction. Nobody launches a run."""
    now = datetime.now(UTC)
    old_window = window_start(now - timedelta(hours=1, minutes=30))
    # Enough valid records that the four poison ones stay under the dead-letter rate limit.
    valid = {f"f-{i}": now - timedelta(seconds=330 - 3 * i) for i in range(100)}
    late = {f"late-{i}": old_window + timedelta(minutes=1 + i) for i in range(5)}
    poison = {
        "p-int": {"overflow": 2**64 + 1},
        "p-nul": {"x\x00y": 1},
        "p-2099": {"tx_datetime": "2099-01-01T00:00:00+00:00"},
        "p-ancient": {"tx_datetime": "2001-01-01T00:00:00+00:00"},
    }
    os.kill(demo.record.processes["mongodb"], signal.SIGKILL)
    with RecordProducer(demo.record.kafka_bootstrap or "", "transactions") as producer:
        for n, (name, when) in enumerate(valid.items()):
            producer.send_tx(tx(name, when, customer=f"C{n % 7}"), partition=n % 4)
        for name, extra in poison.items():
            record = {**tx(name, now - timedelta(seconds=60)), **extra}
            producer.send(record, now - timedelta(seconds=60), partition=1)
        for name, when in late.items():  # an offline terminal back: stamped with event time
            producer.send_tx(tx(name, when), partition=2)
        for name in list(valid)[:10]:  # the producer retried: delivered twice
            producer.send_tx(tx(name, valid[name], customer="C0"), partition=3)
        # A correction: f-0 again, a minute later (within the allowed lateness), another amount.
        fixed = valid["f-0"] + timedelta(minutes=1)
        producer.send(tx("f-0", valid["f-0"], amount=77.0), fixed, partition=0)
        producer.flush()
        time.sleep(20)  # the sensors meet MongoDB down: their ticks and runs fail and say so
        restored = subprocess.run(
            [sys.executable, "-m", "fraudstream.tooling.cli", "up"],
            env=demo_environment(demo.state), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stderr[-2000:]
    store = MongoStore.connect(demo.record.mongo_uri or "", "fraudstream")
    expected = set(valid) | set(late)

    def everything_scored() -> bool:
        scored = store.collection("ensemble_results").find(
            {"_id": {"$in": sorted(expected)}}, {"_id": 1}
        )
        return {d["_id"] for d in scored} == expected

    wait_for(everything_scored, 900, "every valid injected record scored", poll=10)
    stored = {
        d["_id"]: d
        for d in store.collection("transactions").find({"_id": {"$in": [*expected, *poison]}})
    }
    assert set(stored) == expected  # each once (ids are keys), no poison among them
    assert stored["f-0"]["tx_amount"] == 77.0  # the newest version
    assert {stored[name]["partition_key"] for name in late} == {partition_key(old_window)}
    letters = " ".join(
        str(d.get("payload")) for d in store.collection("dead_letters").find({}, {"payload": 1})
    )
    assert all(name in letters for name in poison)
    store.close()


def test_ctrl_c_stops_every_process_of_the_demo(tmp_path: Path) -> None:
    state = tmp_path / ".fraudstream"
    demo = subprocess.Popen(
        DEMO_COMMAND, env=demo_environment(state), stdout=subprocess.PIPE, text=True
    )
    try:
        for line in demo.stdout:
            if line.startswith("published "):
                break
        record = StackRecord.load(state)
        assert record is not None and all(is_running(p) for p in record.processes.values())
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=120)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
        EmbeddedStack(state).down()
    assert demo.returncode == 130
    assert "interrupted: stopping the stack" in rest
    assert not any(is_running(p) for p in record.processes.values())
    assert StackRecord.load(state) is None

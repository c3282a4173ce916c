"""Hands-free, end to end, as a newcomer meets it: `fraudstream demo` (the README's first command)
starts the embedded stack with the Dagster daemon and webserver, publishes a day of labelled
history and two live hours and watches — nobody launches anything — until the sensors and
automation have ingested, trained, scored, checked and exported it; it prints its summary table
and leaves the UI up. On that running system: the UI in headless Chromium (the asset graph, the
partitions of `transactions`, the sensors RUNNING, a backfill launched from the partitions page
and re-materializing idempotently, the quality report's picture) with screenshots for the README,
and a sensor switched off and on as the UI's toggle does. Ctrl-C stops a demo cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fraudstream.config import StackRecord
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.stack.processes import is_running
from tests.helpers.browser import CHROMIUM, chromium_page, expand_all_groups, screenshot
from tests.helpers.dagster_ui import backfill_status, partitions_with_metadata, sensor_status
from tests.helpers.demo import DEMO_COMMAND, Demo, demo_environment
from tests.helpers.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.timeout(2400),
]  # the sum of its bounded waits
SENSORS = ("kafka_lag_sensor", "landing_files_sensor", "label_api_sensor")


def test_the_demo_runs_everything_by_itself_and_ends_with_its_summary(demo: Demo) -> None:
    summary = demo.output.split("summary", 1)[1]
    for row in ("transactions", "frauds caught at the flag threshold", "precision of the flags",
                "recall of the flags", r"average precision \(confidence\)", r"model version\s+v\d",
                r"validation\s+7 checks", "Excel export"):  # fmt: skip
        assert re.search(row, summary), row
    assert f"The UI stays at {demo.record.dagster_url}" in demo.output

    ingested = demo.store.documents_per_window("transactions")
    assert sum(ingested.values()) == demo.published
    # The summary comes once the live hours are scored; the history's windows follow.
    wait_for(
        lambda: demo.store.documents_per_window("ensemble_results") == ingested,
        300,
        "every ingested window scored",
    )
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
        for name in (*SENSORS, "automation_sensor", "quality_report_automation_sensor"):
            item = page.locator("[class*=ListItem_listItem_]").filter(
                # Whole word: "automation_sensor" is also in quality_report_automation_sensor.
                has=page.get_by_role("link", name=re.compile(rf"\b{name}\b"))
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


def test_ctrl_c_stops_every_process_of_the_demo(tmp_path: Path) -> None:
    state = tmp_path / ".fraudstream"
    demo = subprocess.Popen(
        DEMO_COMMAND, env=demo_environment(state), stdout=subprocess.PIPE, text=True
    )
    try:
        for line in demo.stdout:
            if line.startswith("history: "):
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

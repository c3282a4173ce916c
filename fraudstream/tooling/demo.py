"""`fraudstream demo`: the whole system, hands-free, on simulated traffic that holds fraud to
catch.

Starts the embedded stack with Dagster, then drops ``history_days`` of simulated traffic as a
batch file in ``landing/transactions`` (a bank's export of its past transactions: the
landing-files sensor loads it through the `transactions` asset in one run) and publishes the
``hours`` of live traffic up to now to Kafka. Labels come with their real delays (each reported
``label_delay`` x U(0.5, 1.5) after its transaction): those already reported land as a file in
``landing/labels``, the rest are served by the label API from their report time — the history is
labelled, the live hours are not, as in production. The features' feedback delay is set to the
latest a label comes (3 days for the default 2-day delay). Then the demo only watches: the sensors
ingest, the automation computes features, trains on the labelled history and scores every
window, the checks run, the export writes the reviewers' workbooks. The summary judges the live
hours' flags against the simulated truth. Ctrl-C at any point stops every process the demo
started.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from fraudstream import config
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.store import MongoStore
from fraudstream.tooling.demo_watch import (
    DemoPlan,
    Watch,
    print_summary,
    summary,
    workbooks_current,
)
from fraudstream.tooling.simulator.delivery import (
    TransactionPublisher,
    deliver_labels,
    label_times,
    land_transactions,
    latest_report,
)
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.terminal import console, prerequisites_met, start_stack
from fraudstream.windows import window_start

# Settings a demo stack starts with unless the environment sets them: the demo publishes its
# live hours at once, so its last window may close 30 s after the topic goes quiet (not after
# the 5-minute allowed lateness), the day's workbooks refresh every minute and the quality
# reports every 5 (not hourly) so that they appear while you watch (a quality refresh is a run
# per day of the last week: every minute, they would crowd the 2 cores), and the automation
# evaluates every 5 s (not 15: each step of the catch-up waits for a tick).
DEMO_ENVIRONMENT = {
    "FRAUDSTREAM_AUTOMATION_INTERVAL_SECONDS": "5",
    "FRAUDSTREAM_IDLE_CLOSE_SECONDS": "30",
    "FRAUDSTREAM_EXPORT_CRON": "* * * * *",
    "FRAUDSTREAM_QUALITY_REPORT_CRON": "*/5 * * * *",
}


@dataclass(frozen=True)
class DemoSettings:
    history_days: float = 10.0
    hours: float = 24.0  # live hours, ending now
    tx_per_day: int = 5_000
    seed: int = 7
    # Twice the live hours at the least: no live label arrives before the demo ends.
    label_delay: timedelta = timedelta(days=2)
    timeout: timedelta = timedelta(minutes=15)
    export_wait: timedelta = timedelta(minutes=5)


def run_demo(state_dir: Path, settings: DemoSettings, *, exit_after: bool) -> int:
    """The demo; on Ctrl-C, every process of the stack is stopped (exit code 130)."""
    stack = EmbeddedStack(state_dir)
    # Settings that derive from the state dir (exports, landing dir) then name this one.
    os.environ["FRAUDSTREAM_STATE_DIR"] = str(stack.state_dir)
    if not prerequisites_met(stack.state_dir, spark=True):
        return 1
    try:
        return _demo(stack, state_dir, settings, exit_after=exit_after)
    except KeyboardInterrupt:
        console.print("\ninterrupted: stopping the stack ...")
        stopped = stack.down()
        console.print(f"stopped {', '.join(stopped) or 'nothing'}; the data stays in {state_dir}")
        return 130


def _demo(
    stack: EmbeddedStack, state_dir: Path, settings: DemoSettings, *, exit_after: bool
) -> int:
    plan = DemoPlan.ending(window_start(datetime.now(UTC)), settings.history_days, settings.hours)
    # Partitions from the history's first day: the automation evaluates only the demo's.
    first_day = plan.history.start.replace(hour=0, minute=0)
    # Terminal risk counts a fraud once its label can have come: the simulated labels' delay,
    # not the handbook's 7 days (which would hide the terminals compromised in the last week).
    feedback_days = math.ceil(latest_report(settings.label_delay) / timedelta(days=1))
    for name, value in (
        DEMO_ENVIRONMENT
        | {
            "FRAUDSTREAM_PARTITION_START": first_day.isoformat(),
            "FRAUDSTREAM_FEEDBACK_DELAY_DAYS": str(feedback_days),
        }
    ).items():
        os.environ.setdefault(name, value)
    started = time.monotonic()
    record = start_stack(stack, dagster=True)
    console.print(f"Dagster UI: {record.dagster_url} (up in {time.monotonic() - started:.0f}s)")
    simulator = TransactionSimulator(
        SimulationConfig(seed=settings.seed, tx_per_day=settings.tx_per_day)
    )
    history = pd.concat(simulator.days(plan.history), ignore_index=True)
    live = simulator.transactions(plan.live)
    topic = config.kafka_topic()
    ensure_topic(record.kafka_bootstrap, topic)
    land_transactions(history, state_dir)
    now = datetime.now(UTC)
    _, reported, _ = deliver_labels(
        pd.concat([history, live]), state_dir, settings.label_delay, now
    )
    known = history["tx_datetime"][label_times(history, settings.label_delay) <= now]
    plan = replace(plan, labelled_until=known.max() if len(known) else None)
    console.print(history_line(plan, history, reported))
    store = MongoStore.connect(record.mongo_uri or config.mongo_uri(), config.mongo_database())
    watch = Watch(store, record, plan, live)
    # The live windows' features need their customers' and terminals' history in place: once
    # the history's ingestion run exists, features wait for it (automation's `UpstreamIdle`).
    loaded = watch.until(
        lambda p: p.stored >= len(history) or watch.history_requested(),
        settings.timeout,
        "handing the history to Dagster",
    )
    if loaded:
        with TransactionPublisher(record.kafka_bootstrap, topic) as publisher:
            publisher.publish(live)
        console.print(live_line(plan, live))
    # Done once every live transaction is scored and every live window is on a model of the
    # history (a version that learned only a part of it would have its windows scored again).
    done = loaded and watch.until(
        lambda p: p.live_scored >= len(live) and 0 < p.live_windows == p.live_windows_settled,
        settings.timeout,
        "scoring the live hours",
    )
    exports = [config.export_dir() / day for day in plan.days]
    exported = done and poll(
        lambda: all(workbooks_current(store, e) for e in exports), settings.export_wait
    )
    console.print()
    print_summary(summary(store, plan, live, watch, exports if exported else []))
    if not done:
        console.print(
            f"\nthe live hours were not all scored by a model of the history within "
            f"{settings.timeout}: see the UI's Runs"
        )
    if exit_after:
        stack.down()
        console.print("\nstack stopped (--exit)")
    else:
        console.print(
            f"\nThe UI stays at {record.dagster_url} (assets, their partitions, checks, the "
            "automation and sensors); `fraudstream down` stops everything."
        )
    return 0 if done else 1


def history_line(plan: DemoPlan, history: pd.DataFrame, reported: int) -> str:
    return (
        f"history: {len(history):,} simulated transactions ({int(history['tx_fraud'].sum())} "
        f"frauds) of {plan.history_days:g} days from {plan.history.start:%Y-%m-%d %H:%M} UTC, "
        f"dropped as a batch file in landing/transactions; labels: {reported:,} already "
        "reported, in landing/labels, the rest served by the label API as they are reported; "
        f"terminal risk counts a fraud {config.feedback_delay().days} day(s) after it "
        "(FRAUDSTREAM_FEEDBACK_DELAY_DAYS). Nobody launches anything from here: watch the "
        "sensors and the automation in the UI."
    )


def live_line(plan: DemoPlan, live: pd.DataFrame) -> str:
    return (
        f"published {len(live):,} simulated live transactions ({int(live['tx_fraud'].sum())} "
        f"frauds) from {plan.live.start:%Y-%m-%d %H:%M} to {plan.live.end:%Y-%m-%d %H:%M} UTC "
        "to Kafka; their labels come days later, as in production."
    )


def poll(condition: Callable[[], bool], timeout: timedelta, every: float = 5.0) -> bool:
    """Check ``condition`` every ``every`` seconds until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout.total_seconds()
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True

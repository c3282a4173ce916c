"""Freshness: how soon a window's predictions exist once its data is complete, and what a day's
catch-up costs through the automation versus one run per window.

On a fresh embedded stack with the Dagster daemon at its default intervals (lag and automation
sensors every 15 s, the others 30 s), only Kafka producers and the landing directory act, as
users would:

1. warm-up: hours of history with labels (enough labelled frauds for a first model at any time
   of day); the sensors and automation ingest, train and score;
2. catch-up through the automation: one day (144 windows) published at once; time until every
   window has its `ensemble_results` (the lag sensor's ranges, automation backfills, training);
3. one run per window: the next day, with the sensors off, as 144 runs of transactions ->
   features -> predictions launched through the GraphQL API (the UI's "Materialize"), run by the
   queued coordinator; time until every window is scored;
4. freshness: the stream continues window by window. A window's data is complete once the
   watermark passes its end (a record later than its end + the allowed lateness is published);
   measured: from that moment until its `ensemble_results` are all written.

Usage:
  python bench/freshness.py                    # 10,000 transactions a day, 4 freshness samples
  python bench/freshness.py --samples 6 --catch-up-windows 72
  python bench/freshness.py --skip-per-window      # freshness and the catch-up only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fraudstream import config  # noqa: E402
from fraudstream.store import MongoStore  # noqa: E402
from fraudstream.tooling.simulator.delivery import TransactionPublisher, deliver  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.tooling.stack.dagster_api import DagsterApi  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import WINDOW, TimeRange, partition_key, window_start  # noqa: E402

PER_WINDOW_ASSETS = ["transactions", "transaction_features", "ensemble_predictions"]
SENSORS_OFF_FOR_BASELINE = ("kafka_lag_sensor", "automation_sensor")


def wait_until(check: Callable[[], bool], timeout: float, what: str, poll: float = 1.0) -> float:
    """Seconds until ``check`` holds (polled every ``poll`` s)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not within {timeout:.0f} s: {what}")
        time.sleep(poll)
    return time.monotonic() - started


def expected_counts(frame: pd.DataFrame) -> dict[str, int]:
    keys = frame["tx_datetime"].map(lambda t: partition_key(window_start(t.to_pydatetime())))
    return keys.value_counts().to_dict()


def all_scored(store: MongoStore, expected: dict[str, int]) -> Callable[[], bool]:
    keys = list(expected)
    return lambda: store.documents_per_window("ensemble_results", keys) == expected


class Bench:
    def __init__(self, args: argparse.Namespace, state: Path, now: datetime) -> None:
        self.args = args
        self.state = state
        self.simulator = TransactionSimulator(
            SimulationConfig(seed=args.seed, tx_per_day=args.tx_per_day)
        )
        catch_up = args.catch_up_windows * WINDOW
        # Oldest first: warm-up, automation's day, one-run-per-window day, then the live windows.
        self.live_start = window_start(now) - (args.samples + 2) * WINDOW
        self.baseline = TimeRange(self.live_start - catch_up, self.live_start)
        self.automated = TimeRange(self.baseline.start - catch_up, self.baseline.start)
        self.warm_up = TimeRange(
            self.automated.start - timedelta(hours=args.warm_up_hours), self.automated.start
        )

    def run(self) -> None:
        os.environ["FRAUDSTREAM_STATE_DIR"] = str(self.state)
        os.environ["FRAUDSTREAM_PARTITION_START"] = self.warm_up.start.isoformat()
        stack = EmbeddedStack(self.state, preferred_ports=False)
        record = stack.up(dagster=True)
        try:
            self.api = DagsterApi(record.dagster_url)
            self.store = MongoStore.connect(record.mongo_uri, config.mongo_database())
            with TransactionPublisher(record.kafka_bootstrap, config.kafka_topic()) as publisher:
                self.publisher = publisher
                results = self.measure()
        finally:
            stack.down()
        report(self.args, results)

    def publish(self, span: TimeRange, *, labels: bool = False) -> dict[str, int]:
        frame = self.simulator.transactions(span)
        if labels:
            deliver([frame], self.publisher, self.state, timedelta(minutes=1))
        else:
            self.publisher.publish(frame.drop(columns="tx_fraud"))
        return expected_counts(frame)

    def publish_closing_records(self, end: datetime) -> None:
        """The records of ``[end, end + lateness + 1 min)``: the watermark passes ``end``."""
        later = TimeRange(end, end + config.allowed_lateness() + timedelta(minutes=1))
        self.publisher.publish(self.simulator.transactions(later).drop(columns="tx_fraud"))

    def settle(self) -> None:
        wait_until(lambda: not self.api.active_runs(), 900, "no run in progress", poll=5)

    def measure(self) -> dict[str, object]:
        warm = self.publish(self.warm_up, labels=True)
        print(f"warm-up: {sum(warm.values()):,} transactions with labels ...", flush=True)
        wait_until(all_scored(self.store, warm), 1200, "warm-up scored", poll=5)
        wait_until(
            lambda: self.store.collection("models").count_documents({}) > 0, 900, "a model", poll=5
        )
        self.settle()

        day = self.publish(self.automated)
        # The stream goes on after the day (as in a real catch-up), so its last window closes
        # without waiting for the topic to fall idle; these records are the next day's.
        self.publish_closing_records(self.automated.end)
        print(f"catch-up through the automation: {len(day)} windows ...", flush=True)
        started = time.monotonic()
        wait_until(all_scored(self.store, day), 3600, "the automated catch-up scored", poll=5)
        automated_s = time.monotonic() - started
        self.settle()

        if self.args.skip_per_window:
            return {"automated_s": automated_s, "baseline_s": None, "failed_runs": 0,
                    "samples": self.freshness()}  # fmt: skip
        for name in SENSORS_OFF_FOR_BASELINE:
            self.api.set_sensor(name, running=False)
        day = self.publish(self.baseline)
        print(f"one run per window: {len(day)} runs ...", flush=True)
        started = time.monotonic()
        for window in self.baseline.windows():
            self.api.launch_run(PER_WINDOW_ASSETS, partition_key(window.start))
        wait_until(all_scored(self.store, day), 4 * 3600, "the per-window runs scored", poll=5)
        baseline_s = time.monotonic() - started
        self.settle()
        failed = self.api.runs(["FAILURE"])
        for name in SENSORS_OFF_FOR_BASELINE:
            self.api.set_sensor(name, running=True)

        samples = self.freshness()
        return {
            "automated_s": automated_s,
            "baseline_s": baseline_s,
            "failed_runs": len(failed),
            "samples": samples,
        }

    def freshness(self) -> list[dict[str, float]]:
        """Publishes the live windows in order; each window completes when the next one's
        records pass its end + the allowed lateness."""
        lateness = config.allowed_lateness()
        live = TimeRange(self.live_start, self.live_start + (self.args.samples + 1) * WINDOW)
        windows = list(live.windows())
        frames = {w.start: self.simulator.transactions(w).drop(columns="tx_fraud") for w in windows}
        self.publisher.publish(frames[windows[0].start])
        samples = []
        for previous, window in pairwise(windows):
            frame = frames[window.start]
            closing = frame["tx_datetime"] >= pd.Timestamp(previous.end + lateness)
            self.publisher.publish(frame[~closing])
            expected = expected_counts(frames[previous.start])
            self.publisher.publish(frame[closing].head(50))  # the watermark passes previous.end
            ingested = wait_until(
                lambda: self.store.documents_per_window("transactions", list(expected)) == expected,  # noqa: B023
                900,
                f"window {previous} ingested",
            )
            scored = ingested + wait_until(
                all_scored(self.store, expected), 900, f"window {previous} scored"
            )
            samples.append({"window": partition_key(previous.start), "ingested_s": ingested,
                            "scored_s": scored})  # fmt: skip
            print(f"  window {samples[-1]['window']}: ingested after {ingested:.0f} s, "
                  f"scored after {scored:.0f} s", flush=True)  # fmt: skip
            self.publisher.publish(frame[closing].iloc[50:])
        return samples


def report(args: argparse.Namespace, results: dict[str, object]) -> None:
    samples = results["samples"]
    scored = [s["scored_s"] for s in samples]
    ingested = [s["ingested_s"] for s in samples]
    print(f"\n{args.tx_per_day:,} transactions a day; daemon at default intervals; "
          f"{os.cpu_count()} cores\n")  # fmt: skip
    print(f"{'freshness (data complete ->)':34} {'median s':>9} {'max s':>9}")
    print(f"{'  transactions ingested':34} {statistics.median(ingested):9.0f} {max(ingested):9.0f}")
    print(f"{'  ensemble_results written':34} {statistics.median(scored):9.0f} {max(scored):9.0f}")
    automated, baseline = results["automated_s"], results["baseline_s"]
    print(f"\n{'catch-up of ' + str(args.catch_up_windows) + ' windows':34} {'seconds':>9}")
    print(f"{'  through the automation':34} {automated:9.0f}")
    if baseline is not None:
        print(f"{'  one run per window':34} {baseline:9.0f}")
        print(f"{'  ratio automation / per-window':34} {automated / baseline:9.2f}")
    if results["failed_runs"]:
        print(f"\n{results['failed_runs']} run(s) failed: see the runs page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx-per-day", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=4, help="live windows timed")
    parser.add_argument("--catch-up-windows", type=int, default=144)
    parser.add_argument("--warm-up-hours", type=float, default=12)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--skip-per-window", action="store_true", help="skip the one-run-per-window day (~40 min)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudstream-freshness-") as state:
        Bench(args, Path(state), datetime.now(UTC)).run()


if __name__ == "__main__":
    main()

"""`fraudstream demo`: the whole system, hands-free, on simulated traffic.

Starts the embedded stack with Dagster, publishes a few hours of simulated history (labels go to
the landing directory and the label API), then only watches: the sensors and the automation do
the work. Progress every few seconds; a summary table at the end; the UI stays up unless
``--exit``. Ctrl-C at any point stops every process the demo started.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from kafka.errors import KafkaError

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import (
    KafkaSettings,
    TopicNotFound,
    TopicReader,
    records_behind,
)
from fraudstream.ml.ensemble import EnsembleThresholds
from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.store import MongoStore
from fraudstream.store.collections import ENSEMBLE_RESULTS, LABELS, MODELS, TRANSACTIONS
from fraudstream.tooling.simulator.delivery import TransactionPublisher, deliver
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.tooling.stack.dagster_api import DagsterApi, DagsterApiError
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.windows import WINDOW, TimeRange, window_start

# Settings a demo stack starts with unless the environment sets them: the demo publishes its
# whole history at once, so its last window may close 30 s after the topic goes quiet (not after
# the 5-minute allowed lateness), and the day's workbooks and quality report refresh every 2
# minutes (not hourly) so that they appear while you watch.
DEMO_ENVIRONMENT = {
    "FRAUDSTREAM_IDLE_CLOSE_SECONDS": "30",
    "FRAUDSTREAM_EXPORT_CRON": "*/2 * * * *",
}


@dataclass(frozen=True)
class DemoSettings:
    hours: float = 3.0
    tx_per_day: int = 40_000
    seed: int = 7
    label_delay: timedelta = timedelta(minutes=10)
    timeout: timedelta = timedelta(minutes=15)
    export_wait: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class Progress:
    scored: int
    windows_ingested: int
    windows_scored: int
    lag: int | None
    labels: int
    model_versions: int
    checks: Counter[str]

    def line(self, elapsed: float, expected: int, windows: int) -> str:
        checks = status_counts(self.checks) or "none"
        lag = "?" if self.lag is None else f"{self.lag:,}"
        return (
            f"[{elapsed:4.0f}s] windows ingested {self.windows_ingested}/{windows} "
            f"scored {self.windows_scored}/{windows} | transactions scored "
            f"{self.scored:,}/{expected:,} | Kafka lag {lag} | labels {self.labels:,} | "
            f"model versions {self.model_versions} | checks: {checks}"
        )


def run_demo(state_dir: Path, settings: DemoSettings, *, exit_after: bool) -> int:
    """The demo; on Ctrl-C, every process of the stack is stopped (exit code 130)."""
    stack = EmbeddedStack(state_dir)
    try:
        return _demo(stack, state_dir, settings, exit_after=exit_after)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the stack ...", flush=True)
        stopped = stack.down()
        print(f"stopped {', '.join(stopped) or 'nothing'}; the data stays in {state_dir}")
        return 130


def _demo(
    stack: EmbeddedStack, state_dir: Path, settings: DemoSettings, *, exit_after: bool
) -> int:
    for name, value in DEMO_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    print(f"starting the embedded stack with Dagster in {state_dir} ...", flush=True)
    record = stack.up(dagster=True)
    print(f"  Dagster UI: {record.dagster_url}", flush=True)
    end = window_start(datetime.now(UTC))
    history = TimeRange(end - timedelta(hours=settings.hours), end)
    simulator = TransactionSimulator(
        SimulationConfig(seed=settings.seed, tx_per_day=settings.tx_per_day)
    )
    truth = simulator.transactions(history)
    topic = config.kafka_topic()
    ensure_topic(record.kafka_bootstrap, topic)
    with TransactionPublisher(record.kafka_bootstrap, topic) as publisher:
        delivered = deliver([truth], publisher, state_dir, settings.label_delay)
    print(
        f"published {delivered.transactions:,} simulated transactions ({delivered.frauds} frauds) "
        f"for {history.start:%H:%M}-{history.end:%H:%M} UTC; {delivered.labels_in_files:,} labels "
        "in landing/labels, the rest on the label API. Now the sensors and automation work "
        "(watch them in the UI):",
        flush=True,
    )
    store = MongoStore.connect(record.mongo_uri or config.mongo_uri(), config.mongo_database())
    watch = Watch(store, record)
    windows = int((history.end - history.start) / WINDOW)
    started = time.monotonic()

    def everything_scored() -> bool:
        progress = watch.progress()
        print(progress.line(time.monotonic() - started, len(truth), windows), flush=True)
        return progress.scored >= len(truth) and progress.model_versions > 0

    done = poll(everything_scored, settings.timeout)
    days = sorted({history.start.strftime("%Y-%m-%d"), (history.end - WINDOW).strftime("%Y-%m-%d")})
    exports = [config.export_dir() / day for day in days]
    exported = done and poll(
        lambda: all((e / "summary.xlsx").exists() for e in exports), settings.export_wait
    )
    print()
    print(summary(store, truth, watch, exports if exported else []))
    if not done:
        print(f"\nnot every transaction was scored within {settings.timeout}: see the UI's Runs")
    if exit_after:
        stack.down()
        print("\nstack stopped (--exit)")
    else:
        print(
            f"\nThe UI stays at {record.dagster_url} (assets, their partitions, checks, the "
            "automation and sensors); `fraudstream down` stops everything."
        )
    return 0 if done else 1


def poll(condition: Callable[[], bool], timeout: timedelta, every: float = 10.0) -> bool:
    """Check ``condition`` every ``every`` seconds until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout.total_seconds()
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


class Watch:
    """What the demo reads to show progress: MongoDB, the Kafka group's lag, the checks."""

    def __init__(self, store: MongoStore, record: StackRecord) -> None:
        self.store = store
        self.api = DagsterApi(record.dagster_url or "")
        self.kafka = KafkaSettings(
            record.kafka_bootstrap, config.kafka_topic(), config.kafka_group_id()
        )

    def progress(self) -> Progress:
        ingested = self.store.documents_per_window(TRANSACTIONS)
        scored = self.store.documents_per_window(ENSEMBLE_RESULTS)
        return Progress(
            scored=sum(scored.values()),
            windows_ingested=len(ingested),
            windows_scored=len(scored),
            lag=self.lag(),
            labels=self.store.collection(LABELS).count_documents({}),
            model_versions=self.store.collection(MODELS).count_documents({}),
            checks=self.checks(),
        )

    def lag(self) -> int | None:
        """Records in the topic the ingestion has not committed (None while unreadable)."""
        try:
            with TopicReader(self.kafka, max_disorder=config.allowed_lateness()) as reader:
                return sum(records_behind(reader.extents(), reader.committed()).values())
        except (ServiceUnavailable, TopicNotFound, KafkaError):
            return None  # progress display only: the next tick tries again

    def checks(self) -> Counter[str]:
        """How many asset checks are in each status (their latest result)."""
        return Counter(s for s in self.check_statuses().values() if s != "NOT_RUN")

    def check_statuses(self) -> dict[str, str]:
        """Each check's latest status; none while the webserver does not answer."""
        try:
            return self.api.check_statuses()
        except (requests.RequestException, DagsterApiError):
            return {}


def summary(store: MongoStore, truth: pd.DataFrame, watch: Watch, exports: list[Path]) -> str:
    """The demo's results as a two-column table."""
    results = pd.DataFrame(
        list(
            store.collection(ENSEMBLE_RESULTS).find(
                {}, {"confidence": 1, "is_fraud": 1, "flagged": 1}
            )
        )
    )
    frauds = int(truth["tx_fraud"].sum())
    rows = [("transactions", f"{len(truth):,}"), ("frauds (simulated truth)", f"{frauds:,}")]
    if not results.empty:
        merged = truth.merge(results, left_on="transaction_id", right_on="_id")
        labels = merged["tx_fraud"].to_numpy()
        flagged = merged["flagged"].to_numpy(bool)
        ranked = ranking_metrics(labels, merged["confidence"].to_numpy())
        alerts = alert_metrics(labels, flagged)
        rows += [
            ("scored", f"{len(merged):,}"),
            ("flagged for review", f"{int(flagged.sum()):,}"),
            ("frauds caught at the flag threshold",
             f"{int((flagged & (labels == 1)).sum()):,} of {int(labels.sum()):,}"),
            ("precision of the flags", f"{alerts['precision']:.3f}"),
            ("recall of the flags", f"{alerts['recall']:.3f}"),
            ("average precision (confidence)", _number(ranked["average_precision"])),
            ("AUC ROC (confidence)", _number(ranked["auc_roc"])),
        ]  # fmt: skip
    latest = store.collection(MODELS).find_one(sort=[("_id", -1)])
    if latest:
        rows.append(("model version", f"v{latest['_id']} ({latest['decision']})"))
        if not results.empty and not results["flagged"].any():
            rows.append(
                ("why nothing was flagged",
                 f"v{latest['_id']} learnt from {latest['frauds']} frauds: no confidence > "
                 f"{EnsembleThresholds().flag_confidence} or 3 fraud votes yet (more --hours)")
            )  # fmt: skip
    rows.append(("validation", validation_line(watch.check_statuses())))
    if exports:
        rows += [("Excel export", str(path)) for path in exports]
    else:
        rows.append(("Excel export", f"not written yet: {config.export_dir()}/<day>/"))
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [rule, f"{'fraudstream demo':<{width}}  summary", rule]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join([*lines, rule])


def status_counts(counts: Counter[str]) -> str:
    """``{"SUCCEEDED": 3, "IN_PROGRESS": 1}`` as "1 in progress, 3 succeeded"."""
    return ", ".join(f"{n} {s.lower().replace('_', ' ')}" for s, n in sorted(counts.items()))


def validation_line(statuses: dict[str, str]) -> str:
    """The checks' latest results in one line, naming any that did not pass."""
    if not statuses:
        return "unknown (the webserver did not answer)"
    text = f"{len(statuses)} checks: " + status_counts(Counter(statuses.values()))
    failing = sorted(
        n for n, s in statuses.items() if s in ("FAILED", "WARNED", "EXECUTION_FAILED")
    )
    return text + (f" ({', '.join(failing)})" if failing else "")


def _number(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"

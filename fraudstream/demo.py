"""`fraudstream demo`: the whole system, hands-free, on simulated traffic.

Starts the embedded stack with Dagster, publishes a few hours of simulated history (labels go to
the landing directory and the label API), then only watches: the sensors and the automation do
the work. Progress every few seconds; a summary table at the end; the UI stays up unless
``--exit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pymongo import MongoClient
from pymongo.database import Database

from fraudstream import config
from fraudstream.kafka_admin import ensure_topic
from fraudstream.metrics import alert_metrics, ranking_metrics
from fraudstream.mongo_store import documents_per_window
from fraudstream.simulator.delivery import TransactionPublisher, deliver
from fraudstream.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.stack.embedded import EmbeddedStack
from fraudstream.windows import TimeRange, window_start


@dataclass(frozen=True)
class DemoSettings:
    hours: float = 3.0
    tx_per_day: int = 40_000
    seed: int = 7
    label_delay: timedelta = timedelta(minutes=10)
    timeout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Progress:
    ingested: int
    scored: int
    windows_ingested: int
    windows_scored: int
    model_versions: int
    labels: int

    def line(self, elapsed: float, expected: int) -> str:
        return (
            f"[{elapsed:5.0f}s] ingested {self.ingested:>6}/{expected} "
            f"({self.windows_ingested} windows)  scored {self.scored:>6} "
            f"({self.windows_scored} windows)  labels {self.labels:>6}  "
            f"model versions {self.model_versions}"
        )


def run_demo(state_dir: Path, settings: DemoSettings, *, exit_after: bool) -> int:
    stack = EmbeddedStack(state_dir)
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
        f"published {delivered.transactions} simulated transactions ({delivered.frauds} frauds) "
        f"for {history.start:%H:%M}-{history.end:%H:%M} UTC; {delivered.labels_in_files} labels "
        "in landing/labels, the rest on the label API. Now the sensors and automation work:",
        flush=True,
    )
    db = MongoClient(record.mongo_uri, tz_aware=True)[config.mongo_database()]
    started = time.monotonic()
    done = False
    try:
        while time.monotonic() - started < settings.timeout.total_seconds():
            progress = measure(db, history)
            print(progress.line(time.monotonic() - started, len(truth)), flush=True)
            if progress.scored >= len(truth) and progress.model_versions:
                done = True
                break
            time.sleep(10)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the stack", flush=True)
        stack.down()
        return 130
    print()
    print(summary(db, truth, state_dir, history))
    if not done:
        print(f"\nnot every transaction was scored within {settings.timeout}: see the UI's runs")
    if exit_after:
        stack.down()
        print("stack stopped (--exit)")
    else:
        print(f"\nThe UI stays at {record.dagster_url}; `fraudstream down` stops everything.")
    return 0 if done else 1


def measure(db: Database, history: TimeRange) -> Progress:
    ingested = documents_per_window(db, "transactions")
    scored = documents_per_window(db, "ensemble_results")
    return Progress(
        ingested=sum(ingested.values()),
        scored=sum(scored.values()),
        windows_ingested=len(ingested),
        windows_scored=len(scored),
        model_versions=db.models.count_documents({}),
        labels=db.labels.count_documents({}),
    )


def summary(db: Database, truth: pd.DataFrame, state_dir: Path, history: TimeRange) -> str:
    results = pd.DataFrame(
        list(db.ensemble_results.find({}, {"confidence": 1, "is_fraud": 1, "flagged": 1}))
    )
    rows = [("transactions", f"{len(truth):,}"), ("frauds (simulated truth)",
            f"{int(truth['tx_fraud'].sum()):,}")]  # fmt: skip
    if not results.empty:
        merged = truth.merge(results, left_on="transaction_id", right_on="_id")
        labels = merged["tx_fraud"].to_numpy()
        flagged = merged["flagged"].to_numpy(bool)
        ranked = ranking_metrics(labels, merged["confidence"].to_numpy())
        alerts = alert_metrics(labels, flagged)
        rows += [
            ("scored", f"{len(merged):,}"),
            ("flagged for review", f"{int(flagged.sum()):,}"),
            ("frauds caught (flagged)", f"{int((flagged & (labels == 1)).sum()):,}"),
            ("precision of the flags", f"{alerts['precision']:.3f}"),
            ("recall of the flags", f"{alerts['recall']:.3f}"),
            ("average precision (confidence)", _number(ranked["average_precision"])),
            ("AUC ROC (confidence)", _number(ranked["auc_roc"])),
        ]
    latest = db.models.find_one(sort=[("_id", -1)])
    if latest:
        rows.append(("model version", f"v{latest['_id']} ({latest['decision']})"))
    day = history.start.strftime("%Y-%m-%d")
    export = config.export_dir() / day
    rows.append(("exports", str(export) if export.exists() else f"{export} (at the next hour)"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def _number(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.3f}"

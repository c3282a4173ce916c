"""What `fraudstream demo` shows while it watches and when it is done: progress (bars and a table
on a terminal, a line every 15 s otherwise) and the summary of the live hours against the
simulated truth."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from kafka.errors import KafkaError
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from fraudstream import config
from fraudstream.config import ServiceUnavailable, StackRecord
from fraudstream.ingest.kafka_source import (
    KafkaSettings,
    TopicNotFound,
    TopicReader,
    records_behind,
)
from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.rescoring import RescoringPolicy, VersionSummary, stale_windows
from fraudstream.reporting.excel_export import exported_rows, read_manifest
from fraudstream.store import MongoStore
from fraudstream.store.collections import (
    ENSEMBLE_RESULTS,
    LABELS,
    MODELS,
    SCORED_WINDOWS,
    TRANSACTIONS,
)
from fraudstream.tooling.stack.dagster_api import DagsterApi, DagsterApiError
from fraudstream.tooling.terminal import console
from fraudstream.windows import WINDOW, TimeRange, parse_utc

SCENARIOS = {1: "amount above 220", 2: "compromised terminal", 3: "stolen card"}


@dataclass(frozen=True)
class DemoPlan:
    """The simulated time ranges: the history to learn from, then the live hours up to now;
    ``labelled_until``: the newest history transaction whose label was reported at the start."""

    history: TimeRange
    live: TimeRange
    labelled_until: datetime | None = None

    @classmethod
    def ending(cls, end: datetime, history_days: float, hours: float) -> DemoPlan:
        live = TimeRange(end - timedelta(hours=hours), end)
        return cls(TimeRange(live.start - timedelta(days=history_days), live.start), live)

    @property
    def history_days(self) -> float:
        return (self.history.end - self.history.start) / timedelta(days=1)

    @property
    def windows(self) -> int:
        return int((self.live.end - self.history.start) / WINDOW)

    @property
    def days(self) -> list[str]:
        """The export's days that hold live windows."""
        first, last = self.live.start, self.live.end - WINDOW
        return sorted({first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")})


@dataclass(frozen=True)
class Progress:
    stored: int
    live_scored: int
    live_windows: int  # live windows scored
    live_windows_settled: int  # of those, on a model of the history the re-scoring keeps
    windows_ingested: int
    windows_scored: int
    lag: int | None
    labels: int
    model_versions: int
    checks: Counter[str]

    def line(self, elapsed: float, plan: DemoPlan, live: int) -> str:
        """The progress as one plain line (output that is not a terminal)."""
        checks = status_counts(self.checks) or "none"
        lag = "?" if self.lag is None else f"{self.lag:,}"
        return (
            f"[{elapsed:4.0f}s] windows ingested {self.windows_ingested}/{plan.windows} "
            f"scored {self.windows_scored}/{plan.windows} | live transactions scored "
            f"{self.live_scored:,}/{live:,} (windows on a model of the history "
            f"{self.live_windows_settled}/{self.live_windows}) | Kafka lag {lag} | "
            f"labels {self.labels:,} | "
            f"model versions {self.model_versions} | checks: {checks}"
        )

    def table(self, title: str, plan: DemoPlan, live: int) -> Table:
        """The progress as bars and a table (a terminal)."""
        table = Table(title=f"fraudstream demo: {title}", title_justify="left")
        for column in ("", "", "done"):
            table.add_column(column)

        def bar(name: str, done: int, total: int) -> None:
            table.add_row(name, ProgressBar(total=max(total, 1), completed=done, width=40),
                          f"{done:,} / {total:,}")  # fmt: skip

        bar("windows ingested", self.windows_ingested, plan.windows)
        bar("windows scored", self.windows_scored, plan.windows)
        bar("live transactions scored", self.live_scored, live)
        bar("live windows on a model of the history", self.live_windows_settled,
            self.live_windows)  # fmt: skip
        table.add_row("transactions stored", "", f"{self.stored:,}")
        table.add_row("Kafka lag", "", "?" if self.lag is None else f"{self.lag:,}")
        table.add_row("labels loaded", "", f"{self.labels:,}")
        table.add_row("model versions", "", str(self.model_versions))
        table.add_row("checks", "", status_counts(self.checks) or "none yet")
        return table


class Watch:
    """What the demo reads to show progress: MongoDB, the Kafka group's lag, the checks."""

    def __init__(
        self, store: MongoStore, record: StackRecord, plan: DemoPlan, live: pd.DataFrame
    ) -> None:
        self.store = store
        self.plan = plan
        self.live = len(live)
        self.api = DagsterApi(record.dagster_url or "")
        self.kafka = KafkaSettings(
            record.kafka_bootstrap, config.kafka_topic(), config.kafka_group_id()
        )

    def until(self, finished: Callable[[Progress], bool], timeout: timedelta, stage: str) -> bool:
        """Show progress until ``finished`` holds (True) or ``timeout`` passes (False): bars and
        a table redrawn every 5 s on a terminal, a line every 15 s otherwise (logs); ``finished``
        is checked every 5 s."""
        started, deadline = time.monotonic(), time.monotonic() + timeout.total_seconds()
        display = Live(console=console, auto_refresh=False) if console.is_terminal else None
        printed = -math.inf
        with display or nullcontext() as screen:
            while True:
                progress = self.progress()
                elapsed = time.monotonic() - started
                done = finished(progress)
                if screen is not None:
                    title = f"{stage}, {elapsed:.0f}s"
                    screen.update(progress.table(title, self.plan, self.live), refresh=True)
                elif done or elapsed - printed >= 15:
                    console.print(progress.line(elapsed, self.plan, self.live))
                    printed = elapsed
                if done:
                    return True
                if time.monotonic() > deadline:
                    return False
                time.sleep(5)

    def progress(self) -> Progress:
        ingested = self.store.documents_per_window(TRANSACTIONS)
        scored = self.store.documents_per_window(ENSEMBLE_RESULTS)
        live_keys = [k for k in scored if k >= self.plan.live.key_range()["$gte"]]
        live_windows, settled = self.live_windows_settled()
        return Progress(
            stored=sum(ingested.values()),
            live_scored=sum(scored[k] for k in live_keys),
            live_windows=live_windows,
            live_windows_settled=settled,
            windows_ingested=len(ingested),
            windows_scored=len(scored),
            lag=self.lag(),
            labels=self.store.collection(LABELS).estimated_document_count(),
            model_versions=self.store.collection(MODELS).count_documents({}),
            checks=self.checks(),
        )

    def live_windows_settled(self) -> tuple[int, int]:
        """(live windows scored, those settled): scored by a version the re-scoring sensor would
        keep (their best eligible one, or one it is not clearly better than), once training has
        caught up with the history (a promoted version learned its newest label known at the
        start). A catch-up's first versions learn from a part of the history; the windows they
        score are scored again when the full fit lands."""
        windows = self.store.collection(SCORED_WINDOWS).find(
            {"partition_key": self.plan.live.key_range()}, {"window_start": 1, "model_version": 1}
        )
        scored = {w["window_start"]: w["model_version"] for w in windows}
        if not scored or self.plan.labelled_until is None:
            return len(scored), 0
        registry = ModelRegistry(self.store)
        promoted = registry.promoted_summaries(self.plan.history.start)
        others = registry.summaries(set(scored.values()) - {v.version for v in promoted})
        return len(scored), settled_windows(scored, promoted, others, self.plan.labelled_until)

    def history_requested(self) -> bool:
        """Whether the landing-files sensor has requested the history's ingestion run."""
        try:
            return "transactions" in self.api.assets_requested_by("landing_files_sensor")
        except (requests.RequestException, DagsterApiError):
            return False

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


def settled_windows(
    scored: dict[datetime, int],
    promoted: list[VersionSummary],
    others: list[VersionSummary],
    labelled_until: datetime,
) -> int:
    """How many of the ``scored`` windows (start -> version) are on a model of the history: none
    until a ``promoted`` version's data reaches ``labelled_until`` (within an hour), then those
    the re-scoring policy would not score again (``others``: the versions that scored windows
    but are no longer promoted)."""
    if not any(v.data_until >= labelled_until - timedelta(hours=1) for v in promoted):
        return 0
    return len(scored) - len(stale_windows(scored, promoted + others, RescoringPolicy()))


def live_results(store: MongoStore, plan: DemoPlan, truth: pd.DataFrame) -> pd.DataFrame:
    """The live transactions with their stored scores (inner join: the scored ones)."""
    results = pd.DataFrame(
        list(
            store.collection(ENSEMBLE_RESULTS).find(
                {"partition_key": plan.live.key_range()},
                {"confidence": 1, "is_fraud": 1, "flagged": 1, "model_version": 1},
            )
        )
    )
    if results.empty:
        return results
    return truth.merge(results, left_on="transaction_id", right_on="_id")


def summary(
    store: MongoStore, plan: DemoPlan, truth: pd.DataFrame, watch: Watch, exports: list[Path]
) -> list[tuple[str, str]]:
    """The demo's results on the live hours, as (item, value) rows."""
    frauds = int(truth["tx_fraud"].sum())
    rows = [
        ("live hours", f"{plan.live.start:%Y-%m-%d %H:%M} to {plan.live.end:%Y-%m-%d %H:%M} "
                       f"UTC (after {plan.history_days:g} days of history)"),
        ("transactions", f"{len(truth):,} live, {frauds:,} frauds (simulated truth)"),
    ]  # fmt: skip
    merged = live_results(store, plan, truth)
    if not merged.empty:
        labels = merged["tx_fraud"].to_numpy()
        flagged = merged["flagged"].to_numpy(bool)
        ranked = ranking_metrics(labels, merged["confidence"].to_numpy())
        alerts = alert_metrics(labels, flagged)
        caught = flagged & (labels == 1)
        rows += [
            ("scored", f"{len(merged):,}"),
            ("flagged for review", f"{int(flagged.sum()):,}"),
            ("frauds caught at the flag threshold",
             f"{int(caught.sum()):,} of {int(labels.sum()):,}"),
            ("precision of the flags", f"{alerts['precision']:.3f}"),
            ("recall of the flags", f"{alerts['recall']:.3f}"),
            ("caught, by kind of fraud", by_scenario(merged, caught)),
            ("average precision (confidence)", _number(ranked["average_precision"])),
            ("AUC ROC (confidence)", _number(ranked["auc_roc"])),
        ]  # fmt: skip
    versions = sorted(merged["model_version"].unique().tolist()) if not merged.empty else []
    for number in versions:
        version = store.collection(MODELS).find_one({"_id": number}) or {}
        rows.append(
            ("model version",
             f"v{number}: {version.get('kind', '?')} fit on {version.get('rows', 0):,} labelled "
             f"transactions ({version.get('frauds', 0):,} frauds); {version.get('decision', '')}")
        )  # fmt: skip
    rows.append(("validation", validation_line(watch.check_statuses())))
    for path in exports:
        rows += [("Excel export", str(path)), ("reviewers' workbook", workbook_line(path))]
    if not exports:
        rows.append(("Excel export", f"not written yet: {config.export_dir()}/<day>/"))
    return rows


def print_summary(rows: list[tuple[str, str]]) -> None:
    """The summary as a table on a terminal; as aligned plain lines otherwise (logs keep whole
    lines: nothing is wrapped or cut)."""
    if console.is_terminal:
        table = Table(title="fraudstream demo summary", title_justify="left", show_header=False)
        table.add_column("", style="bold")
        table.add_column("")
        for name, value in rows:
            table.add_row(escape(name), escape(value))
        console.print(table)
        return
    width = max(len(name) for name, _ in rows)
    rule = "-" * (width + 2 + max(len(value) for _, value in rows))
    lines = [rule, f"{'fraudstream demo':<{width}}  summary", rule]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    console.print("\n".join([*lines, rule]), markup=False, highlight=False, soft_wrap=True)


def by_scenario(merged: pd.DataFrame, caught: np.ndarray) -> str:
    """Frauds caught per simulated scenario, e.g. "compromised terminal 12/30"."""
    parts = []
    for scenario, name in SCENARIOS.items():
        mine = merged["tx_fraud_scenario"].to_numpy() == scenario
        if mine.any():
            parts.append(f"{name} {int((caught & mine).sum())}/{int(mine.sum())}")
    return ", ".join(parts) or "no frauds"


def workbooks_current(store: MongoStore, directory: Path) -> bool:
    """Whether the day's workbooks (``directory`` is named by the day) hold every ensemble
    result stored for the day's windows."""
    parts = read_manifest(directory)
    start = parse_utc(directory.name)
    day = TimeRange(start, start + timedelta(days=1))
    stored = store.collection(ENSEMBLE_RESULTS).count_documents({"partition_key": day.key_range()})
    return bool(parts) and exported_rows(parts)[ENSEMBLE_RESULTS] == stored


def workbook_line(directory: Path) -> str:
    """What the day's workbooks hold, from the export's manifest of its hour parts."""
    parts = read_manifest(directory)
    if not parts:
        return "no hour parts yet"
    rows = exported_rows(parts)
    return (
        f"{len(parts)} hour parts (hour-HH/): {rows['flagged_transactions']:,} flagged "
        f"transactions to review, {rows['transactions']:,} transactions, "
        f"{rows['ensemble_results']:,} ensemble results; summary.xlsx"
    )


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

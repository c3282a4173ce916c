"""Scoring and training benchmark, against raw limits measured in the same run.

Scoring: ``fraudstream.ml.scoring.score_range`` (what ``ensemble_predictions`` runs) over a
range of W 10-minute windows of N featured transactions each in MongoDB — read the features,
three models, ensemble decision, write ``model_predictions``, ``ensemble_results`` and
``flagged_transactions`` — against
- raw predict: ``predict_proba`` of the same three models on the same feature matrix in memory;
- raw I/O: ``find`` of the feature documents plus ``insert_many`` of the documents scoring writes.
Each scoring runs in a child process so its peak RSS is its own. The default cases: a week of
real-size windows (1,008 x 58, the simulator's default rate) scored as one range, as a catch-up
run does, and two large windows showing memory is bounded by the batch (20,000 rows).

Training: on 30 days of simulated history at the handbook's rate (features from the pipeline's
Spark definitions, stored with labels in MongoDB), ``train_step`` as a full retrain, then as the
hourly incremental update after one more hour of data arrived; against a raw in-memory fit of
the full retrain's rows.

Usage: python bench/score.py [--sizes 1008x58,1x50000,1x200000] [--days 30] [--tx-per-day 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fraudstream.config import StackRecord  # noqa: E402
from fraudstream.features.contract import FEATURE_COLUMNS  # noqa: E402
from fraudstream.features.history import write_features  # noqa: E402
from fraudstream.features.offline import labelled_features  # noqa: E402
from fraudstream.labels.loading import Label, store_labels  # noqa: E402
from fraudstream.ml.ensemble import EnsembleThresholds  # noqa: E402
from fraudstream.ml.models import FraudModels, TrainingParams  # noqa: E402
from fraudstream.ml.registry import ModelRegistry, ModelVersion  # noqa: E402
from fraudstream.ml.scoring import score_range  # noqa: E402
from fraudstream.ml.training import TrainingOutcome, TrainingPolicy, train_step  # noqa: E402
from fraudstream.ml.training_data import DataCut, cut_rows  # noqa: E402
from fraudstream.store.collections import SCORE_COLLECTIONS, SCORED_WINDOWS  # noqa: E402
from fraudstream.store.mongo import MongoStore  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import WINDOW, TimeRange, parse_utc  # noqa: E402

START = parse_utc("2026-06-01T12:00Z")


def synthetic(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows shaped like the handbook's (fraud ~1 %)."""
    rng = np.random.default_rng(seed)
    features = np.abs(rng.normal(size=(count, len(FEATURE_COLUMNS)))) * 10
    labels = (features[:, 0] + rng.normal(0, 3, count) > 30).astype(int)
    return features, labels


def scored_range(windows: int) -> TimeRange:
    return TimeRange(START, START + windows * WINDOW)


def prepare_scoring(store: MongoStore, windows: int, per_window: int) -> np.ndarray:
    """A promoted version trained before the range, and ``per_window`` feature documents in
    each of its ``windows`` windows."""
    registry = ModelRegistry(store)
    features, labels = synthetic(50_000, seed=1)
    models = FraudModels(FEATURE_COLUMNS, TrainingParams()).fit(features, labels)
    registry.save(
        ModelVersion(
            version=1, kind="full", parent=None, trained_from=START - timedelta(days=7),
            trained_until=START, seen_until=START, rows=len(labels),
            frauds=int(labels.sum()), feature_columns=FEATURE_COLUMNS, metrics={},
            promoted=True, decision="bench",
        ),
        models,
    )  # fmt: skip
    size = windows * per_window
    matrix, _ = synthetic(size, seed=2)
    store.collection("transaction_features").create_index("partition_key")
    keys = scored_range(windows).partition_keys()
    for start in range(0, size, 50_000):
        store.collection("transaction_features").insert_many(
            {"_id": f"t{i}", "partition_key": keys[i // per_window],
             "tx_datetime": START + (i // per_window) * WINDOW,
             "customer_id": f"c{i % 5000}", "terminal_id": f"m{i % 10000}",
             **dict(zip(FEATURE_COLUMNS, map(float, matrix[i]), strict=True))}
            for i in range(start, min(start + 50_000, size))
        )  # fmt: skip
    return matrix


def raw_limits(store: MongoStore, matrix: np.ndarray) -> dict[str, float]:
    """Seconds of the raw operations scoring is made of, on the same data."""
    models = ModelRegistry(store).load(ModelRegistry(store).latest())
    started = time.perf_counter()
    probabilities = models.predict_proba(matrix)
    predict = time.perf_counter() - started
    started = time.perf_counter()
    rows = list(
        store.collection("transaction_features").find(
            {}, ["partition_key", *FEATURE_COLUMNS], batch_size=20_000
        )
    )
    read = time.perf_counter() - started
    documents = [
        {"_id": row["_id"], "partition_key": row["partition_key"], "model_version": 1,
         "confidence": float(p), "flagged": bool(p > 0.8)}
        for row, p in zip(rows, probabilities.mean(axis=1), strict=True)
    ]  # fmt: skip
    started = time.perf_counter()
    for name in ("raw_predictions", "raw_results"):  # the two per-transaction collections
        store.collection(name).create_index("partition_key")
        store.collection(name).insert_many(documents, ordered=False)
    write = time.perf_counter() - started
    for name in ("raw_predictions", "raw_results"):
        store.collection(name).drop()
    return {"predict": predict, "read": read, "write": write}


def child(args: argparse.Namespace) -> None:
    """One scoring of the window in this process; prints seconds and peak RSS as JSON."""
    store = MongoStore.connect(args.mongo, args.database)
    store.ensure_indexes(*SCORE_COLLECTIONS, SCORED_WINDOWS)
    registry = ModelRegistry(store)
    timings = []
    for _ in range(2):  # first scoring, then a re-run replacing it
        started = time.perf_counter()
        report = score_range(store, registry, scored_range(args.windows), EnsembleThresholds())
        timings.append(time.perf_counter() - started)
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"scored": report.scored, "seconds": timings, "peak_rss_mib": peak}))


def measure_scoring(stack: StackRecord, database: str, windows: int) -> dict:
    command = [sys.executable, __file__, "--child", "--mongo", stack.mongo_uri,
               "--database", database, "--windows", str(windows)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scoring_table(stack: StackRecord, cases: list[tuple[int, int]]) -> None:
    print(
        f"\n{'windows x rows':>15} | {'raw predict/s':>13} | {'raw I/O/s':>9} | {'scoring/s':>9} | "
        f"{'re-run/s':>9} | {'vs predict':>10} | {'vs predict+I/O':>14} | {'peak RSS MiB':>12}"
    )
    print("-" * 115)
    for windows, per_window in cases:
        size = windows * per_window
        database = f"bench_score_{windows}x{per_window}"
        store = MongoStore.connect(stack.mongo_uri, database)
        matrix = prepare_scoring(store, windows, per_window)
        raw = raw_limits(store, matrix)
        measured = measure_scoring(stack, database, windows)
        assert measured["scored"] == size, measured
        store.close()
        first, rerun = measured["seconds"]
        raw_all = raw["predict"] + raw["read"] + raw["write"]
        print(
            f"{f'{windows:,} x {per_window:,}':>15} | {size / raw['predict']:13,.0f} | "
            f"{size / (raw['read'] + raw['write']):9,.0f} | {size / first:9,.0f} | "
            f"{size / rerun:9,.0f} | {raw['predict'] / first:10.2f} | "
            f"{raw_all / first:14.2f} | {measured['peak_rss_mib']:12,.0f}"
        )
    print(
        "\nvs predict = raw predict_proba time / scoring time (target >= 0.5); vs predict+I/O ="
        "\n(raw predict + raw find of the features + raw insert_many of 2 documents per row) /"
        "\nscoring time. Scoring writes 2 documents per transaction (+ flagged copies)."
    )


def checked(outcome: TrainingOutcome) -> ModelVersion:
    if outcome.version is None:
        raise SystemExit(f"training skipped: {outcome.skipped}")
    return outcome.version


def training_table(stack: StackRecord, days: int, tx_per_day: int) -> None:
    start = parse_utc("2026-03-01T00:00Z")
    end = start + timedelta(days=days, hours=12)  # the update's hour: midday, a busy one
    frame = TransactionSimulator(SimulationConfig(seed=3, tx_per_day=tx_per_day)).transactions(
        TimeRange(start, end + timedelta(hours=1))
    )
    features = labelled_features(frame, start, end + timedelta(hours=1))
    store = MongoStore.connect(stack.mongo_uri, "bench_training")
    history, new_hour = (
        features[features["tx_datetime"] < end],
        features[features["tx_datetime"] >= end],
    )

    def store_rows(rows: object) -> None:
        write_features(store, rows.drop(columns="tx_fraud"), end)
        store_labels(
            store,
            [
                Label(t, int(f))
                for t, f in zip(rows["transaction_id"], rows["tx_fraud"], strict=True)
            ],
            source="bench",
        )

    store_rows(history)
    registry, policy = ModelRegistry(store), TrainingPolicy()
    started = time.perf_counter()
    full = checked(train_step(store, registry, end, policy, full=True))
    full_seconds = time.perf_counter() - started
    # Raw: one in-memory fit of the same rows (those the version learned), read beforehand.
    rows = cut_rows(store, FEATURE_COLUMNS, DataCut(end, full.seen_until), policy.full_fit_window)
    x, y = rows[FEATURE_COLUMNS].to_numpy(np.float64), rows["tx_fraud"].to_numpy(np.int64)
    started = time.perf_counter()
    FraudModels(FEATURE_COLUMNS, policy.params).fit(x, y)
    raw_seconds = time.perf_counter() - started
    store_rows(new_hour)
    started = time.perf_counter()
    update = train_step(store, registry, end + timedelta(hours=1), policy).version
    update_seconds = time.perf_counter() - started
    store.close()
    print(f"\n{'training':>26} | {'rows':>9} | {'seconds':>8} | {'x raw fit':>9}")
    print("-" * 62)
    for name, count, seconds in (
        ("raw in-memory fit", len(rows), raw_seconds),
        (f"full retrain, {days} days", full.rows, full_seconds),
        ("hourly incremental update", update.rows, update_seconds),
    ):
        print(f"{name:>26} | {count:9,} | {seconds:8.1f} | {seconds / raw_seconds:9.2f}")
    print(
        f"\nfull retrain / raw fit = {full_seconds / raw_seconds:.2f} (target <= 1.3: it reads "
        f"its rows, fits a trial, judges it, updates it with the held-out rows and stores it); "
        f"incremental / full = {update_seconds / full_seconds:.3f}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="1008x58,1x50000,1x200000")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tx-per-day", type=int, default=10_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("mongo", "database"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    parser.add_argument("--windows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as state:
        embedded = EmbeddedStack(Path(state), preferred_ports=False)
        stack = embedded.up()
        try:
            cases = [tuple(map(int, size.split("x"))) for size in args.sizes.split(",")]
            scoring_table(stack, cases)
            training_table(stack, args.days, args.tx_per_day)
        finally:
            embedded.down()


if __name__ == "__main__":
    main()

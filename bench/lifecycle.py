"""Model lifecycle: the live scores of a hands-free catch-up against a fresh fit on the same labels.

On a fresh embedded stack with the Dagster daemon at its default intervals, a month of traffic is
published to Kafka at once and the labels of all but its last ``--test-days`` days are dropped as
a CSV in ``landing/labels/``; nobody launches anything. Once every window is scored and no run
or re-scoring is pending, the live ``confidence`` of the unlabelled days is compared on the
handbook's test set (cards known compromised removed) with:

- an offline full fit of the same ensemble (``FraudModels.fit``) on the same labels and the
  pipeline's own stored features (the labelled rows of the ``full_fit_days`` before the test days);
- a plain random forest trained with the handbook's protocol (7 days, ending 7 days before the
  test days) on the same features.

Targets (issue 13): live AP / offline AP >= 0.98; live AUC - offline AUC >= -0.01; live >= plain
forest on AUC and AP.

Usage:
  python bench/lifecycle.py                        # 30 days x 2,000 tx/day, seed 5 (~50 min)
  python bench/lifecycle.py --seed 9 --days 20
  python bench/lifecycle.py --from-csv FILE.csv    # any handbook-format CSV with TX_FRAUD
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.handbook_protocol import Protocol, scores_table, split  # noqa: E402
from fraudstream import config  # noqa: E402
from fraudstream.features.contract import FEATURE_COLUMNS  # noqa: E402
from fraudstream.ml.models import FraudModels  # noqa: E402
from fraudstream.ml.registry import ModelRegistry  # noqa: E402
from fraudstream.ml.rescoring import RescoringPolicy  # noqa: E402
from fraudstream.ml.scoring import windows_to_rescore  # noqa: E402
from fraudstream.ml.training import TrainingPolicy  # noqa: E402
from fraudstream.store import MongoStore  # noqa: E402
from fraudstream.tooling.simulator.delivery import TransactionPublisher, read_handbook_csv  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.tooling.stack.dagster_api import DagsterApi  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import TimeRange, parse_utc, partition_key, window_start  # noqa: E402

FULL_FIT_DAYS = TrainingPolicy().full_fit_window.days  # what the running system learns from


def load(args: argparse.Namespace) -> pd.DataFrame:
    if args.from_csv:
        return pd.concat(read_handbook_csv(Path(args.from_csv)), ignore_index=True)
    start = parse_utc(args.start)
    simulator = TransactionSimulator(SimulationConfig(seed=args.seed, tx_per_day=args.tx_per_day))
    return simulator.transactions(TimeRange(start, start + timedelta(days=args.days)))


def expected_counts(frame: pd.DataFrame) -> dict[str, int]:
    keys = frame["tx_datetime"].map(lambda t: partition_key(window_start(t.to_pydatetime())))
    return keys.value_counts().to_dict()


def catch_up(frame: pd.DataFrame, state: Path, test_start: datetime, timeout: float) -> dict:
    """Publishes, drops the labels, and waits until the system is done by itself."""
    first_day = frame["tx_datetime"].min().floor("D").to_pydatetime()
    os.environ["FRAUDSTREAM_STATE_DIR"] = str(state)
    os.environ["FRAUDSTREAM_PARTITION_START"] = first_day.isoformat()
    stack = EmbeddedStack(state, preferred_ports=False)
    record = stack.up(dagster=True)
    try:
        started = time.monotonic()
        with TransactionPublisher(record.kafka_bootstrap, config.kafka_topic()) as publisher:
            publisher.publish(frame.drop(columns="tx_fraud"))
        labels_dir = state / "landing" / "labels"
        labels_dir.mkdir(parents=True, exist_ok=True)
        partial = labels_dir / ".labels.csv.partial"
        labelled = frame[frame["tx_datetime"] < pd.Timestamp(test_start)]
        labelled[["transaction_id", "tx_fraud"]].rename(columns=str.upper).to_csv(
            partial, index=False
        )
        partial.rename(labels_dir / "labels.csv")
        print(f"published {len(frame):,} transactions; labels of {len(labelled):,}", flush=True)
        api = DagsterApi(record.dagster_url)
        expected = expected_counts(frame)
        store = MongoStore.connect(record.mongo_uri, config.mongo_database())
        scored_at = None
        quiet = 0
        while quiet < 3:  # three polls in a row: all scored, nothing running, nothing stale
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise SystemExit(f"not done within {timeout:.0f} s")
            time.sleep(20)
            scored = store.documents_per_window("ensemble_results", list(expected)) == expected
            if scored and scored_at is None:
                scored_at = time.monotonic() - started
            stale = windows_to_rescore(store, ModelRegistry(store), RescoringPolicy())
            active = api.active_runs()
            quiet = quiet + 1 if scored and not stale and not active else 0
            done = store.collection("ensemble_results").estimated_document_count()
            versions = store.collection("models").count_documents({})
            print(f"  {elapsed:5.0f} s: {done:,} of {len(frame):,} scored, {len(stale)} stale "
                  f"windows, {len(active)} active runs, {versions} "
                  "versions", flush=True)  # fmt: skip
        settled_at = time.monotonic() - started
        failed = api.runs(["FAILURE"])
        result = read_results(store)
        store.close()
        return result | {"scored_s": scored_at, "settled_s": settled_at, "failed_runs": len(failed)}
    finally:
        stack.down()


def read_results(store: MongoStore) -> dict:
    features = pd.DataFrame(list(store.collection("transaction_features").find()))
    features["tx_datetime"] = pd.to_datetime(features["tx_datetime"], utc=True)
    results = pd.DataFrame(
        list(store.collection("ensemble_results").find({}, {"confidence": 1, "model_version": 1}))
    ).set_index("_id")
    registry = ModelRegistry(store)
    versions = [
        registry.get(d["_id"])
        for d in store.collection("models").find({}, {"_id": 1}).sort("_id", 1)
    ]
    return {"features": features, "results": results, "versions": versions}


def evaluate(frame: pd.DataFrame, run: dict, test_start: datetime, test_days: int) -> None:
    features = run["features"].drop(columns="transaction_id", errors="ignore")
    features = features.rename(columns={"_id": "transaction_id"})
    truth = frame.set_index("transaction_id")["tx_fraud"]
    features["tx_fraud"] = features["transaction_id"].map(truth).astype(int)
    test_start_ts = pd.Timestamp(test_start)
    # The offline refit: the labelled rows of the full fit's window before the test days.
    window = features[
        (features["tx_datetime"] < test_start_ts)
        & (features["tx_datetime"] >= test_start_ts - pd.Timedelta(days=FULL_FIT_DAYS))
    ]
    offline = FraudModels(list(FEATURE_COLUMNS)).fit(
        window[FEATURE_COLUMNS].to_numpy(float), window["tx_fraud"].to_numpy()
    )
    protocol = Protocol(test_start - timedelta(days=14), test_days=test_days)
    train, test = split(features, protocol)
    forest = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
    forest.fit(train[FEATURE_COLUMNS].to_numpy(float), train["tx_fraud"].to_numpy())
    x_test = test[FEATURE_COLUMNS].to_numpy(float)
    live = test["transaction_id"].map(run["results"]["confidence"]).to_numpy(float)
    unscored = int((~np.isfinite(live)).sum())
    live = np.nan_to_num(live)  # an unscored transaction ranks last (and is reported below)
    table = scores_table(
        test,
        {
            "live, hands-free": live,
            "offline full refit, same labels": offline.predict_proba(x_test).mean(axis=1),
            "plain RF, handbook protocol": forest.predict_proba(x_test)[:, 1],
        },
    )
    versions = run["versions"]
    scored_by = Counter(
        test["transaction_id"].map(run["results"]["model_version"]).fillna(0).astype(int)
    )
    print(
        f"\n{len(frame):,} transactions, {int(frame['tx_fraud'].sum()):,} frauds; test set "
        f"{len(test):,} ({int(test['tx_fraud'].sum())} frauds) from {test_start:%Y-%m-%d}"
    )
    print(
        f"catch-up: every window scored after {run['scored_s']:.0f} s, settled (no run, no "
        f"stale window) after {run['settled_s']:.0f} s; {run['failed_runs']} failed runs"
    )
    print(f"versions: {len(versions)}, full fits {sum(v.kind == 'full' for v in versions)}, "
          f"promoted {sum(v.promoted for v in versions)}; test set scored by "
          + ", ".join(f"v{n} ({versions[n - 1].kind}, data until "
                      f"{versions[n - 1].data_until:%m-%d %H:%M}): {c}"
                      for n, c in sorted(scored_by.items()) if n))  # fmt: skip
    for v in versions:
        print(f"  v{v.version:<3} {v.kind:11} until {v.trained_until:%m-%d %H:%M} rows "
              f"{v.rows:>6} frauds {v.frauds:>5} {'P' if v.promoted else '-'}  {v.fit_reason[:60]}"
              f" | {v.decision[:90]}")  # fmt: skip
    print("\n| score | AUC ROC | AP | CP@100 |\n|---|---|---|---|")
    for name, row in table.iterrows():
        print(f"| {name} | {row['auc_roc']:.3f} | {row['average_precision']:.3f} | "
              f"{row['card_precision@100']:.3f} |")  # fmt: skip
    live_row, refit, forest_row = table.iloc[0], table.iloc[1], table.iloc[2]
    ratio = live_row["average_precision"] / refit["average_precision"]
    checks = [
        ("live AP / offline refit AP >= 0.98", ratio, ratio >= 0.98),
        ("live AUC - offline refit AUC >= -0.01",
         live_row["auc_roc"] - refit["auc_roc"], live_row["auc_roc"] - refit["auc_roc"] >= -0.01),
        ("live AUC - plain RF AUC >= 0", live_row["auc_roc"] - forest_row["auc_roc"],
         live_row["auc_roc"] >= forest_row["auc_roc"]),
        ("live AP - plain RF AP >= 0", live_row["average_precision"]
         - forest_row["average_precision"],
         live_row["average_precision"] >= forest_row["average_precision"]),
    ]  # fmt: skip
    print("\n| target | value | |\n|---|---|---|")
    for name, value, passed in checks:
        print(f"| {name} | {value:+.3f} | {'PASS' if passed else 'MISS'} |")
    if unscored:
        print(f"\n{unscored} test transactions have no live score")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-csv")
    parser.add_argument("--start", default="2026-09-01T00:00Z")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tx-per-day", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--test-days", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    args = parser.parse_args()
    frame = load(args)
    end_day = frame["tx_datetime"].max().floor("D").to_pydatetime() + timedelta(days=1)
    test_start = end_day - timedelta(days=args.test_days)
    with tempfile.TemporaryDirectory(prefix="fraudstream-lifecycle-") as state:
        run = catch_up(frame, Path(state), test_start, args.timeout)
    evaluate(frame, run, test_start, args.test_days)


if __name__ == "__main__":
    main()

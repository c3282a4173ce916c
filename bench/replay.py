"""Replay: a handbook-format stream through the whole pipeline, then the handbook's comparison.

Publishes the transactions to Kafka on a fresh embedded stack, drops the labels of all but the last
``--test-days`` days as a CSV in ``landing/labels/``, and materializes the graph in order
(transactions, labels, features, models, predictions). Then, on the unlabelled days, it compares
the ensemble's stored ``confidence`` with a plain random forest trained with the handbook's
protocol (7 days of training ending a 7-day delay before the test days) on the same features —
both on the handbook's test set (cards known compromised removed).

Usage:
  python bench/replay.py                       # simulated, handbook-sized, seed 7 (~6 min)
  python bench/replay.py --from-csv FILE.csv   # any handbook-format CSV with TX_FRAUD
  python bench/replay.py --days 60 --tx-per-day 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.handbook_protocol import Protocol, scores_table, split  # noqa: E402
from fraudstream.config import StackRecord  # noqa: E402
from fraudstream.store.mongo import MongoStore  # noqa: E402
from fraudstream.tooling.simulator.delivery import TransactionPublisher, read_handbook_csv  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import TimeRange, parse_utc  # noqa: E402


def load(args: argparse.Namespace) -> pd.DataFrame:
    if args.from_csv:
        return pd.concat(read_handbook_csv(Path(args.from_csv)), ignore_index=True)
    start = parse_utc("2018-06-01T00:00Z")
    simulator = TransactionSimulator(SimulationConfig(seed=args.seed, tx_per_day=args.tx_per_day))
    return simulator.transactions(TimeRange(start, start + timedelta(days=args.days)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-csv")
    parser.add_argument("--days", type=int, default=75)
    parser.add_argument("--tx-per-day", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--test-days", type=int, default=7)
    args = parser.parse_args()
    frame = load(args)
    first_day = frame["tx_datetime"].min().floor("D").to_pydatetime()
    end_day = frame["tx_datetime"].max().floor("D").to_pydatetime() + timedelta(days=1)
    test_start = end_day - timedelta(days=args.test_days)
    with tempfile.TemporaryDirectory(prefix="fraudstream-replay-") as state:
        os.environ["FRAUDSTREAM_STATE_DIR"] = state
        os.environ["FRAUDSTREAM_PARTITION_START"] = first_day.isoformat()
        embedded = EmbeddedStack(Path(state))
        stack = embedded.up()
        try:
            run(frame, stack, Path(state), first_day, test_start, end_day, args.test_days)
        finally:
            embedded.down()


def run(
    frame: pd.DataFrame,
    stack: StackRecord,
    state: Path,
    first_day: datetime,
    test_start: datetime,
    end_day: datetime,
    test_days: int,
) -> None:
    import dagster as dg  # after FRAUDSTREAM_PARTITION_START is set: partitions read it

    from definitions import defs
    from pipeline.partitions import ten_minute_partitions

    timings = {}
    started = time.monotonic()
    with TransactionPublisher(stack.kafka_bootstrap, "transactions") as publisher:
        publisher.publish(frame)
    labelled = frame[frame["tx_datetime"] < test_start]
    labels_dir = state / "landing" / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    partial = labels_dir / ".labels.csv.partial"
    labelled.rename(columns=str.upper).to_csv(partial, index=False)
    past = time.time() - 60
    os.utime(partial, (past, past))
    partial.rename(labels_dir / "labels.csv")
    timings["publish"] = time.monotonic() - started

    instance = dg.DagsterInstance.ephemeral()

    def window_range(start: datetime, end: datetime) -> dict[str, str]:
        key = ten_minute_partitions.get_partition_key_for_timestamp
        return {
            "dagster/asset_partition_range_start": key(start.timestamp()),
            "dagster/asset_partition_range_end": key((end - timedelta(minutes=10)).timestamp()),
        }

    all_windows = window_range(first_day, end_day)
    test_windows = window_range(test_start, end_day)
    assets = [*defs.assets, *defs.asset_checks]
    resources = defs.resources

    def materialize(name: str, **kwargs: object) -> None:
        step = time.monotonic()
        result = dg.materialize(
            assets, selection=[name], instance=instance, resources=resources, **kwargs
        )
        assert result.success, name
        timings[name] = time.monotonic() - step

    materialize("transactions", tags=all_windows)
    materialize("labels")
    materialize("transaction_features", tags=all_windows)
    last_hour = (test_start - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
    materialize("fraud_models", partition_key=last_hour)
    materialize("ensemble_predictions", tags=test_windows)

    store = MongoStore.connect(stack.mongo_uri, "fraudstream")
    features = pd.DataFrame(list(store.collection("transaction_features").find()))
    confidence = {
        doc["_id"]: doc["confidence"]
        for doc in store.collection("ensemble_results").find({}, {"confidence": 1})
    }
    version = store.collection("models").find_one(sort=[("_id", -1)])
    store.close()
    features = features.drop(columns="transaction_id").rename(columns={"_id": "transaction_id"})
    features["tx_datetime"] = pd.to_datetime(features["tx_datetime"], utc=True)
    truth = frame.set_index("transaction_id")["tx_fraud"]
    features["tx_fraud"] = features["transaction_id"].map(truth).astype(int)

    from sklearn.ensemble import RandomForestClassifier

    from fraudstream.features.contract import FEATURE_COLUMNS

    protocol = Protocol(test_start - timedelta(days=14), test_days=test_days)
    train, test = split(features, protocol)
    forest = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
    forest.fit(train[FEATURE_COLUMNS].to_numpy(float), train["tx_fraud"].to_numpy())
    scores = {
        "ensemble confidence (pipeline)": test["transaction_id"].map(confidence).to_numpy(float),
        "plain RF, handbook protocol": forest.predict_proba(test[FEATURE_COLUMNS].to_numpy(float))[
            :, 1
        ],
    }
    table = scores_table(test, scores)
    print(
        f"\n{len(frame):,} transactions {first_day:%Y-%m-%d}..{end_day:%Y-%m-%d}; labels for "
        f"{len(labelled):,} before {test_start:%Y-%m-%d}; model v{version['_id']} "
        f"({version['kind']}, {version['rows']:,} rows); test set {len(test):,} "
        f"({int(test['tx_fraud'].sum())} frauds)"
    )
    print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + "\n")
    print(f"{'score':34} {'AUC ROC':>8} {'AP':>8} {'CP@100':>8}")
    for name, row in table.iterrows():
        print(f"{name:34} {row['auc_roc']:8.3f} {row['average_precision']:8.3f} "
              f"{row['card_precision@100']:8.3f}")  # fmt: skip
    ours, theirs = table.iloc[0], table.iloc[1]
    for metric in ("auc_roc", "average_precision"):
        verdict = "PASS" if ours[metric] >= theirs[metric] else "MISS"
        print(f"{verdict}  ensemble {metric} >= plain RF")


if __name__ == "__main__":
    main()

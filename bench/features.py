"""Features benchmark: the `transaction_features` asset against a raw single pass, with history.

On a fresh embedded stack, ``--days`` of simulated transactions (and their labels) are stored in
MongoDB. Then, through the Dagster asset (``materialize`` with a range's tags, local Spark):

- a range of the last ``--range-days`` days (a catch-up or backfill: the scan mode), against the
  raw single pass over the same data: ``find`` of the range and its 37-day lookback once, plus
  ``insert_many`` of as many documents as the asset writes (what no implementation can avoid);
- real-size windows: single 10-minute windows of the last day's midday (the lookup mode), each
  a run of its own as the live pipeline makes them, against the same raw pass over their rows.

Rows read per output row come from the asset's metadata. Spark's start is paid once, before
the measurements (a warm session, as a long-lived engine gives each run).

Usage: python bench/features.py [--days 40] [--tx-per-day 5000] [--range-days 30] [--windows 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fraudstream.features.contract import lookback_days  # noqa: E402
from fraudstream.store.mongo import MongoStore  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import WINDOW, TimeRange, parse_utc, partition_key  # noqa: E402
from pipeline.assets.features import transaction_features  # noqa: E402
from pipeline.keys import RANGE_END, RANGE_START  # noqa: E402
from pipeline.resources import MongoResource, spark_resource  # noqa: E402

START = parse_utc("2026-01-01T00:00Z")


def store_history(store: MongoStore, days: int, tx_per_day: int) -> int:
    history = TimeRange(START, START + timedelta(days=days))
    frame = TransactionSimulator(SimulationConfig(seed=4, tx_per_day=tx_per_day)).transactions(
        history
    )
    store.ensure_indexes()
    documents = [
        {"_id": row.transaction_id, "tx_datetime": row.tx_datetime.to_pydatetime(),
         "customer_id": row.customer_id, "terminal_id": row.terminal_id,
         "tx_amount": float(row.tx_amount), "partition_key": partition_key(row.tx_datetime)}
        for row in frame.itertuples()
    ]  # fmt: skip
    store.collection("transactions").insert_many(documents, ordered=False)
    store.collection("labels").insert_many(
        {"_id": row.transaction_id, "tx_fraud": int(row.tx_fraud),
         "reported_at": row.tx_datetime.to_pydatetime() + timedelta(days=3)}
        for row in frame.itertuples()
    )  # fmt: skip
    return len(frame)


def through_asset(resources: dict, time_range: TimeRange) -> tuple[float, dict]:
    last = partition_key(time_range.end - WINDOW)
    started = time.perf_counter()
    result = dg.materialize(
        [transaction_features],
        resources=resources,
        tags={RANGE_START: partition_key(time_range.start), RANGE_END: last},
    )
    seconds = time.perf_counter() - started
    metadata = result.asset_materializations_for_node("transaction_features")[0].metadata
    return seconds, {name: value.value for name, value in metadata.items()}


def raw_pass(
    store: MongoStore, time_range: TimeRange, outputs: int, scan: bool
) -> tuple[float, int]:
    """The least a single pass reads — the range and its lookback once (``scan``), or the
    range's rows and their customers' and terminals' lookback — and an ``insert_many`` of
    ``outputs`` documents of the features' size. Returns seconds and rows found."""
    span = {"$gte": time_range.start - timedelta(days=lookback_days()), "$lt": time_range.end}
    started = time.perf_counter()
    transactions = store.collection("transactions")
    if scan:
        rows = list(transactions.find({"tx_datetime": span}))
    else:
        own = list(
            transactions.find({"tx_datetime": {"$gte": time_range.start, "$lt": time_range.end}})
        )
        found = {row["_id"]: row for row in own}
        for entity in ("customer_id", "terminal_id"):
            ids = list({row[entity] for row in own})
            found |= {
                r["_id"]: r for r in transactions.find({entity: {"$in": ids}, "tx_datetime": span})
            }
        rows = list(found.values())
    documents = [
        {"_id": row["_id"], "partition_key": row["partition_key"],
         **{f"feature_{i}": float(i) for i in range(20)}}
        for row in rows[:outputs]
    ]  # fmt: skip
    if documents:
        store.collection("raw_features").insert_many(documents, ordered=False)
    seconds = time.perf_counter() - started
    store.collection("raw_features").drop()
    return seconds, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--tx-per-day", type=int, default=5_000)
    parser.add_argument("--range-days", type=int, default=30)
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as state:
        embedded = EmbeddedStack(Path(state), preferred_ports=False)
        stack = embedded.up()
        try:
            store = MongoStore.connect(stack.mongo_uri, "bench_features")
            stored = store_history(store, args.days, args.tx_per_day)
            resources = {
                "mongo": MongoResource(uri=stack.mongo_uri, database="bench_features"),
                "spark": spark_resource(),
            }
            end = START + timedelta(days=args.days)
            warm = TimeRange(end - 3 * WINDOW, end - 2 * WINDOW)
            through_asset(resources, warm)  # Spark's start, paid once
            noon = end - timedelta(hours=12)  # real-size windows: the last day's busy hours
            cases = [
                (f"{args.range_days} days", TimeRange(end - timedelta(days=args.range_days), end))
            ]
            cases += [
                (f"window {i + 1}", TimeRange(noon + i * WINDOW, noon + (i + 1) * WINDOW))
                for i in range(args.windows)
            ]
            print(f"\n{stored:,} transactions stored over {args.days} days\n")
            print(f"{'range':>10} | {'outputs':>8} | {'mode':>6} | {'tasks':>5} | "
                  f"{'read/out':>8} | {'raw read/out':>12} | {'asset s':>8} | {'raw s':>6} | "
                  f"{'asset/raw':>9}")  # fmt: skip
            print("-" * 96)
            for name, time_range in cases:
                seconds, metadata = through_asset(resources, time_range)
                outputs = metadata["transactions"]
                scan = metadata["read_mode"] == "scan"
                raw_seconds, raw_rows = raw_pass(store, time_range, outputs, scan)
                print(f"{name:>10} | {outputs:8,} | {metadata['read_mode']:>6} | "
                      f"{metadata['read_tasks']:5} | "
                      f"{metadata['rows_read_per_transaction']:8.2f} | "
                      f"{raw_rows / max(outputs, 1):12.2f} | {seconds:8.2f} | {raw_seconds:6.2f} | "
                      f"{seconds / raw_seconds:9.1f}")  # fmt: skip
            print(
                "\nread/out: rows the asset read per feature row written; raw read/out: rows a"
                "\nsingle pass must read per output row (scan: the range and its 37-day lookback;"
                "\nlookup: the window's rows and their entities' lookback)."
                "\nasset/raw: the asset's wall time (run, Spark job, writes) over the raw pass."
            )
            store.close()
        finally:
            embedded.down()


if __name__ == "__main__":
    main()

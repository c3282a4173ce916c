"""Ingestion benchmark: one 10-minute window of N transactions, Kafka → MongoDB, against the raw
limits measured in the same run on the same machine:

- raw read:   kafka-python reading the same records (no parsing), same fetch settings;
- raw insert: pymongo ``insert_many`` of the same documents, 10k per call, into a bare collection
              and into one with the indexes ingestion maintains;
- ingestion:  ``ingest.transactions.ingest_range`` (read, parse, validate, write, ledger, commit),
              first run (inserts) and re-run (compare, write nothing unchanged);
- peak RSS of the ingestion for each size (a child process per measurement, plus its workers).

Target: ingestion >= 0.5 x min(raw read, raw insert); peak RSS bounded by the batch size, not the
window size (<= 1 GiB at 1M records).

Usage: python bench/ingest.py [--sizes 200000,1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fraudstream.config import StackRecord  # noqa: E402
from fraudstream.ingest.kafka_admin import DEFAULT_PARTITIONS, ensure_topic  # noqa: E402
from fraudstream.ingest.kafka_source import SCAN_OPTIONS, KafkaSettings, TopicReader  # noqa: E402
from fraudstream.ingest.transactions import PARALLEL_MIN_RECORDS, ingest_range  # noqa: E402
from fraudstream.store.mongo import MongoStore  # noqa: E402
from fraudstream.tooling.stack.embedded import EmbeddedStack  # noqa: E402
from fraudstream.windows import TimeRange, parse_utc  # noqa: E402

WINDOW = TimeRange(parse_utc("2026-06-01T12:00Z"), parse_utc("2026-06-01T12:10Z"))
LATENESS = timedelta(minutes=5)


def records(count: int, seed: int = 0) -> list[tuple[bytes, bytes, int]]:
    """(key, value, timestamp_ms) of ``count`` contract-shaped transactions inside the window."""
    rng = np.random.default_rng(seed)
    offsets_ms = np.sort(rng.integers(0, 600_000, size=count))
    customers = rng.integers(0, 50_000, size=count)
    amounts = np.round(rng.gamma(2.0, 30.0, size=count), 2)
    start_ms = WINDOW.start_ms
    out = []
    for i in range(count):
        ms = start_ms + int(offsets_ms[i])
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
        customer = f"C{customers[i]:05d}"
        value = orjson.dumps(
            {
                "transaction_id": f"b{seed}-{i:07d}",
                "tx_datetime": when,
                "customer_id": customer,
                "terminal_id": f"T{(customers[i] * 7 + i) % 100_000:05d}",
                "tx_amount": float(amounts[i]),
            }
        )
        out.append((customer.encode(), value, ms))
    return out


def publish(bootstrap: str, topic: str, batch: list[tuple[bytes, bytes, int]]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=512 * 1024)
    started = time.perf_counter()
    for key, value, ms in batch:
        producer.send(topic, key=key, value=value, timestamp_ms=ms)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def raw_read(bootstrap: str, topic: str, count: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **SCAN_OPTIONS)
    partitions = [
        __import__("kafka").TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)
    ]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    started, seen = time.perf_counter(), 0
    while seen < count:
        for batch in consumer.poll(timeout_ms=1000).values():
            seen += len(batch)
    elapsed = time.perf_counter() - started
    consumer.close()
    return count / elapsed


def raw_insert(mongo_uri: str, batch: list[tuple[bytes, bytes, int]]) -> tuple[float, float]:
    """insert_many rates of the same documents: into a bare collection, and into one with the
    indexes ingestion maintains. Documents are built per call of 10k (not timed)."""
    rates = []
    for indexed in (False, True):
        store = MongoStore.connect(mongo_uri, "bench_raw")
        store.client.drop_database("bench_raw")
        if indexed:
            store.ensure_indexes()  # the collection exactly as ingestion writes to it
        collection, elapsed = store.collection("transactions"), 0.0
        for start in range(0, len(batch), 10_000):
            documents = [
                _document(value, offset, ms)
                for offset, (_, value, ms) in enumerate(batch[start : start + 10_000], start)
            ]
            began = time.perf_counter()
            collection.insert_many(documents, ordered=False)
            elapsed += time.perf_counter() - began
        rates.append(len(batch) / elapsed)
        store.client.drop_database("bench_raw")
        store.close()
    return rates[0], rates[1]


def _document(value: bytes, offset: int, ms: int) -> dict:
    """The document ingestion writes for a record (same fields and types)."""
    fields = orjson.loads(value)
    return {
        "_id": fields["transaction_id"],
        **fields,
        "tx_datetime": parse_utc(fields["tx_datetime"]),
        "partition_key": "2026-06-01-12:00",
        "source": "kafka",
        "kafka": {"topic": "t", "partition": 0, "offset": offset, "timestamp": ms},
    }


def child(args: argparse.Namespace) -> None:
    """One ingestion in this process; prints its numbers and peak RSS as JSON."""
    settings = KafkaSettings(args.bootstrap, args.topic, f"bench-{args.topic}")
    store = MongoStore.connect(args.mongo, args.database)
    store.ensure_indexes()
    results = {}
    for run in ("first", "rerun"):
        with TopicReader(settings, max_disorder=LATENESS) as reader:
            report = ingest_range(
                reader,
                store,
                WINDOW,
                allowed_lateness=LATENESS,
                run_id=f"bench-{run}",
                workers=args.workers,
            )
        results[run] = {"transactions": report.transactions, "seconds": report.duration_s}
    # VmHWM, not ru_maxrss, for this process: Linux carries ru_maxrss over from the parent
    # across fork + exec. Worker processes (reaped children) add their peak; for them ru_maxrss
    # is an upper bound.
    status = Path("/proc/self/status").read_text()
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (args.workers > 1)
    results["peak_rss_mib"] = (int(status.split("VmHWM:")[1].split()[0]) + workers_peak) / 1024
    store.close()
    print(json.dumps(results))


def measure_ingestion(stack: StackRecord, topic: str, database: str, workers: int) -> dict:
    command = [
        sys.executable, __file__, "--child",
        "--bootstrap", stack.kafka_bootstrap, "--mongo", stack.mongo_uri,
        "--topic", topic, "--database", database, "--workers", str(workers),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--workers", type=int, default=2, help="ingestion processes")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("bootstrap", "mongo", "topic", "database"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="fraudstream-bench-") as state:
        embedded = EmbeddedStack(Path(state), preferred_ports=False)
        stack = embedded.up()
        try:
            run(stack, sizes, args.workers)
        finally:
            embedded.down()


def run(stack: StackRecord, sizes: list[int], workers: int) -> None:
    rows = []
    for size in sizes:
        topic = f"bench-{size}"
        ensure_topic(stack.kafka_bootstrap, topic, DEFAULT_PARTITIONS)
        batch = records(size)
        publish(stack.kafka_bootstrap, topic, batch)
        read_rate = raw_read(stack.kafka_bootstrap, topic, size)
        insert_rates = raw_insert(stack.mongo_uri, batch)
        del batch
        measured = measure_ingestion(stack, topic, f"bench_{size}", workers)
        assert measured["first"]["transactions"] == size, measured
        rows.append((size, read_rate, insert_rates, measured))
    header = (
        f"{'records':>9} | {'raw read/s':>10} | {'raw insert/s':>12} | {'indexed/s':>9} | "
        f"{'ingest/s':>9} | {'re-run/s':>9} | {'ratio':>5} | {'bare':>5} | {'peak RSS MiB':>12}"
    )
    print()
    print(header)
    print("-" * len(header))
    for size, read_rate, insert_rates, measured in rows:
        first = size / measured["first"]["seconds"]
        rerun = size / measured["rerun"]["seconds"]
        bare, indexed = insert_rates
        cells = [
            f"{bare:,.0f}",
            f"{indexed:,.0f}",
            f"{first / min(read_rate, indexed):.2f}",
            f"{first / min(read_rate, bare):.2f}",
        ]
        print(
            f"{size:>9,} | {read_rate:10,.0f} | {cells[0]:>12} | {cells[1]:>9} | {first:9,.0f} | "
            f"{rerun:9,.0f} | {cells[2]:>5} | {cells[3]:>5} | {measured['peak_rss_mib']:12,.0f}"
        )
    print()
    print("raw insert/s: insert_many into a bare collection; indexed/s: into a collection with")
    print(
        "the indexes MongoStore.ensure_indexes creates (partition key, time, customer, terminal)."
    )
    print(
        "ratio = ingest / min(raw read, indexed insert); bare = ingest / min(raw read, raw insert)."
    )
    print(f"Ingestion splits ranges of {PARALLEL_MIN_RECORDS:,}+ records over {workers} processes.")
    print("Target: ratio >= 0.5. Peak RSS: the ingesting processes (Python and clients), summed.")


if __name__ == "__main__":
    main()

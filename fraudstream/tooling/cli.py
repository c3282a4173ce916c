"""The ``fraudstream`` command line (contract: docs/contracts.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from fraudstream import config
from fraudstream.config import ServiceUnavailable
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import KafkaSettings, TopicReader, records_behind
from fraudstream.ingest.lag import emptied_partitions
from fraudstream.store import MongoStore, redacted
from fraudstream.store.collections import INGESTED_WINDOWS
from fraudstream.tooling.demo import DemoSettings, run_demo
from fraudstream.tooling.simulator.delivery import TransactionPublisher, deliver, read_handbook_csv
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.tooling.stack.binaries import MissingBinary
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.windows import TimeRange, parse_utc

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
Handler = Callable[[argparse.Namespace], int]


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``2h`` or ``7d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 2h or 7d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def moment(text: str) -> datetime:
    try:
        return parse_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date-time (e.g. 2026-11-23T08:00:00Z)"
        ) from None


def _state_dir(args: argparse.Namespace) -> Path:
    return (args.state_dir or config.state_dir()).absolute()


def cmd_up(args: argparse.Namespace) -> int:
    stack = EmbeddedStack(_state_dir(args))
    started = time.monotonic()
    record = stack.up(dagster=not args.no_dagster, postgres=args.postgres)
    print(f"fraudstream stack is up in {stack.state_dir} ({time.monotonic() - started:.1f}s)")
    print(f"  kafka      {record.kafka_bootstrap}  (topic {config.kafka_topic()})")
    print(f"  mongodb    {redacted(record.mongo_uri or '')}  (password in the state dir)")
    print(f"  label API  {record.label_api_url}")
    if record.dagster_url:
        print(f"  dagster    {record.dagster_url}  (webserver + daemon; sensors and automation on)")
        print(f"  storage    {record.dagster_storage or 'SQLite in the state dir'}")
    print("Use `eval $(fraudstream env)` to point other programs at it.")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    directory = _state_dir(args)
    record = config.StackRecord.load(directory)
    if record is None:
        print(f"no stack in {directory}: run `fraudstream up` first", file=sys.stderr)
        return 1
    print(f"export FRAUDSTREAM_STATE_DIR={directory}")
    for name, value in (
        ("KAFKA_BOOTSTRAP", record.kafka_bootstrap),
        ("MONGO_URI", record.mongo_uri),
        ("LABEL_API_URL", record.label_api_url),
        ("SPARK_REMOTE", record.spark_remote),
    ):
        if value:
            print(f"export FRAUDSTREAM_{name}={value}")
    print(f"export FRAUDSTREAM_KAFKA_TOPIC={config.kafka_topic()}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = EmbeddedStack(_state_dir(args))
    statuses = stack.status()
    for status in statuses:
        print(f"{'ok  ' if status.healthy else 'DOWN'}  {status.name:<20} {status.detail}")
    healthy = all(s.healthy for s in statuses)
    if healthy:
        _print_lag()
    return 0 if healthy else 1


def _print_lag() -> None:
    settings = _kafka_settings()
    with TopicReader(settings, max_disorder=config.allowed_lateness()) as reader:
        extents, committed = reader.extents(), reader.committed()
    print(f"topic {settings.topic}, group {settings.group_id}:")
    behind = records_behind(extents, committed)
    for partition, extent in sorted(extents.items()):
        done = committed.get(partition)
        print(
            f"  partition {partition}: offsets [{extent.start}, {extent.end}) "
            f"committed {done if done is not None else '-'} lag {behind[partition]}"
        )
    store = MongoStore.connect(config.mongo_uri(), config.mongo_database())
    try:
        emptied = emptied_partitions(extents, store.topic_high_water(settings.topic))
        newest = store.collection(INGESTED_WINDOWS).find_one(sort=[("_id", -1)])
    finally:
        store.close()
    if emptied:
        after = f"after window {newest['_id']}" if newest else "not ingested yet"
        print(
            f"WARNING: partition(s) {emptied} end below offsets already ingested: the topic was "
            f"re-created or the broker lost its memory. Windows {after} whose records were not "
            "ingested can no longer be read from Kafka (their runs fail saying so): load them "
            "as batch files in landing/transactions/."
        )


def cmd_down(args: argparse.Namespace) -> int:
    stopped = EmbeddedStack(_state_dir(args)).down()
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _kafka_settings() -> KafkaSettings:
    return KafkaSettings(config.kafka_bootstrap(), config.kafka_topic(), config.kafka_group_id())


def cmd_simulate(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if args.from_csv:
        frames = read_handbook_csv(args.from_csv)
        if args.start or args.end:
            frames = _clip(frames, args.start, args.end)
    else:
        if not (args.start and args.end):
            print("simulate needs --start and --end (or --from-csv FILE)", file=sys.stderr)
            return 2
        simulator = TransactionSimulator(
            SimulationConfig(seed=args.seed, tx_per_day=args.tx_per_day)
        )
        frames = simulator.days(TimeRange(args.start, args.end))
    settings = _kafka_settings()
    ensure_topic(settings.bootstrap_servers, settings.topic)
    started = time.monotonic()
    with TransactionPublisher(settings.bootstrap_servers, settings.topic) as publisher:
        report = deliver(frames, publisher, state_dir, args.label_delay)
    elapsed = time.monotonic() - started
    print(
        f"published {report.transactions} transactions ({report.frauds} fraudulent) to "
        f"{settings.topic} in {elapsed:.1f}s; event time {report.first_event} .. "
        f"{report.last_event}"
    )
    print(
        f"labels: {report.labels_in_files} already reported, in "
        f"{len(report.label_files)} file(s) under {state_dir / 'landing' / 'labels'}; "
        f"{report.labels_in_feed} queued on the label API feed (each served from its report time)"
    )
    return 0


def _clip(
    frames: Iterable[pd.DataFrame], start: datetime | None, end: datetime | None
) -> Iterator[pd.DataFrame]:
    for frame in frames:
        keep = frame["tx_datetime"].notna()
        if start:
            keep &= frame["tx_datetime"] >= start
        if end:
            keep &= frame["tx_datetime"] < end
        yield frame.loc[keep].reset_index(drop=True)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = DemoSettings(hours=args.hours, tx_per_day=args.tx_per_day, seed=args.seed)
    return run_demo(_state_dir(args), settings, exit_after=args.exit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.add_argument(
            "--state-dir", type=Path, default=None, help="default: .fraudstream/"
        )
        sub_parser.set_defaults(handler=handler)
        return sub_parser

    up = command("up", cmd_up, "start the embedded services (idempotent)")
    up.add_argument("--no-dagster", action="store_true", help="do not start Dagster")
    up.add_argument(
        "--postgres",
        action="store_true",
        help="Dagster's storage in a PostgreSQL server of the stack (the machine's initdb/pg_ctl) "
        "instead of SQLite",
    )
    command("env", cmd_env, "print export lines for the running stack (with its MongoDB login)")
    command("status", cmd_status, "health of every service and the topic's lag")
    command("down", cmd_down, "stop every service of the stack")
    simulate = command("simulate", cmd_simulate, "publish transactions and deliver their labels")
    simulate.add_argument("--start", type=moment, help="first event time (ISO-8601)")
    simulate.add_argument("--end", type=moment, help="end of event time, exclusive (ISO-8601)")
    simulate.add_argument("--tx-per-day", type=int, default=10_000)
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--from-csv", type=Path, help="replay a handbook-format CSV instead")
    simulate.add_argument(
        "--label-delay", type=duration, default=timedelta(minutes=30),
        help="mean delay before a label is reported (e.g. 30m, 7d); default 30m",
    )  # fmt: skip
    demo = command("demo", cmd_demo, "the whole system, hands-free, on simulated data")
    demo.add_argument("--hours", type=float, default=3.0, help="hours of history (default 3)")
    demo.add_argument("--tx-per-day", type=int, default=40_000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--exit", action="store_true", help="stop everything after the summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ServiceUnavailable, MissingBinary, TimeoutError, ValueError) as error:
        print(f"fraudstream {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The ``fraudstream`` command line (contract: docs/contracts.md)."""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import requests
from kafka.errors import KafkaError
from rich.markup import escape
from rich.table import Table

from fraudstream import config
from fraudstream.config import ServiceUnavailable
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.ingest.kafka_source import (
    KafkaSettings,
    TopicNotFound,
    TopicReader,
    records_behind,
)
from fraudstream.ingest.lag import emptied_partitions
from fraudstream.store import MongoStore, PyMongoError, redacted
from fraudstream.store.collections import INGESTED_WINDOWS
from fraudstream.tooling import doctor
from fraudstream.tooling.demo import DemoSettings, run_demo
from fraudstream.tooling.simulator.delivery import TransactionPublisher, deliver, read_handbook_csv
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.tooling.stack.binaries import MissingBinary
from fraudstream.tooling.stack.dagster_api import DagsterApiError
from fraudstream.tooling.stack.embedded import EmbeddedStack
from fraudstream.tooling.terminal import console, error_console, prerequisites_met, start_stack
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
    if not prerequisites_met(stack.state_dir, spark=not args.no_dagster):
        return 1
    started = time.monotonic()
    record = start_stack(stack, dagster=not args.no_dagster, postgres=args.postgres)
    console.print(
        f"[bold green]fraudstream stack is up[/] in {stack.state_dir} "
        f"({time.monotonic() - started:.1f}s)"
    )
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_row("kafka", record.kafka_bootstrap, f"topic {config.kafka_topic()}")
    table.add_row("mongodb", redacted(record.mongo_uri or ""), "password in the state dir")
    table.add_row("label API", record.label_api_url, "")
    if record.dagster_url:
        table.add_row("dagster", record.dagster_url, "webserver + daemon; sensors, automation on")
        table.add_row("storage", record.dagster_storage or "SQLite in the state dir", "")
        table.add_row("spark", record.spark_remote or "", "Spark Connect, warm for the runs")
    console.print(table)
    console.print("Use `eval $(fraudstream env)` to point other programs at it.")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = doctor.diagnose(_state_dir(args))
    table = Table(title="fraudstream doctor", title_justify="left")
    for column in ("", "check", "found", "what to do"):
        table.add_column(column)
    for f in findings:
        mark = "[green]ok[/]" if f.ok else ("[red]FAIL[/]" if f.required else "[yellow]note[/]")
        table.add_row(mark, escape(f.name), escape(f.detail), escape(f.fix))
    console.print(table)
    failed = doctor.blocking(findings)
    if failed:
        console.print(f"[red]{len(failed)} required check(s) failed[/]: the stack cannot run here.")
        return 1
    console.print("[green]ready[/]: `fraudstream demo` or `fraudstream up`.")
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
    table = Table(show_header=False, box=None, padding=(0, 2))
    for status in statuses:
        mark = "[green]ok[/]" if status.healthy else "[red]DOWN[/]"
        table.add_row(mark, escape(status.name), escape(status.detail))
    console.print(table)
    healthy = all(s.healthy for s in statuses)
    if healthy:
        _print_lag()
    else:
        console.print("`fraudstream up` starts what is down, on the addresses it had.")
    return 0 if healthy else 1


def _print_lag() -> None:
    settings = _kafka_settings()
    with TopicReader(settings, max_disorder=config.allowed_lateness()) as reader:
        extents, committed = reader.extents(), reader.committed()
    behind = records_behind(extents, committed)
    table = Table(title=f"topic {settings.topic}, group {settings.group_id}", title_justify="left")
    for column in ("partition", "offsets", "committed", "lag"):
        table.add_column(column, justify="right")
    for partition, extent in sorted(extents.items()):
        done = committed.get(partition)
        lag = behind[partition]
        table.add_row(
            str(partition),
            escape(f"[{extent.start}, {extent.end})"),
            "-" if done is None else str(done),
            f"[yellow]{lag:,}[/]" if lag else "0",
        )
    console.print(table)
    store = MongoStore.connect(config.mongo_uri(), config.mongo_database())
    try:
        emptied = emptied_partitions(extents, store.topic_high_water(settings.topic))
        newest = store.collection(INGESTED_WINDOWS).find_one(sort=[("_id", -1)])
    finally:
        store.close()
    if emptied:
        after = f"after window {newest['_id']}" if newest else "not ingested yet"
        console.print(
            f"[yellow]WARNING[/]: partition(s) {escape(str(emptied))} end below offsets already "
            f"ingested: the topic was re-created or the broker lost its memory. Windows {after} "
            "whose records were not ingested can no longer be read from Kafka (their runs fail "
            "saying so): load them as batch files in landing/transactions/.",
            soft_wrap=True,
        )


def cmd_down(args: argparse.Namespace) -> int:
    stopped = EmbeddedStack(_state_dir(args)).down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


def _kafka_settings() -> KafkaSettings:
    return KafkaSettings(config.kafka_bootstrap(), config.kafka_topic(), config.kafka_group_id())


def cmd_simulate(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    if args.from_csv:
        if not args.from_csv.is_file():
            raise FileNotFoundError(
                f"--from-csv {args.from_csv}: no such file (a handbook-format CSV with "
                "TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT)"
            )
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
    settings = DemoSettings(
        history_days=args.history_days,
        hours=args.hours,
        tx_per_day=args.tx_per_day,
        seed=args.seed,
        label_delay=args.label_delay,
    )
    return run_demo(_state_dir(args), settings, exit_after=args.exit)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream", description=__doc__)
    parser.add_argument(
        "--version", action="version", version=f"fraudstream {version('fraudstream')}"
    )
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
    command("doctor", cmd_doctor, "check this machine's prerequisites, each with what to do")
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
    defaults = DemoSettings()
    demo.add_argument(
        "--history-days", type=float, default=defaults.history_days,
        help=f"days of labelled history to learn from (default {defaults.history_days:g})",
    )  # fmt: skip
    demo.add_argument(
        "--hours", type=float, default=defaults.hours,
        help=f"live hours, ending now, that the system scores (default {defaults.hours:g})",
    )  # fmt: skip
    demo.add_argument("--tx-per-day", type=int, default=defaults.tx_per_day)
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument(
        "--label-delay", type=duration, default=defaults.label_delay,
        help="mean delay before a label is reported (default 2d: the live hours' labels come "
        "after the demo)",
    )  # fmt: skip
    demo.add_argument("--exit", action="store_true", help="stop everything after the summary")
    return parser


# Failures a user can cause or meet (a service down, a missing file or binary, bad input): their
# message says what happened and what to do, and is all the terminal shows.
EXPECTED_ERRORS = (
    ServiceUnavailable, MissingBinary, TopicNotFound, DagsterApiError, TimeoutError, ValueError,
    OSError, KafkaError, PyMongoError, requests.RequestException,
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        error_console.print(f"fraudstream {args.command}: interrupted")
        return 130
    except EXPECTED_ERRORS as error:
        error_console.print(
            f"[red]fraudstream {args.command}:[/] {escape(_message(error))}", soft_wrap=True
        )
        return 1
    except Exception as error:  # a bug: one line here, the traceback in a file to report
        log = _state_dir(args) / "logs" / "cli-errors.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as out:
            out.write(f"--- {datetime.now(UTC).isoformat()} fraudstream {args.command}\n")
            out.write(traceback.format_exc())
        error_console.print(
            f"[red]fraudstream {args.command}: unexpected {type(error).__name__}:[/] "
            f"{escape(_message(error))} (a bug: the traceback is in {log}; please report it)",
            soft_wrap=True,
        )
        return 1


def _message(error: BaseException) -> str:
    """The error's own words on one line (an OS error names its file)."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return " ".join(str(error).split()) or type(error).__name__


if __name__ == "__main__":
    sys.exit(main())

"""Batch transaction files from ``landing/transactions/``: late and batch data that merges with
the stream. Same contract as the Kafka records; the windows a file touches are re-materialized,
each reading its rows of the file besides the topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from fraudstream.batching import batches
from fraudstream.ingest.landing import LandingFile, UnreadableFile, read_rows
from fraudstream.ingest.schema import (
    InvalidRecord,
    check_event_time,
    holdable_event_times,
    transaction_from_fields,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, parse_utc, partition_key

TRANSACTION_COLUMNS = frozenset(
    ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
)
WRITE_BATCH = 10_000


@dataclass
class BatchLoad:
    """What loading batch files into a range did."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    transactions: int = 0
    dead_letters: int = 0
    changed_windows: set[str] = field(default_factory=set)  # inserted into, changed or moved from


def touched_windows(file: LandingFile, holdable: TimeRange | None = None) -> list[str]:
    """Partition keys of the windows the file's rows fall in (rows whose time cannot be read or
    no window can hold are the load's dead letters). Raises ``UnreadableFile`` for a file that
    cannot be read at all, or whose rows fall in no window: nothing would ever read them."""
    holdable = holdable or holdable_event_times()
    keys = set()
    for row in read_rows(file, TRANSACTION_COLUMNS):
        raw_time = (row.fields or {}).get("tx_datetime")
        if isinstance(raw_time, str):
            try:
                moment = parse_utc(raw_time)
            except ValueError:
                continue
            if holdable.contains(moment):
                keys.add(partition_key(moment))
    if not keys:
        raise UnreadableFile(
            f"{file.path.name} has no row with a tx_datetime a window can hold (from "
            f"{holdable.start.isoformat()} to {holdable.end.isoformat()}): check the dates and "
            "FRAUDSTREAM_PARTITION_START"
        )
    return sorted(keys)


def load_batch_files(
    store: MongoStore, files: list[LandingFile], time_range: TimeRange, run_id: str
) -> BatchLoad:
    """Upsert the files' valid rows that fall in ``time_range``; dead-letter the invalid ones
    (once per file line, whichever range's run meets them)."""
    report = BatchLoad()
    holdable = holdable_event_times()
    for file in files:
        report.files.append(file.path.name)
        text_values = file.path.suffix.lower() == ".csv"
        for batch in batches(read_rows(file, TRANSACTION_COLUMNS), WRITE_BATCH):
            documents, letters = [], []
            for row in batch:
                report.rows += 1
                try:
                    tx = transaction_from_fields(row.valid_fields(), text_values=text_values)
                    check_event_time(tx, holdable.start, holdable.end)
                except InvalidRecord as error:
                    letters.append(file.dead_letter(row, error, "landing/transactions"))
                    continue
                if time_range.start <= tx.tx_datetime < time_range.end:
                    documents.append(
                        {
                            **tx.fields(),
                            "_id": tx.transaction_id,
                            "partition_key": tx.partition_key,
                            "source": "file",
                            "file": file.position(row.line),
                            # A file dropped after the stream's record corrects it.
                            "revision": file.landed_ms,
                        }
                    )
            upserted = store.upsert_transactions(documents, run_id, expect_existing=True)
            report.changed_windows |= upserted.changed_windows
            store.record_dead_letters(letters, run_id)
            report.transactions += len(documents)
            report.dead_letters += len(letters)
    return report

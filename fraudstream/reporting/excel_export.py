"""A day's data as Excel workbooks, streamed from MongoDB, an hour at a time.

A day's directory holds one part per hour with data, ``hour-HH/``: a workbook per collection
(``transactions``, ``model_predictions``, ``ensemble_results``, ``flagged_transactions``, and
``scored_windows``: the version that scored each window and, after a re-score by a better
version, the version it replaced and the flags it added and removed). An export writes only the
parts whose hour changed since they were written — a digest of its transactions (count and
revisions) and of its windows' scorings, kept in the day's ``.manifest.json`` — so a refresh
costs the new hours, not the day so far. ``summary.xlsx`` (export time, the day's row counts,
model versions, re-scores and their flag changes, the parts) is rewritten each time.
Rows are read with a cursor and written by XlsxWriter in constant-memory mode, so memory does not
grow with the data; a sheet holds at most Excel's 1,048,576 rows (header included), after
which the rows continue on ``<name>_2``, ``<name>_3``... Each file is written to a temporary
name and renamed into place, the manifest last: a crash leaves no half-written file, and the
parts it did not record are written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import xlsxwriter

from fraudstream.ml.models import MODEL_NAMES
from fraudstream.store.collections import (
    ENSEMBLE_RESULTS,
    FLAGGED_TRANSACTIONS,
    MODEL_PREDICTIONS,
    SCORED_WINDOWS,
    TRANSACTIONS,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange

EXCEL_MAX_ROWS = 1_048_576
CURSOR_BATCH = 10_000
HOUR = timedelta(hours=1)
MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Sheet:
    """One exported collection: its columns (header, document field) and sort order."""

    name: str
    collection: str
    columns: tuple[tuple[str, str], ...]
    sort: tuple[str, ...] = ("partition_key",)


SHEETS = (
    Sheet(
        "transactions",
        TRANSACTIONS,
        (("transaction_id", "_id"), ("tx_datetime (UTC)", "tx_datetime"),
         ("customer_id", "customer_id"), ("terminal_id", "terminal_id"),
         ("tx_amount", "tx_amount"), ("partition_key", "partition_key"), ("source", "source")),
    ),
    Sheet(
        "model_predictions",
        MODEL_PREDICTIONS,
        (("transaction_id", "_id"), ("partition_key", "partition_key"),
         ("model_version", "model_version"),
         *((f"{m} probability", f"probability.{m}") for m in MODEL_NAMES),
         *((f"{m} vote", f"vote.{m}") for m in MODEL_NAMES)),
    ),
    Sheet(
        "ensemble_results",
        ENSEMBLE_RESULTS,
        (("transaction_id", "_id"), ("partition_key", "partition_key"),
         ("model_version", "model_version"), ("fraud_votes", "fraud_votes"),
         ("is_fraud", "is_fraud"), ("confidence", "confidence"), ("flagged", "flagged")),
    ),
    Sheet(
        "flagged_transactions",
        FLAGGED_TRANSACTIONS,
        (("transaction_id", "_id"), ("tx_datetime (UTC)", "tx_datetime"),
         ("customer_id", "customer_id"), ("terminal_id", "terminal_id"),
         ("partition_key", "partition_key"), ("model_version", "model_version"),
         ("fraud_votes", "fraud_votes"), ("confidence", "confidence")),
    ),
    Sheet(
        "scored_windows",
        SCORED_WINDOWS,
        (("partition_key", "partition_key"), ("model_version", "model_version"),
         ("scored_at (UTC)", "scored_at"), ("replaced_version", "replaced_version"),
         ("flags_added", "flags_added"), ("flags_removed", "flags_removed")),
    ),
)  # fmt: skip


@dataclass(frozen=True)
class DayExport:
    """What exporting a day wrote, and what its directory now holds."""

    directory: Path
    rows: dict[str, int]  # per workbook, over the day's parts
    parts: list[str]  # the day's hour parts (``hour-HH``)
    written: list[str]  # the parts this export wrote (the others were up to date)
    model_versions: list[int]
    exported_at: datetime
    rescores: dict[str, int]  # re-scored windows, flags added, flags removed

    @property
    def summary(self) -> Path:
        return self.directory / "summary.xlsx"


def export_day(
    store: MongoStore,
    directory: Path,
    day: TimeRange,
    *,
    max_rows: int = EXCEL_MAX_ROWS,
) -> DayExport:
    """Bring the hour parts of ``day`` in ``directory`` up to date, then its summary."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory)
    digests = hour_digests(store, day)
    written = []
    for part in sorted(set(manifest) - set(digests)):  # an hour whose rows all moved away
        shutil.rmtree(directory / part, ignore_errors=True)
        del manifest[part]
    for part, digest in sorted(digests.items()):
        kept = manifest.get(part, {})
        files = [directory / part / f"{sheet.name}.xlsx" for sheet in SHEETS]
        if kept.get("digest") == digest and all(f.exists() for f in files):
            continue
        hour = day.start.replace(hour=int(part[-2:]))
        manifest[part] = {"digest": digest} | _export_part(
            store, directory / part, TimeRange(hour, hour + HOUR), max_rows
        )
        written.append(part)
    _write_manifest(directory, manifest)
    export = DayExport(
        directory,
        exported_rows(manifest),
        sorted(manifest),
        written,
        sorted({v for m in manifest.values() for v in m["versions"]}),
        datetime.now(UTC),
        _rescores(store, {"partition_key": day.key_range()}),
    )
    _write_summary(export, day)
    return export


def hour_digests(store: MongoStore, day: TimeRange) -> dict[str, str]:
    """A digest of each hour of ``day`` that holds data, keyed by its part's name: its
    transactions' count and summed revisions (a new, moved or corrected transaction changes
    them) and its windows' scorings (every score write records one in ``scored_windows``)."""
    keys = {"partition_key": day.key_range()}
    hour = {"$substrBytes": ["$partition_key", 11, 2]}  # 2026-11-10-14:20 -> 14
    content: dict[str, list[Any]] = {}
    for row in store.collection(TRANSACTIONS).aggregate(
        [
            {"$match": keys},
            {"$group": {"_id": hour, "n": {"$sum": 1}, "revisions": {"$sum": "$revision"}}},
        ]
    ):
        content.setdefault(row["_id"], []).append([row["n"], row["revisions"]])
    for window in store.collection(SCORED_WINDOWS).find(keys).sort("partition_key", 1):
        window.pop("_id")
        content.setdefault(window["partition_key"][11:13], []).append(sorted(window.items()))
    return {
        f"hour-{hh}": hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
        for hh, parts in content.items()
    }


def _export_part(
    store: MongoStore, directory: Path, hour: TimeRange, max_rows: int
) -> dict[str, Any]:
    """Write one hour's workbooks; what they hold, for the manifest."""
    directory.mkdir(exist_ok=True)
    keys = {"partition_key": hour.key_range()}
    rows, sheets = {}, {}
    for sheet in SHEETS:
        fields = {field.split(".")[0]: 1 for _, field in sheet.columns}
        cursor = (
            store.collection(sheet.collection)
            .find(keys, fields, batch_size=CURSOR_BATCH)
            .sort([(f, 1) for f in sheet.sort])
        )
        values = ([_field(doc, field) for _, field in sheet.columns] for doc in cursor)
        rows[sheet.name], sheets[sheet.name] = write_workbook(
            directory / f"{sheet.name}.xlsx",
            sheet.name,
            [h for h, _ in sheet.columns],
            values,
            max_rows,
        )
    versions = sorted(store.collection(ENSEMBLE_RESULTS).distinct("model_version", keys))
    return {"rows": rows, "sheets": sheets, "versions": versions}


def read_manifest(directory: Path) -> dict[str, dict[str, Any]]:
    """What each hour part of the day in ``directory`` holds (``digest``, ``rows`` and ``sheets``
    per workbook, ``versions``); empty when none was recorded."""
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}  # no parts recorded: every hour is written


def exported_rows(manifest: dict[str, dict[str, Any]]) -> dict[str, int]:
    """The rows each workbook holds over the day's hour parts (``read_manifest``)."""
    return {sheet.name: sum(m["rows"][sheet.name] for m in manifest.values()) for sheet in SHEETS}


def _write_manifest(directory: Path, manifest: dict[str, dict[str, Any]]) -> None:
    partial = directory / f"{MANIFEST}.partial"
    partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(partial, directory / MANIFEST)


def write_workbook(
    path: Path,
    name: str,
    header: list[str],
    rows: Iterable[list[Any]],
    max_rows: int = EXCEL_MAX_ROWS,
) -> tuple[int, int]:
    """Stream ``rows`` into a workbook, a new sheet every ``max_rows`` rows (header included);
    returns (rows written, sheets). Atomic: written aside, then renamed into place."""
    partial = path.with_name(f".{path.name}.partial")
    workbook = _workbook(partial)
    formats = _formats(workbook)
    written, sheets, row_in_sheet, sheet = 0, 0, max_rows, None
    for row in rows:
        if row_in_sheet == max_rows:
            sheets += 1
            sheet = _sheet(workbook, name if sheets == 1 else f"{name}_{sheets}", header, formats)
            row_in_sheet = 1
        _write_row(sheet, row_in_sheet, row, formats)
        row_in_sheet += 1
        written += 1
    if sheet is None:  # an empty day still gets a workbook with its header
        _sheet(workbook, name, header, formats)
        sheets = 1
    workbook.close()
    os.replace(partial, path)
    return written, sheets


def _write_summary(export: DayExport, day: TimeRange) -> None:
    rows = [
        ["exported_at (UTC)", export.exported_at],
        ["day start (UTC)", day.start],
        ["day end (UTC)", day.end],
        ["model versions", ", ".join(f"v{v}" for v in export.model_versions) or "none"],
        *[[name, count] for name, count in export.rescores.items()],
        *[[f"{name} rows", count] for name, count in export.rows.items()],
        ["hour parts", ", ".join(export.parts) or "none"],
        ["hour parts written by this export", ", ".join(export.written) or "none"],
    ]
    write_workbook(export.summary, "summary", ["item", "value"], rows)


def _rescores(store: MongoStore, keys: dict[str, Any]) -> dict[str, int]:
    """How many of the day's windows a better model version re-scored, and the flags it changed."""
    totals = next(
        store.collection(SCORED_WINDOWS).aggregate(
            [
                {"$match": {**keys, "replaced_version": {"$exists": True}}},
                {
                    "$group": {
                        "_id": None,
                        "windows": {"$sum": 1},
                        "added": {"$sum": "$flags_added"},
                        "removed": {"$sum": "$flags_removed"},
                    }
                },
            ]
        ),
        {"windows": 0, "added": 0, "removed": 0},
    )
    return {
        "windows re-scored by a better model version": totals["windows"],
        "flags added by re-scores": totals["added"],
        "flags removed by re-scores": totals["removed"],
    }


def _field(document: dict[str, Any], path: str) -> Any:
    """A (dotted) field of a document; None when absent."""
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _workbook(path: Path) -> xlsxwriter.Workbook:
    return xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True})


def _formats(workbook: xlsxwriter.Workbook) -> dict[str, Any]:
    return {
        "datetime": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "header": workbook.add_format({"bold": True}),
    }


def _sheet(
    workbook: xlsxwriter.Workbook, name: str, header: list[str], formats: dict[str, Any]
) -> Any:
    sheet = workbook.add_worksheet(name[:31])  # Excel's limit on sheet names
    for column, title in enumerate(header):
        sheet.write_string(0, column, title, formats["header"])
    sheet.set_column(0, len(header) - 1, 20)
    return sheet


def _write_row(sheet: Any, row: int, values: list[Any], formats: dict[str, Any]) -> None:
    for column, value in enumerate(values):
        if value is None:
            continue
        if isinstance(value, datetime):
            sheet.write_datetime(row, column, value, formats["datetime"])
        elif isinstance(value, bool):
            sheet.write_boolean(row, column, value)
        elif isinstance(value, int | float):
            sheet.write_number(row, column, value)
        else:
            sheet.write_string(row, column, str(value))

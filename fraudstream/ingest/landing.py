"""Files dropped in the landing directory (`<state dir>/landing/<kind>/*.csv|*.jsonl`).

Each file is processed once, recognised by the SHA-256 of its content whatever its name or mtime
(the ``landing_files`` ledger). A file still being written (modified within the settle time) is
left for later. A file that cannot be read at all (not UTF-8, a header without the required
columns) is moved to ``landing/quarantine/<kind>/`` next to a ``.reason.txt`` that says why; bad
rows of a readable file go to the dead letters with their file, line and content.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fraudstream.ingest.schema import InvalidRecord, dead_letter_payload
from fraudstream.store.collections import LANDING_FILES
from fraudstream.store.mongo import MongoStore

SUFFIXES = (".csv", ".jsonl")
TRANSACTIONS_KIND, LABELS_KIND = "transactions", "labels"  # sub-directories of the landing dir
SETTLE_SECONDS = 2.0


class UnreadableFile(ValueError):
    """A landing file that cannot be read as a whole; the message says why and what to do."""


@dataclass(frozen=True)
class LandingFile:
    """A file found in the landing directory, identified by its content."""

    path: Path
    sha256: str
    size: int
    landed_ms: int = 0  # when it was dropped (its mtime): a batch row's revision

    def position(self, line: int) -> dict[str, Any]:
        """Where a row came from (the dead-letter position)."""
        return {"file": self.path.name, "sha256": self.sha256, "line": line}

    def dead_letter(self, row: Row, error: InvalidRecord, source: str) -> dict[str, Any]:
        """The dead-letter document of a row that could not be accepted (one per file line)."""
        return {
            "_id": f"file:{self.sha256[:16]}:{row.line}",
            "source": source,
            **dead_letter_payload(row.raw),
            "position": self.position(row.line),
            "error": str(error),
            "partition_key": None,
        }


@dataclass(frozen=True)
class Row:
    """One row of a landing file: its fields (lower-cased names), or why it could not be parsed."""

    line: int
    fields: dict[str, Any] | None
    raw: str
    error: str | None = None

    def valid_fields(self) -> dict[str, Any]:
        """The fields, or ``InvalidRecord`` saying why the row could not be parsed."""
        if self.fields is None:
            raise InvalidRecord(self.error or "unparseable row")
        return self.fields


def landing_dir(state_dir: Path, kind: str) -> Path:
    return state_dir / "landing" / kind


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OutsideLanding(ValueError):
    """A run config named a file outside the landing directory."""


def confined(paths: list[str], directory: Path) -> list[Path]:
    """The paths a run config names, each inside ``directory`` once ``..`` and symlinks are
    resolved; ``OutsideLanding`` otherwise (a run reads and moves only landing files)."""
    base = directory.resolve()
    for raw in paths:
        if not Path(raw).resolve().is_relative_to(base):
            raise OutsideLanding(
                f"{raw!r} is not inside {directory}: a run only reads files dropped in the "
                "landing directory (FRAUDSTREAM_LANDING_DIR); move the file there or fix the path"
            )
    return [Path(raw) for raw in paths]


def is_settled(path: Path, settle_seconds: float = SETTLE_SECONDS) -> bool:
    """True when the file has not been modified for ``settle_seconds`` (its writer is done)."""
    try:
        return time.time() - path.stat().st_mtime >= settle_seconds
    except FileNotFoundError:
        return False


def describe(path: Path) -> LandingFile:
    stat = path.stat()
    return LandingFile(path, file_digest(path), stat.st_size, int(stat.st_mtime * 1000))


def pending_files(
    store: MongoStore, directory: Path, kind: str, settle_seconds: float = SETTLE_SECONDS
) -> list[LandingFile]:
    """The settled files of ``directory`` whose content was never processed, oldest first."""
    if not directory.is_dir():
        return []
    candidates = sorted(
        (p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    files = [describe(p) for p in candidates if is_settled(p, settle_seconds)]
    done = processed(store, kind, [f.sha256 for f in files])
    return [f for f in files if f.sha256 not in done]


def processed(store: MongoStore, kind: str, digests: list[str]) -> set[str]:
    found = store.collection(LANDING_FILES).find(
        {"_id": {"$in": [f"{kind}:{d}" for d in digests]}}, {"sha256": 1}
    )
    return {doc["sha256"] for doc in found}


def read_rows(file: LandingFile, required: frozenset[str]) -> Iterator[Row]:
    """The file's rows in order. Raises ``UnreadableFile`` when the file as a whole is unusable
    (checked before the first row is yielded, except an encoding error or an oversized field
    further down)."""
    try:
        if file.path.suffix.lower() == ".jsonl":
            yield from _jsonl_rows(file.path)
        else:
            yield from _csv_rows(file.path, required)
    except UnicodeDecodeError as error:
        raise UnreadableFile(
            f"{file.path.name} is not UTF-8 text ({error.reason} at byte {error.start}): "
            "re-export it as UTF-8 CSV or JSON Lines and drop it again"
        ) from None
    except csv.Error as error:  # a field over csv's limit (128 KiB), a broken quote
        raise UnreadableFile(
            f"{file.path.name} is not a readable CSV ({error}): a row of this file cannot be "
            "a transaction or a label; fix the export and drop it again"
        ) from None


def _csv_rows(path: Path, required: frozenset[str]) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise UnreadableFile(f"{path.name} is empty: a CSV needs a header row")
        names = [name.strip().lower() for name in header]
        missing = required - set(names)
        if missing:
            raise UnreadableFile(
                f"{path.name} has no column {', '.join(sorted(missing))} (header: "
                f"{', '.join(header) or 'empty'}): add it, or check the delimiter is a comma"
            )
        for values in reader:
            line = reader.line_num
            raw = _csv_line(values)
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(names):
                yield Row(line, None, raw, f"{len(values)} values for {len(names)} columns")
                continue
            yield Row(line, dict(zip(names, values, strict=True)), raw)


def _jsonl_rows(path: Path) -> Iterator[Row]:
    with path.open(encoding="utf-8-sig") as handle:
        for line, text in enumerate(handle, start=1):
            raw = text.rstrip("\r\n")
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                yield Row(line, None, raw, f"not valid JSON ({error})")
                continue
            if not isinstance(value, dict):
                yield Row(line, None, raw, f"a JSON {type(value).__name__}, not an object")
                continue
            yield Row(line, {str(k).lower(): v for k, v in value.items()}, raw)


def _csv_line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def record_processed(
    store: MongoStore, file: LandingFile, kind: str, run_id: str, counts: dict[str, int]
) -> None:
    """Remember the file's content as processed (after its rows were written)."""
    _remember(store, file, kind, run_id, "processed", counts)


def record_requested(store: MongoStore, file: LandingFile, kind: str, windows: list[str]) -> None:
    """Remember that runs were requested for the file's content (its windows load it)."""
    _remember(store, file, kind, "sensor", "requested", {"windows": len(windows)})


def quarantine(
    store: MongoStore, file: LandingFile, kind: str, run_id: str, reason: str, landing: Path
) -> Path:
    """Move an unreadable file to ``<landing>/quarantine/<kind>/`` with its reason, and remember
    its content as quarantined (dropping the same bytes again does not retry them; a corrected
    file has a new hash)."""
    target_dir = landing / "quarantine" / kind
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / file.path.name
    if file.path.exists():
        shutil.move(str(file.path), target)
    (target_dir / f"{file.path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    _remember(store, file, kind, run_id, "quarantined", {"reason": reason})
    return target


def _remember(
    store: MongoStore,
    file: LandingFile,
    kind: str,
    run_id: str,
    status: str,
    details: dict[str, Any],
) -> None:
    store.collection(LANDING_FILES).replace_one(
        {"_id": f"{kind}:{file.sha256}"},
        {
            "kind": kind,
            "sha256": file.sha256,
            "name": file.path.name,
            "size": file.size,
            "status": status,
            "run_id": run_id,
            "processed_at": datetime.now(UTC),
            **details,
        },
        upsert=True,
    )

"""Loading labels from their two sources: files in ``landing/labels/`` and the label API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fraudstream.ingest.landing import (
    LABELS_KIND,
    LandingFile,
    UnreadableFile,
    describe,
    pending_files,
    processed,
    quarantine,
    record_processed,
)
from fraudstream.ingest.schema import dead_letter_payload
from fraudstream.labels.api_client import LabelApiClient
from fraudstream.labels.loading import (
    LabelWrite,
    load_label_file,
    store_labels,
)
from fraudstream.store.collections import LABELS, SOURCE_CURSORS
from fraudstream.store.mongo import MongoStore

API_CURSOR_ID = "label_api"


@dataclass
class LabelLoad:
    """What one load of labels did, across sources."""

    files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    dead_letters: int = 0
    written: LabelWrite = field(default_factory=LabelWrite)
    api_items: int = 0
    api_cursor: str | None = None


def load_label_files(
    store: MongoStore, directory: Path, run_id: str, paths: list[Path] | None = None
) -> LabelLoad:
    """Load the given files (or every pending one in ``directory``), each content once."""
    store.ensure_indexes(LABELS)
    report = LabelLoad()
    if paths is None:
        files = pending_files(store, directory, LABELS_KIND)
    else:
        present = [describe(p) for p in paths if p.is_file()]
        report.skipped_files = [p.name for p in paths if not p.is_file()]
        done = processed(store, LABELS_KIND, [f.sha256 for f in present])
        report.skipped_files += [f.path.name for f in present if f.sha256 in done]
        files = [f for f in present if f.sha256 not in done]
    for file in files:
        _load_one(store, file, run_id, report, directory.parent)
    return report


def _load_one(
    store: MongoStore, file: LandingFile, run_id: str, report: LabelLoad, landing: Path
) -> None:
    try:
        loaded = load_label_file(store, file, run_id)
    except UnreadableFile as error:
        target = quarantine(store, file, LABELS_KIND, run_id, str(error), landing)
        report.quarantined[file.path.name] = f"{error} (moved to {target})"
        return
    record_processed(store, file, LABELS_KIND, run_id, loaded.counts())
    report.files.append(file.path.name)
    report.rows += loaded.rows
    report.dead_letters += loaded.dead_letters
    report.written.add(loaded.written)


def stored_api_cursor(store: MongoStore) -> str | None:
    """The cursor after the last page of the label API that was stored."""
    document = store.collection(SOURCE_CURSORS).find_one({"_id": API_CURSOR_ID})
    return document["cursor"] if document else None


def load_api_labels(
    store: MongoStore, client: LabelApiClient, run_id: str, cursor: str | None
) -> LabelLoad:
    """Store every label the API has after ``cursor``; the stored cursor advances page by page,
    after each page's labels are written (a crash re-reads at most one page, idempotently)."""
    store.ensure_indexes(LABELS)
    report = LabelLoad(api_cursor=cursor)
    for page_cursor, page in client.pages(cursor):
        report.written.add(store_labels(store, page.labels, source="api"))
        letters = [
            {
                "_id": f"api:{page_cursor or 'start'}:{i}",
                "source": "label_api",
                **dead_letter_payload(repr(item)),
                "position": {"cursor": page_cursor, "index": i},
                "error": error,
                "partition_key": None,
            }
            for i, (item, error) in enumerate(page.invalid)
        ]
        store.record_dead_letters(letters, run_id)
        report.dead_letters += len(letters)
        report.api_items += len(page.labels) + len(page.invalid)
        if page.next_cursor is not None:
            report.api_cursor = page.next_cursor
            store.collection(SOURCE_CURSORS).replace_one(
                {"_id": API_CURSOR_ID},
                {"cursor": page.next_cursor, "run_id": run_id, "updated_at": datetime.now(UTC)},
                upsert=True,
            )
    return report

"""Fraud labels: their contract, and storing them in the ``labels`` collection.

A label says whether a transaction was fraud (``tx_fraud`` 0/1) and, when the source knows it, when
that became known (``reported_at``). Labels come from files in ``landing/labels/`` and from the
partner's REST API; both go through ``label_from_fields`` and ``store_labels``.

``loaded_at`` (MongoDB's clock) is when a label first reached us or last changed its verdict: the
training step uses it to find the labels that arrived since the previous model version. A label
without ``reported_at`` is assumed known within the feedback delay, the handbook's assumption (the
terminal-risk features may use it 7 days after its transaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fraudstream.batching import batches
from fraudstream.ingest.landing import LandingFile, read_rows
from fraudstream.ingest.schema import InvalidRecord, transaction_id_of
from fraudstream.store import UpdateOne
from fraudstream.store.collections import LABELS
from fraudstream.store.mongo import MongoStore
from fraudstream.store.stamps import stamped_write
from fraudstream.windows import parse_utc

LABEL_COLUMNS = frozenset(("transaction_id", "tx_fraud"))
WRITE_BATCH = 10_000
_FRAUD_VALUES = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "false": 0, "true": 1}


@dataclass(frozen=True, slots=True)
class Label:
    """One verdict on one transaction."""

    transaction_id: str
    tx_fraud: int
    reported_at: datetime | None = None


@dataclass
class LabelWrite:
    """What storing a batch of labels did."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0

    def add(self, other: LabelWrite) -> None:
        self.new += other.new
        self.changed += other.changed
        self.unchanged += other.unchanged


@dataclass
class FileLoad:
    """What loading one label file did."""

    rows: int = 0
    dead_letters: int = 0
    written: LabelWrite = field(default_factory=LabelWrite)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "dead_letters": self.dead_letters,
            "new": self.written.new,
            "changed": self.written.changed,
        }


def label_from_fields(fields: Mapping[str, Any]) -> Label:
    """Validate a mapping with lower-case names (CSV text or JSON values)."""
    tid = transaction_id_of(fields.get("transaction_id"))  # handbook JSON ids are integers
    verdict = fields.get("tx_fraud")
    fraud = _FRAUD_VALUES.get(str(verdict).strip().lower()) if verdict is not None else None
    if fraud is None:
        raise InvalidRecord(f"tx_fraud must be 0 or 1, got {verdict!r:.80}")
    raw_time = fields.get("reported_at")
    reported_at = None
    if raw_time not in (None, ""):
        if not isinstance(raw_time, str):
            raise InvalidRecord(f"reported_at must be an ISO-8601 string, got {raw_time!r:.80}")
        try:
            reported_at = parse_utc(raw_time)
        except ValueError:
            raise InvalidRecord(f"reported_at {raw_time!r} is not an ISO-8601 date-time") from None
    return Label(tid, fraud, reported_at)


def store_labels(store: MongoStore, labels: Sequence[Label], source: str) -> LabelWrite:
    """Store labels on ``_id = transaction_id`` (idempotent): new ones inserted in bulk, stored
    ones updated. ``loaded_at`` (MongoDB's clock) is set when a label is new or its verdict
    changed, and kept otherwise."""
    if not labels:
        return LabelWrite()
    # The same transaction twice in a batch: the last verdict wins, as it would in sequence.
    latest = {label.transaction_id: label for label in labels}
    stored = {
        doc["_id"]: doc["tx_fraud"]
        for doc in store.find_in(LABELS, "_id", list(latest), None, {"tx_fraud": 1})
    }
    new = [label for tid, label in latest.items() if tid not in stored]
    updates = [label for tid, label in latest.items() if tid in stored]
    with stamped_write(store, "labels") as loaded_at:
        if new:
            documents = [
                {"_id": label.transaction_id, "tx_fraud": label.tx_fraud,
                 "reported_at": label.reported_at, "source": source, "loaded_at": loaded_at}
                for label in new
            ]  # fmt: skip
            # Stored meanwhile by another load: updated below.
            updates += [new[i] for i in store.insert_new(LABELS, documents, "label")]
        if updates:  # a changed verdict is stamped with MongoDB's $$NOW, inside the lease
            store.collection(LABELS).bulk_write(
                [_label_update(label, source) for label in updates], ordered=False
            )
    changed = sum(
        1 for tid, label in latest.items() if tid in stored and stored[tid] != label.tx_fraud
    )
    return LabelWrite(
        new=len(latest) - len(stored),
        changed=changed,
        unchanged=len(labels) - (len(latest) - len(stored)) - changed,
    )


def _label_update(label: Label, source: str) -> UpdateOne:
    return UpdateOne(
        {"_id": label.transaction_id},
        [
            {
                "$set": {
                    # Evaluated against the stored document: "$tx_fraud" is the old verdict.
                    "loaded_at": {
                        "$cond": [{"$eq": ["$tx_fraud", label.tx_fraud]}, "$loaded_at", "$$NOW"]
                    },
                    "tx_fraud": label.tx_fraud,
                    "reported_at": label.reported_at,
                    "source": source,
                }
            }
        ],
        upsert=True,
    )


def load_label_file(store: MongoStore, file: LandingFile, run_id: str) -> FileLoad:
    """Store a label file's valid rows and dead-letter the others. Raises ``UnreadableFile``
    when the file as a whole is unusable (nothing of it is then recorded as processed)."""
    report = FileLoad()
    for batch in batches(read_rows(file, LABEL_COLUMNS), WRITE_BATCH):
        labels, letters = [], []
        for row in batch:
            report.rows += 1
            try:
                labels.append(label_from_fields(row.valid_fields()))
            except InvalidRecord as error:
                letters.append(file.dead_letter(row, error, "landing/labels"))
        report.written.add(store_labels(store, labels, source=f"file:{file.path.name}"))
        store.record_dead_letters(letters, run_id)
        report.dead_letters += len(letters)
    return report

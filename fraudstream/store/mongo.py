"""MongoDB persistence for fraudstream (collections and fields: docs/contracts.md).

Delivery contract: idempotent. Transactions are upserted on ``_id = transaction_id`` and dead
letters on their source position, one unordered ``bulk_write`` per batch, so a re-run or a retry
after a crash replaces documents and never duplicates them. Network errors are retried a bounded
number of times, then raised with what to do; nothing is dropped silently. Every write of every
stage takes that path: ``collection()`` and ``bucket()`` hand out handles whose writes are retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import gridfs
from pymongo import MongoClient, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
)

from fraudstream.batching import batches
from fraudstream.config import ServiceUnavailable, mongo_client_options
from fraudstream.store.collections import (
    DEAD_LETTERS,
    INDEXES,
    INGESTED_WINDOWS,
    SOURCE_CURSORS,
    TRANSACTIONS,
)

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 4
IN_BATCH = 50_000
DUPLICATE_KEY = 11000
_RETRYABLE = (AutoReconnect, NetworkTimeout)

T = TypeVar("T")
AUTHENTICATION_FAILED = 18  # MongoDB's error code


class Upserted(NamedTuple):
    """What an upsert of transactions did."""

    new: int
    stored: int  # already stored (updated where they differed)
    written_ids: frozenset[Any]  # the documents inserted or changed
    changed_windows: frozenset[str]  # partition keys whose documents were inserted or changed


class MongoStore:
    """The fraudstream database: one client, typed operations, bounded retries."""

    def __init__(self, client: MongoClient, database: str, uri: str) -> None:
        self.client = client
        self.db: Database = client[database]
        self.uri = uri  # for worker processes, which open their own client

    @classmethod
    def connect(
        cls,
        uri: str,
        database: str,
        *,
        timeout_ms: int = 5_000,
        options: dict[str, object] | None = None,
    ) -> MongoStore:
        """Connect and verify the server answers; a clear error if it does not. ``options``
        (credentials, TLS) default to ``config.mongo_client_options()``."""
        client: MongoClient = MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            tz_aware=True,
            appname="fraudstream",
            # A write is acknowledged once in the journal: offsets committed after it never point
            # past records a mongod killed a moment later had only in memory.
            journal=True,
            **(mongo_client_options() if options is None else options),
        )
        try:
            client.admin.command("ping")
        except ConnectionFailure as error:
            client.close()
            raise ServiceUnavailable(
                f"MongoDB at {redacted(uri)} is not reachable ({type(error).__name__}): start it "
                "(`fraudstream up`) or point FRAUDSTREAM_MONGO_URI at a running server."
            ) from None
        except OperationFailure as error:
            client.close()
            if error.code != AUTHENTICATION_FAILED:
                raise
            raise ServiceUnavailable(
                f"MongoDB at {redacted(uri)} refused the credentials: check "
                "FRAUDSTREAM_MONGO_USERNAME, FRAUDSTREAM_MONGO_PASSWORD and "
                "FRAUDSTREAM_MONGO_AUTH_SOURCE (the database the user was created in)."
            ) from None
        return cls(client, database, uri)

    @classmethod
    def answers(cls, uri: str, *, timeout_ms: int = 1_500) -> bool:
        """Whether a MongoDB server answers at ``uri`` with our credentials (health checks)."""
        try:
            cls.connect(uri, "admin", timeout_ms=timeout_ms).close()
        except ServiceUnavailable:
            return False
        return True

    def close(self) -> None:
        self.client.close()

    def collection(self, name: str) -> Collection:
        """The collection ``name``; its writes go through the store's bounded retries."""
        return _Retried(self.db[name], _COLLECTION_WRITES, self._retrying)  # type: ignore[return-value]

    def bucket(self, name: str) -> gridfs.GridFSBucket:
        """The GridFS bucket ``name`` (large artifacts); its writes are retried like the rest."""
        bucket = gridfs.GridFSBucket(self.db, bucket_name=name)
        return _Retried(bucket, _BUCKET_WRITES, self._retrying)  # type: ignore[return-value]

    def server_time(self) -> datetime:
        """MongoDB's clock (the one ``loaded_at`` and ``first_computed_at`` are stamped with)."""
        return self.db.command("hello", codec_options=self.db.codec_options)["localTime"]

    def find_in(
        self,
        name: str,
        field: str,
        values: Iterable[Any],
        query: dict[str, Any] | None = None,
        projection: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Documents of ``name`` whose ``field`` is one of ``values`` and that match ``query``.
        The ``$in`` list goes in chunks: a command must stay under MongoDB's 16 MB limit."""
        for chunk in batches(values, IN_BATCH):
            yield from self.collection(name).find(
                {field: {"$in": chunk}, **(query or {})}, projection
            )

    def documents_per_window(self, name: str, keys: Sequence[str] | None = None) -> dict[str, int]:
        """How many documents of ``name`` each window (``partition_key``) holds; only the windows
        in ``keys`` when given."""
        match = [] if keys is None else [{"$match": {"partition_key": {"$in": list(keys)}}}]
        rows = self.db[name].aggregate(
            [*match, {"$group": {"_id": "$partition_key", "n": {"$sum": 1}}}]
        )
        return {row["_id"]: row["n"] for row in rows}

    def ensure_indexes(self, *names: str) -> None:
        """Create the indexes (``collections.INDEXES``) of these collections, or of every one
        (idempotent)."""
        for name in names or INDEXES:
            for keys in INDEXES.get(name, []):
                self.collection(name).create_index(keys)

    def upsert_transactions(
        self, documents: Sequence[dict[str, Any]], run_id: str, *, expect_existing: bool = False
    ) -> Upserted:
        """Upsert transaction documents (each with ``_id``): how many were new, how many already
        stored, and the windows whose documents changed (a document that moved window changes
        both).

        New documents are inserted; stored ones are updated only where they differ and the new
        document's ``revision`` (when the record was made: its Kafka timestamp, a batch file's
        landing time) is not older than the stored one's, so a correction stays whatever order
        runs come in, and a re-run of an unchanged window writes nothing. On a first ingestion
        the insert goes first and duplicates fall back to the update path; with
        ``expect_existing`` (a re-run) the stored documents are read first, since a refused
        insert costs ~7x a plain one (bench/ingest.py). The first ingestion time and run of a
        document are kept.
        """
        if not documents:
            return Upserted(0, 0, frozenset(), frozenset())
        first_seen = {"first_ingested_at": datetime.now(UTC), "first_run_id": run_id}
        stored = self._stored_transactions([d["_id"] for d in documents]) if expect_existing else {}
        fresh = [{**doc, **first_seen} for doc in documents if doc["_id"] not in stored]
        if fresh:
            try:
                self._retrying(
                    lambda: self.db[TRANSACTIONS].insert_many(fresh, ordered=False),
                    f"insert of {len(fresh)} transactions",
                )
            except BulkWriteError as error:
                refused = _duplicate_indexes(error, "transaction")
                stored |= self._stored_transactions([fresh[i]["_id"] for i in refused])
        changed = [
            d
            for d in documents
            if d["_id"] in stored
            and stored[d["_id"]] != d
            and d.get("revision", 0) >= stored[d["_id"]].get("revision", 0)
        ]
        # The filter keeps a newer revision a concurrent run wrote since it was read.
        operations = [
            UpdateOne(
                {"_id": doc["_id"], "revision": {"$not": {"$gt": doc.get("revision", 0)}}},
                {"$set": doc},
            )
            for doc in changed
        ]
        if operations:
            self._retrying(
                lambda: self.db[TRANSACTIONS].bulk_write(operations, ordered=False),
                f"update of {len(operations)} transactions",
            )
        windows = {d["partition_key"] for d in documents if d["_id"] not in stored}
        windows |= {d["partition_key"] for d in changed}
        windows |= {stored[d["_id"]].get("partition_key") for d in changed} - {None}
        written = {d["_id"] for d in documents if d["_id"] not in stored} | {
            d["_id"] for d in changed
        }
        return Upserted(
            len(documents) - len(stored), len(stored), frozenset(written), frozenset(windows)
        )

    def _stored_transactions(self, ids: list[Any]) -> dict[Any, dict[str, Any]]:
        """The stored documents of these ids, without their first-ingestion fields."""
        return self._retrying(
            lambda: {
                doc["_id"]: doc
                for doc in self.db[TRANSACTIONS].find(
                    {"_id": {"$in": ids}}, {"first_ingested_at": 0, "first_run_id": 0}
                )
            },
            f"lookup of {len(ids)} stored transactions",
        )

    def record_dead_letters(self, letters: Sequence[dict[str, Any]], run_id: str) -> int:
        """Store rejected records once per source position; returns how many were new."""
        if not letters:
            return 0
        now = datetime.now(UTC)
        operations = [
            UpdateOne(
                {"_id": letter["_id"]},
                {
                    "$set": {**letter, "last_seen_at": now, "last_run_id": run_id},
                    "$setOnInsert": {"first_seen_at": now, "run_id": run_id},
                },
                upsert=True,
            )
            for letter in letters
        ]
        result = self._retrying(
            lambda: self.db[DEAD_LETTERS].bulk_write(operations, ordered=False),
            f"write of {len(letters)} dead letters",
        )
        return result.upserted_count

    def record_ingested_windows(self, windows: Iterable[dict[str, Any]]) -> None:
        """Remember which windows an ingestion completed (the ledger retention checks consult)."""
        operations = [UpdateOne({"_id": w["_id"]}, {"$set": w}, upsert=True) for w in windows]
        if operations:
            self._retrying(
                lambda: self.db[INGESTED_WINDOWS].bulk_write(operations, ordered=False),
                "update of the ingested-windows ledger",
            )

    def recount_windows(self, keys: Iterable[str]) -> dict[str, int]:
        """The distinct transactions each window holds now, written to the ledger entries of the
        windows it has (a window not ingested yet gets none)."""
        keys = list(dict.fromkeys(keys))
        counts = self.documents_per_window(TRANSACTIONS, keys)
        operations = [
            UpdateOne({"_id": key}, {"$set": {"transactions": counts.get(key, 0)}}) for key in keys
        ]
        if operations:
            self._retrying(
                lambda: self.db[INGESTED_WINDOWS].bulk_write(operations, ordered=False),
                "recount of the ingested-windows ledger",
            )
        return {key: counts.get(key, 0) for key in keys}

    def insert_new(self, name: str, documents: Sequence[dict[str, Any]], item: str) -> list[int]:
        """Insert into ``name`` in one unordered batch; returns the indexes of the documents
        refused because their ``_id`` is already stored (the caller updates those). Any other
        refusal raises with what to do."""
        try:
            self.collection(name).insert_many(documents, ordered=False)
        except BulkWriteError as error:
            return _duplicate_indexes(error, item)
        return []

    def ingested_windows_since(self, key: str) -> set[str]:
        """The ledger's windows from ``key`` on (one range read of the ``_id`` index)."""
        found = self.collection(INGESTED_WINDOWS).find({"_id": {"$gte": key}}, {"_id": 1})
        return {doc["_id"] for doc in found}

    def ingested_windows(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found = self.collection(INGESTED_WINDOWS).find({"_id": {"$in": keys}}, {"_id": 1})
        return {doc["_id"] for doc in found}

    def record_topic_offsets(self, topic: str, offsets: dict[int, int]) -> None:
        """Raise the topic's high-water mark: the highest next-offset any ingestion read, per
        partition (a partition that ends below it was emptied or re-created since)."""
        if offsets:
            self._retrying(
                lambda: self.db[SOURCE_CURSORS].update_one(
                    {"_id": f"kafka:{topic}"},
                    {"$max": {f"offsets.{p}": offset for p, offset in offsets.items()}},
                    upsert=True,
                ),
                "update of the topic's high-water mark",
            )

    def topic_high_water(self, topic: str) -> dict[int, int]:
        document = self.db[SOURCE_CURSORS].find_one({"_id": f"kafka:{topic}"}) or {}
        return {int(p): offset for p, offset in document.get("offsets", {}).items()}

    def ingested_offsets(self, keys: Iterable[str], topic: str) -> dict[int, int]:
        """Highest next-offset per partition that Kafka ingestions of these windows read."""
        highest: dict[int, int] = {}
        for doc in self.collection(INGESTED_WINDOWS).find(
            {"_id": {"$in": list(keys)}, "topic": topic}, {"offsets": 1}
        ):
            for partition, offset in doc.get("offsets", {}).items():
                highest[int(partition)] = max(offset, highest.get(int(partition), 0))
        return highest

    def _retrying(self, operation: Callable[[], T], what: str) -> T:
        attempt = 1
        while True:
            try:
                return operation()
            except _RETRYABLE as error:
                if attempt == WRITE_ATTEMPTS:
                    raise ServiceUnavailable(
                        f"MongoDB {what} failed {WRITE_ATTEMPTS} times ({error}); nothing was "
                        "committed for the unwritten records: check the server and re-run the "
                        "partition (writes are idempotent)."
                    ) from error
                delay = 0.5 * 2 ** (attempt - 1)
                log.warning(
                    "MongoDB %s failed (%s); retry %d in %.1fs", what, error, attempt, delay
                )
                time.sleep(delay)
                attempt += 1
            except (BulkWriteError, DuplicateKeyError):
                raise  # per-document errors: the caller decides
            except PyMongoError as error:
                raise RuntimeError(f"MongoDB {what} failed: {error}") from error


_COLLECTION_WRITES = frozenset(
    {"insert_one", "insert_many", "update_one", "update_many", "replace_one", "delete_one",
     "delete_many", "bulk_write", "find_one_and_update", "create_index", "drop"}
)  # fmt: skip
_BUCKET_WRITES = frozenset({"upload_from_stream", "rename", "delete"})


class _Retried:
    """A pymongo handle whose write methods run through ``retrying``; reads pass through."""

    def __init__(self, target: Any, writes: frozenset[str], retrying: Callable[..., Any]) -> None:
        self._target, self._writes, self._retrying = target, writes, retrying

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self._writes:
            return attribute
        what = f"{name} on {getattr(self._target, 'name', 'GridFS')}"
        return lambda *args, **kwargs: self._retrying(lambda: attribute(*args, **kwargs), what)


def _duplicate_indexes(error: BulkWriteError, item: str) -> list[int]:
    """The indexes of the documents an unordered insert refused as already stored; any other
    refusal is raised with what to do (``item``: what one document is, for the message)."""
    duplicates = []
    for write_error in error.details.get("writeErrors", []):
        if write_error.get("code") != DUPLICATE_KEY:
            raise RuntimeError(
                f"MongoDB refused a {item}: {write_error.get('errmsg')}. Nothing of this "
                "batch is reported stored; fix the cause (e.g. free disk space under MongoDB) and "
                "re-run: writes are idempotent."
            )
        duplicates.append(write_error["index"])
    return sorted(duplicates)


def redacted(uri: str) -> str:
    """A URI fit for messages and logs: credentials removed."""
    scheme, sep, rest = uri.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"

"""Write stamps a reader can cut on without waiting.

``first_computed_at`` and ``loaded_at`` are MongoDB's time read just before a write, so a write
stamped before a reader's time may commit after the reader's query. A writer therefore holds a
lease (collection ``write_leases``) from before it reads its stamp until its write has
committed, and a reader's cut (``committed_until``) stops just before the oldest lease it sees:
every write stamped at or before the cut has committed when the cut is taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from fraudstream.store.collections import WRITE_LEASES
from fraudstream.store.mongo import MongoStore

# A lease this old belongs to a writer that died (a stamped write takes seconds).
STALE_LEASE = timedelta(minutes=15)
_BEFORE = timedelta(milliseconds=1)  # MongoDB dates are whole milliseconds


@contextmanager
def stamped_write(store: MongoStore, writer: str) -> Iterator[datetime]:
    """MongoDB's time for stamping one write, held under a lease until the block ends (the
    write committed or failed)."""
    leases = store.collection(WRITE_LEASES)
    at = store.server_time()
    leases.delete_many({"at": {"$lt": at - STALE_LEASE}})
    lease = leases.insert_one({"at": at, "writer": writer}).inserted_id
    try:
        yield store.server_time()  # read after the lease is visible: never before ``at``
    finally:
        leases.delete_one({"_id": lease})


def committed_until(store: MongoStore) -> datetime:
    """MongoDB's time now, or just before the oldest write still in flight: every write stamped
    up to it has committed."""
    now = store.server_time()  # read before the leases: a lease taken later stamps after it
    oldest = store.collection(WRITE_LEASES).find_one(
        {"at": {"$gte": now - STALE_LEASE}}, sort=[("at", 1)]
    )
    return now if oldest is None else min(now, oldest["at"] - _BEFORE)

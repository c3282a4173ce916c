"""The persistence gateway: the one way into MongoDB.

Owns the connection (credentials, TLS), the collection names and their indexes
(``collections``), the retried path every write takes (``mongo.MongoStore``) and the user of a
server the stack runs itself (``access``); nothing else in
fraudstream imports ``pymongo`` — the write operations and errors callers need are re-exported
here. May import only the shared kernel (``fraudstream.config``, ``fraudstream.batching``).
"""

from pymongo import ASCENDING, DESCENDING, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from fraudstream.store.mongo import DUPLICATE_KEY, MongoStore, redacted

__all__ = [
    "ASCENDING",
    "DESCENDING",
    "DUPLICATE_KEY",
    "BulkWriteError",
    "DuplicateKeyError",
    "MongoStore",
    "PyMongoError",
    "ReplaceOne",
    "UpdateOne",
    "redacted",
]

"""Who may use MongoDB and how a process reaches it: the one user (with a generated password) of
a server the stack runs itself, and the address-plus-login other processes (Spark tasks) get."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote_plus

from pymongo import MongoClient
from pymongo.errors import OperationFailure

from fraudstream.config import ServiceUnavailable, mongo_client_options
from fraudstream.store.mongo import MongoStore, redacted

# Reads and writes any database (tests and benches use their own), builds indexes, reads
# server status; cannot create users or change the server.
ROLES = ("readWriteAnyDatabase", "dbAdminAnyDatabase", "clusterMonitor")


def with_credentials(uri: str, username: str, password: str) -> str:
    """``mongodb://host:port`` with the user's credentials (authenticated in ``admin``)."""
    scheme, _, rest = uri.partition("://")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{quote_plus(username)}:{quote_plus(password)}@{hosts}/?authSource=admin"


def ensure_user(uri: str, username: str, password: str, *, where: str) -> str:
    """The URI that logs in to the server at ``uri`` (started with ``--auth``) as ``username``,
    creating that user first on a server that has none (MongoDB's localhost exception). A
    server whose users do not know this password is refused: ``where`` says what to do."""
    authenticated = with_credentials(uri, username, password)
    if MongoStore.answers(authenticated):
        return authenticated
    with MongoClient(uri, serverSelectionTimeoutMS=5_000) as anonymous:
        try:
            anonymous.admin.command("createUser", username, pwd=password, roles=list(ROLES))
        except OperationFailure as error:
            raise ServiceUnavailable(
                f"MongoDB at {redacted(uri)} already has users and refuses the password kept "
                f"in {where} (error {error.code}): restore that file, or remove the "
                "MongoDB data directory (its data is lost) and run `fraudstream up` again."
            ) from None
    return authenticated


@dataclass(frozen=True)
class MongoSource:
    """How a process reaches the database without reading this one's environment: what Spark
    tasks get to read and write MongoDB themselves (it carries the login: never log it)."""

    uri: str
    database: str
    options: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, uri: str, database: str) -> MongoSource:
        """This process's settings: the URI and database given, credentials from the env."""
        return cls(uri, database, mongo_client_options())

    def connect(self) -> MongoStore:
        return MongoStore.connect(self.uri, self.database, options=self.options)

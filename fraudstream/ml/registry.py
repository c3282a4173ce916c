"""The model registry: every trained version of the three models, with its lineage and metrics.

A version's artifact (the pickled ``FraudModels``) lives in the GridFS bucket ``model_artifacts``,
signed with an HMAC under a key kept outside MongoDB (``config.model_key``): an artifact or record
changed by anyone without the key is refused before anything is unpickled. Its record in ``models``
says what it was trained on (the event-time window of its labelled transactions), from which
parent, with which features, how it scored on its holdout, and whether it was promoted, why it was
a full fit or an update, and the evidence of the promotion gate (``lifecycle.py``). Which version
scores a window is decided by ``rescoring.best_for_window`` over the promoted versions' summaries.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudstream.config import model_key
from fraudstream.ml.models import FraudModels
from fraudstream.ml.rescoring import VersionSummary
from fraudstream.ml.training_data import DataCut
from fraudstream.store import DESCENDING, DuplicateKeyError
from fraudstream.store.collections import MODEL_ARTIFACTS, MODELS
from fraudstream.store.mongo import MongoStore


class ArtifactCorrupted(RuntimeError):
    """A stored artifact no longer matches its recorded checksum."""


@dataclass(frozen=True)
class ModelVersion:
    """What the registry records of one version (the ``models`` document)."""

    version: int
    kind: str  # "full" or "incremental"
    parent: int | None
    trained_from: datetime
    trained_until: datetime
    seen_until: datetime  # labels and features stored by then (the data cut: training_data.py)
    rows: int
    frauds: int
    feature_columns: list[str]
    metrics: dict[str, dict[str, float]]
    promoted: bool
    decision: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    artifact_sha256: str = ""
    artifact_signature: str = ""  # HMAC-SHA256 of the artifact under the model key
    artifact_id: Any = None  # the GridFS file (older records: found by name)
    # The newest labelled transaction its lineage learned from: it may score windows after it.
    # Records from before this field count their whole training window.
    data_until: datetime | None = None
    full_fit: int | None = None  # its lineage's full fit; None: this version is one
    seen_rows: int = 0  # labelled rows its lineage learned from (since its full fit)
    seen_frauds: int = 0
    fit_reason: str = ""
    gate: dict[str, Any] = field(default_factory=dict)  # the promotion decision's evidence

    @property
    def cut(self) -> DataCut:
        return DataCut(self.trained_until, self.seen_until)

    @property
    def full_fit_version(self) -> int:
        if self.kind == "full":
            return self.version
        return self.full_fit if self.full_fit is not None else self.parent or self.version

    def summary(self) -> VersionSummary:
        data_until = self.data_until or self.trained_until - timedelta(microseconds=1)
        return VersionSummary(
            self.version, data_until, self.full_fit_version, self.seen_frauds or self.frauds
        )

    def document(self) -> dict[str, Any]:
        return {"_id": self.version, **self.__dict__}


class ModelRegistry:
    """Versions of the fraud models stored in MongoDB."""

    def __init__(self, store: MongoStore, key: bytes | None = None) -> None:
        self.store = store
        self.key = key if key is not None else model_key()
        self.collection = store.collection(MODELS)
        store.ensure_indexes(MODELS)
        self._upgrade_records()
        self.bucket = store.bucket(MODEL_ARTIFACTS)

    def next_version(self) -> int:
        latest = self.collection.find_one({}, sort=[("_id", DESCENDING)], projection={"_id": 1})
        return (latest["_id"] + 1) if latest else 1

    def save(self, record: ModelVersion, models: FraudModels) -> ModelVersion:
        """Store the artifact, then the record that points to it (a crash leaves no dangling
        record). The record claims ``record.version`` or, when a concurrent training run took
        it first, the next free number: two runs never overwrite each other's version."""
        payload = pickle.dumps(models, protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(payload).hexdigest()
        signature = hmac.new(self.key, payload, hashlib.sha256).hexdigest()
        artifact_id = self.bucket.upload_from_stream(f"fraud-models-pending-{digest[:16]}", payload)
        number = record.version
        while True:
            saved = ModelVersion(
                **{**record.__dict__, "version": number, "artifact_sha256": digest,
                   "artifact_signature": signature, "artifact_id": artifact_id}
            )  # fmt: skip
            try:
                self.collection.insert_one(saved.document())
                break
            except DuplicateKeyError:
                number = max(number + 1, self.next_version())
        self.bucket.rename(artifact_id, f"fraud-models-v{number}")  # for people; loads use the id
        return saved

    def load(self, version: ModelVersion) -> FraudModels:
        """The version's models, unpickled only once the artifact matches its signature (an
        HMAC under the key outside MongoDB: ``config.model_key``)."""
        stream = (
            self.bucket.open_download_stream(version.artifact_id)
            if version.artifact_id is not None
            else self.bucket.open_download_stream_by_name(f"fraud-models-v{version.version}")
        )
        payload = stream.read()
        if not version.artifact_signature:
            raise ArtifactCorrupted(
                f"model version {version.version} has no signature (stored before artifacts were "
                "signed, or its signature was removed): it is not loaded. Retrain with "
                "full_retrain_job"
            )
        expected = hmac.new(self.key, payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, version.artifact_signature):
            raise ArtifactCorrupted(
                f"model version {version.version}'s artifact does not match its signature: the "
                "artifact or its record was changed outside fraudstream, or FRAUDSTREAM_MODEL_KEY "
                "differs from the key it was signed with. It is not loaded; retrain "
                "(full_retrain_job) or restore the model_artifacts bucket and the key"
            )
        return pickle.loads(payload)  # signed by us: verified above

    def get(self, version: int) -> ModelVersion | None:
        document = self.collection.find_one({"_id": version})
        return _record(document) if document else None

    def latest(self, *, promoted_only: bool = True) -> ModelVersion | None:
        query = {"promoted": True} if promoted_only else {}
        document = self.collection.find_one(query, sort=[("_id", DESCENDING)])
        return _record(document) if document else None

    def latest_full(self) -> ModelVersion | None:
        """The newest full fit, promoted or not."""
        document = self.collection.find_one({"kind": "full"}, sort=[("_id", DESCENDING)])
        return _record(document) if document else None

    def promoted_summaries(self, since: datetime) -> list[VersionSummary]:
        """What choosing a version for windows from ``since`` on needs: the promoted versions
        whose data ends at or after ``since``, and the newest one whose data ends before it."""
        promoted = {"promoted": True}
        newer = self.collection.find({**promoted, "data_until": {"$gte": since}})
        before = self.collection.find_one(
            {**promoted, "data_until": {"$lt": since}},
            sort=[("data_until", DESCENDING), ("_id", DESCENDING)],
        )
        documents = [*newer, *([before] if before else [])]
        return [_record(document).summary() for document in documents]

    def summaries(self, versions: Iterable[int]) -> list[VersionSummary]:
        """Summaries of the given version numbers (those that exist)."""
        found = self.collection.find({"_id": {"$in": sorted(set(versions))}})
        return [_record(document).summary() for document in found]

    def _upgrade_records(self) -> None:
        """Records stored before ``data_until`` existed get it from their training window (an
        indexed check, a no-op once done)."""
        if self.collection.find_one({"data_until": None}, {"_id": 1}) is None:
            return
        self.collection.update_many(
            {"data_until": None},
            [{"$set": {"data_until": {"$subtract": ["$trained_until", 1]}}}],
        )


def _record(document: dict[str, Any]) -> ModelVersion:
    fields = {k: v for k, v in document.items() if k != "_id"}
    return ModelVersion(**fields)

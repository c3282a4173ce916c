"""The model registry: every trained version of the three models, with its lineage and metrics.

A version's artifact (the pickled ``FraudModels``) lives in the GridFS bucket ``model_artifacts``
with its SHA-256; its record in ``models`` says what it was trained on (the event-time window of its
labelled transactions), from which parent, with which features, how it scored on its holdout,
and whether it was promoted. Scoring a window uses the newest promoted version trained only on
data from before the window (no leakage); a window older than every version gets the oldest one,
and the choice is recorded.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import gridfs
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from fraudstream.models import FraudModels
from fraudstream.mongo_store import MongoStore
from fraudstream.training_data import DataCut

MODELS = "models"
ARTIFACTS = "model_artifacts"


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
    artifact_id: Any = None  # the GridFS file (older records: found by name)

    @property
    def cut(self) -> DataCut:
        return DataCut(self.trained_until, self.seen_until)

    def document(self) -> dict[str, Any]:
        return {"_id": self.version, **self.__dict__}


@dataclass(frozen=True)
class ScoringChoice:
    """Which version scores a window, and why."""

    version: ModelVersion
    reason: str


class ModelRegistry:
    """Versions of the fraud models stored in MongoDB."""

    def __init__(self, store: MongoStore) -> None:
        self.store = store
        self.collection = store.collection(MODELS)
        self.collection.create_index([("promoted", ASCENDING), ("trained_until", DESCENDING)])
        self.bucket = gridfs.GridFSBucket(store.db, bucket_name=ARTIFACTS)

    def next_version(self) -> int:
        latest = self.collection.find_one({}, sort=[("_id", DESCENDING)], projection={"_id": 1})
        return (latest["_id"] + 1) if latest else 1

    def save(self, record: ModelVersion, models: FraudModels) -> ModelVersion:
        """Store the artifact, then the record that points to it (a crash leaves no dangling
        record). The record claims ``record.version`` or, when a concurrent training run took
        it first, the next free number: two runs never overwrite each other's version."""
        payload = pickle.dumps(models, protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(payload).hexdigest()
        artifact_id = self.bucket.upload_from_stream(f"fraud-models-pending-{digest[:16]}", payload)
        number = record.version
        while True:
            saved = ModelVersion(
                **{**record.__dict__, "version": number, "artifact_sha256": digest,
                   "artifact_id": artifact_id}
            )  # fmt: skip
            try:
                self.collection.insert_one(saved.document())
                break
            except DuplicateKeyError:
                number = max(number + 1, self.next_version())
        self.bucket.rename(artifact_id, f"fraud-models-v{number}")  # for people; loads use the id
        return saved

    def load(self, version: ModelVersion) -> FraudModels:
        """The version's models, after checking the artifact against its checksum."""
        stream = (
            self.bucket.open_download_stream(version.artifact_id)
            if version.artifact_id is not None
            else self.bucket.open_download_stream_by_name(f"fraud-models-v{version.version}")
        )
        payload = stream.read()
        if hashlib.sha256(payload).hexdigest() != version.artifact_sha256:
            raise ArtifactCorrupted(
                f"model version {version.version}'s artifact does not match its checksum; retrain "
                "(the full-retrain job) or restore the model_artifacts bucket"
            )
        return pickle.loads(payload)  # our own artifact, its checksum verified

    def get(self, version: int) -> ModelVersion | None:
        document = self.collection.find_one({"_id": version})
        return _record(document) if document else None

    def latest(self, *, promoted_only: bool = True) -> ModelVersion | None:
        query = {"promoted": True} if promoted_only else {}
        document = self.collection.find_one(query, sort=[("_id", DESCENDING)])
        return _record(document) if document else None

    def for_scoring(self, window_start: datetime) -> ScoringChoice | None:
        """The newest promoted version trained only on data from before ``window_start``;
        else the oldest promoted version, flagged as such. None if nothing is promoted."""
        before = self.collection.find_one(
            {"promoted": True, "trained_until": {"$lte": window_start}},
            sort=[("trained_until", DESCENDING), ("_id", DESCENDING)],
        )
        if before:
            return ScoringChoice(
                _record(before), "newest promoted version trained before the window"
            )
        oldest = self.collection.find_one({"promoted": True}, sort=[("trained_until", ASCENDING)])
        if oldest:
            return ScoringChoice(
                _record(oldest),
                "no version was trained before this window: the oldest promoted one scores it",
            )
        return None


def promotion_decision(
    candidate_ap: float, parent_ap: float | None, margin: float
) -> tuple[bool, str]:
    """Promote unless holdout Average Precision drops more than ``margin`` below the parent's
    (both measured on the same holdout); the reason is recorded and shown."""
    if parent_ap is None:
        return True, f"first version (holdout AP {candidate_ap:.3f})"
    if candidate_ap >= parent_ap - margin:
        return True, (
            f"holdout AP {candidate_ap:.3f} vs {parent_ap:.3f} for the parent (margin {margin})"
        )
    return False, (
        f"holdout AP {candidate_ap:.3f} is more than {margin} below the parent's "
        f"{parent_ap:.3f}: kept, not promoted"
    )


def _record(document: dict[str, Any]) -> ModelVersion:
    fields = {k: v for k, v in document.items() if k != "_id"}
    return ModelVersion(**fields)

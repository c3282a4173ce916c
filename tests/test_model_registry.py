"""The model registry on real MongoDB (GridFS artifacts, lineage, no-leakage choice)."""

import hashlib
import hmac
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudstream.ml.models import FraudModels, TrainingParams
from fraudstream.ml.registry import ArtifactCorrupted, ModelRegistry, ModelVersion
from fraudstream.ml.rescoring import best_for_window
from fraudstream.store.mongo import MongoStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def first_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 2))
    return features, (features[:, 0] > 1.5).astype(int)


def tiny_models() -> FraudModels:
    params = TrainingParams(trees=5, boosting_iterations=5, min_labels=10)
    return FraudModels(["a", "b"], params).fit(*first_data())


def version(
    number: int, until_hours: int, promoted: bool = True, data_hours: float | None = None
) -> ModelVersion:
    return ModelVersion(
        version=number,
        kind="full" if number == 1 else "incremental",
        parent=number - 1 or None,
        trained_from=T0,
        trained_until=T0 + timedelta(hours=until_hours),
        seen_until=T0 + timedelta(hours=until_hours),
        rows=300,
        frauds=20,
        feature_columns=["a", "b"],
        metrics={"ensemble": {"average_precision": 0.5}},
        promoted=promoted,
        decision="test",
        data_until=T0 + timedelta(hours=until_hours if data_hours is None else data_hours),
    )


def test_a_saved_version_loads_back_with_its_lineage(store: MongoStore) -> None:
    registry = ModelRegistry(store)
    models = tiny_models()
    assert registry.next_version() == 1
    saved = registry.save(version(1, 5), models)
    assert len(saved.artifact_sha256) == 64
    assert registry.next_version() == 2
    loaded = registry.load(registry.get(1))
    probe = np.array([[2.0, 0.0], [-1.0, 0.0]])
    assert np.array_equal(loaded.predict_proba(probe), models.predict_proba(probe))
    assert registry.get(1).trained_until == T0 + timedelta(hours=5)


def test_an_artifact_planted_without_the_key_is_refused_before_unpickling(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store, key=b"the-key")
    saved = registry.save(version(1, 5), tiny_models())
    assert registry.load(registry.get(saved.version)) is not None
    # Someone who can write MongoDB but has not the key replaces the artifact and re-signs it
    # with a key of their own, or strips the signature: nothing of theirs is unpickled.
    planted = pickle.dumps({"not": "a model"})
    artifact = ModelRegistry(store, key=b"another-key").bucket.upload_from_stream("x", planted)
    forged = hmac.new(b"another-key", planted, hashlib.sha256).hexdigest()
    store.collection("models").update_one(
        {"_id": 1}, {"$set": {"artifact_id": artifact, "artifact_signature": forged}}
    )
    with pytest.raises(ArtifactCorrupted, match="does not match its signature"):
        registry.load(registry.get(saved.version))
    store.collection("models").update_one({"_id": 1}, {"$set": {"artifact_signature": ""}})
    with pytest.raises(ArtifactCorrupted, match="no signature"):
        registry.load(registry.get(saved.version))


def test_concurrent_saves_of_the_same_number_keep_both_versions(store: MongoStore) -> None:
    # Two training runs that started together both computed version 1 as the next number.
    registry = ModelRegistry(store)
    first, second = tiny_models(), FraudModels(["a", "b"], TrainingParams(trees=3, min_labels=10))
    second = second.fit(*first_data())
    barrier = threading.Barrier(2)

    def save(models: FraudModels) -> ModelVersion:
        barrier.wait()
        return registry.save(version(1, 5), models)

    with ThreadPoolExecutor(2) as pool:
        saved = list(pool.map(save, [first, second]))
    assert sorted(v.version for v in saved) == [1, 2]
    probe = np.array([[2.0, 0.0], [-1.0, 0.0]])
    for record, models in zip(saved, [first, second], strict=True):
        loaded = registry.load(registry.get(record.version))
        assert np.array_equal(loaded.predict_proba(probe), models.predict_proba(probe))
    assert store.collection("models").count_documents({}) == 2


def test_scoring_uses_the_promoted_version_whose_data_ends_closest_before_the_window(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    assert best_for_window(registry.promoted_summaries(T0), T0) is None
    models = tiny_models()
    # Version 5 was trained for hour 10, but its labelled data ends at hour 3 (later hours had
    # no labels yet): it may score every window after hour 3.
    for record in (
        version(1, 2),
        version(2, 4),
        version(3, 6, promoted=False),
        version(4, 8),
        version(5, 10, data_hours=3),
    ):
        registry.save(record, models)

    def chosen(hours: float, since_hours: float = 0) -> int:
        candidates = registry.promoted_summaries(T0 + timedelta(hours=since_hours))
        return best_for_window(candidates, T0 + timedelta(hours=hours)).version

    assert chosen(3.5) == 5  # its data ends at 3; version 2's (4) reaches into the window
    assert chosen(5) == 2  # version 2's data (until 4) reaches closer than version 5's (3)
    assert chosen(7) == 2  # 3 is not promoted
    assert chosen(9) == 4
    assert chosen(9, since_hours=8.5) == 4  # from a later range start: the newest before it
    early = best_for_window(registry.promoted_summaries(T0), T0 + timedelta(hours=1))
    assert early.version == 1 and "oldest" in early.reason
    assert registry.latest().version == 5


def test_records_stored_before_data_until_existed_count_their_training_window(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    registry.save(version(1, 2), tiny_models())
    store.collection("models").update_one({"_id": 1}, {"$unset": {"data_until": ""}})

    upgraded = ModelRegistry(store).get(1)
    assert upgraded.data_until == T0 + timedelta(hours=2) - timedelta(milliseconds=1)
    choice = best_for_window(registry.promoted_summaries(T0), T0 + timedelta(hours=2))
    assert choice.version == 1 and "data before the window" in choice.reason

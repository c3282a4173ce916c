"""The model registry on real MongoDB (GridFS artifacts, lineage, no-leakage choice)."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudstream.model_registry import (
    ArtifactCorrupted,
    ModelRegistry,
    ModelVersion,
    promotion_decision,
)
from fraudstream.models import FraudModels, TrainingParams
from fraudstream.mongo_store import MongoStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def first_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 2))
    return features, (features[:, 0] > 1.5).astype(int)


def tiny_models() -> FraudModels:
    params = TrainingParams(trees=5, boosting_iterations=5, min_labels=10)
    return FraudModels(["a", "b"], params).fit(*first_data())


def version(number: int, until_hours: int, promoted: bool = True) -> ModelVersion:
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


def test_a_tampered_artifact_is_refused(store: MongoStore) -> None:
    registry = ModelRegistry(store)
    saved = registry.save(version(1, 5), tiny_models())
    store.collection("models").update_one({"_id": 1}, {"$set": {"artifact_sha256": "0" * 64}})
    with pytest.raises(ArtifactCorrupted, match="checksum"):
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


def test_scoring_uses_the_newest_promoted_version_trained_before_the_window(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    assert registry.for_scoring(T0) is None
    models = tiny_models()
    for record in (version(1, 2), version(2, 4), version(3, 6, promoted=False), version(4, 8)):
        registry.save(record, models)

    assert registry.for_scoring(T0 + timedelta(hours=5)).version.version == 2
    assert registry.for_scoring(T0 + timedelta(hours=7)).version.version == 2  # 3 not promoted
    assert registry.for_scoring(T0 + timedelta(hours=9)).version.version == 4
    early = registry.for_scoring(T0 + timedelta(hours=1))
    assert early.version.version == 1 and "oldest" in early.reason
    assert registry.latest().version == 4


@pytest.mark.parametrize(
    ("candidate", "parent", "promoted", "words"),
    [
        (0.60, None, True, "first version"),
        (0.60, 0.62, True, "vs 0.620"),
        (0.50, 0.62, False, "not promoted"),
        (0.70, 0.62, True, "vs 0.620"),
    ],
)
def test_promotion_tolerates_a_small_drop_in_average_precision_only(
    candidate: float, parent: float | None, promoted: bool, words: str
) -> None:
    decision, reason = promotion_decision(candidate, parent, margin=0.05)
    assert decision is promoted
    assert words in reason

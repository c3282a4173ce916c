"""A training step against real MongoDB: first full fit, incremental updates, skips."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudstream.model_registry import ModelRegistry
from fraudstream.models import TrainingParams
from fraudstream.mongo_store import MongoStore
from fraudstream.training import TrainingPolicy, train_step

COLUMNS = ["a", "b", "c"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = TrainingPolicy(
    params=TrainingParams(trees=20, boosting_iterations=20, refresh_trees=4, min_labels=100),
    promotion_margin=0.05,
)


def add_rows(store: MongoStore, start: datetime, hours: int, per_hour: int, seed: int) -> None:
    """Feature documents with labels: fraud when a + b is large (about 3 %)."""
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    values = rng.normal(size=(n, 3))
    fraud = (values[:, 0] + values[:, 1] + rng.normal(0, 0.3, n) > 2.6).astype(int)
    ids = [f"{seed}-{i}" for i in range(n)]
    store.collection("transaction_features").insert_many(
        {
            "_id": ids[i],
            "tx_datetime": start + timedelta(seconds=3600 * hours * i / n),
            **dict(zip(COLUMNS, map(float, values[i]), strict=True)),
        }
        for i in range(n)
    )
    store.collection("labels").insert_many(
        {"_id": ids[i], "tx_fraud": int(fraud[i]), "reported_at": start} for i in range(n)
    )


def test_the_first_step_fits_in_full_and_later_steps_update_with_new_rows_only(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    add_rows(store, T0, hours=10, per_hour=400, seed=1)

    first = train_step(store, registry, COLUMNS, T0 + timedelta(hours=10), POLICY).version
    assert (first.version, first.kind, first.parent, first.promoted) == (1, "full", None, True)
    assert first.rows == pytest.approx(4_000 * 0.8, abs=2)
    assert first.metrics["ensemble"]["auc_roc"] > 0.9
    assert "first version" in first.decision

    add_rows(store, T0 + timedelta(hours=10), hours=2, per_hour=400, seed=2)
    second = train_step(store, registry, COLUMNS, T0 + timedelta(hours=12), POLICY).version
    assert (second.version, second.kind, second.parent) == (2, "incremental", 1)
    assert second.rows == pytest.approx(800 * 0.8, abs=2)  # only what arrived since version 1
    assert second.trained_from >= T0 + timedelta(hours=10)
    assert "average_precision" in second.metrics["parent_ensemble"]

    full = train_step(store, registry, COLUMNS, T0 + timedelta(hours=12), POLICY, full=True)
    assert full.version.kind == "full" and full.version.rows == pytest.approx(4_800 * 0.8, abs=2)


def test_too_little_new_data_is_a_clear_skip(store: MongoStore) -> None:
    registry = ModelRegistry(store)
    outcome = train_step(store, registry, COLUMNS, T0, POLICY)
    assert outcome.version is None and "no labelled transactions" in outcome.skipped
    add_rows(store, T0, hours=1, per_hour=40, seed=3)
    outcome = train_step(store, registry, COLUMNS, T0 + timedelta(hours=1), POLICY)
    assert outcome.version is None
    assert "fewer than the 100" in outcome.skipped or "no fraud" in outcome.skipped
    assert registry.latest() is None

"""A training step against real MongoDB: first full fit, incremental updates, skips."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fraudstream.ml.lifecycle import GatePolicy
from fraudstream.ml.models import FraudModels, TrainingParams
from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.training import TrainingPolicy, train_step
from fraudstream.store.mongo import MongoStore

COLUMNS = ["a", "b", "c"]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = TrainingPolicy(
    feature_columns=COLUMNS,
    params=TrainingParams(trees=20, boosting_iterations=20, min_labels=100),
    gate=GatePolicy(min_frauds=30, resamples=50),
)


def add_rows(
    store: MongoStore,
    start: datetime,
    hours: int,
    per_hour: int,
    seed: int,
    *,
    labelled: bool = True,
) -> list[str]:
    """Feature documents with labels: fraud when a + b is large (about 3 %); their ids."""
    rng = np.random.default_rng(seed)
    n = hours * per_hour
    values = rng.normal(size=(n, 3))
    fraud = (values[:, 0] + values[:, 1] + rng.normal(0, 0.3, n) > 2.6).astype(int)
    ids = [f"{seed}-{i}" for i in range(n)]
    store.collection("transaction_features").insert_many(
        {
            "_id": ids[i],
            "tx_datetime": start + timedelta(seconds=3600 * hours * i / n),
            "first_computed_at": datetime.now(UTC),
            **dict(zip(COLUMNS, map(float, values[i]), strict=True)),
        }
        for i in range(n)
    )
    if labelled:
        label(store, ids, fraud)
    return ids


def label(store: MongoStore, ids: list[str], fraud: np.ndarray) -> None:
    store.collection("labels").insert_many(
        {"_id": tid, "tx_fraud": int(f), "loaded_at": datetime.now(UTC)}
        for tid, f in zip(ids, fraud, strict=True)
    )


def test_the_first_step_fits_in_full_and_later_steps_update_with_new_rows_only(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    add_rows(store, T0, hours=10, per_hour=400, seed=1)

    first = train_step(store, registry, T0 + timedelta(hours=10), POLICY).version
    assert (first.version, first.kind, first.parent, first.promoted) == (1, "full", None, True)
    assert first.rows == 4_000  # evaluated on its newest 30 frauds' rows, then fitted on all
    assert first.metrics["holdout"]["frauds"] == 30
    assert first.metrics["ensemble"]["auc_roc"] > 0.9
    assert first.decision.startswith("first version (AP")
    assert first.fit_reason.startswith("first version")
    assert first.data_until == max(
        doc["tx_datetime"] for doc in store.collection("transaction_features").find()
    )

    add_rows(store, T0 + timedelta(hours=10), hours=2, per_hour=400, seed=2)
    second = train_step(store, registry, T0 + timedelta(hours=12), POLICY).version
    assert (second.version, second.kind, second.parent) == (2, "incremental", 1)
    assert second.rows == 800  # only what arrived since version 1
    assert second.trained_from >= T0 + timedelta(hours=10)
    assert (second.seen_rows, second.full_fit_version) == (4_800, 1)
    # Its ~24 new frauds are too few to compare on: promoted by the stated rule.
    assert second.promoted and "promoted by rule" in second.decision
    assert second.gate["frauds"] == second.frauds

    full = train_step(store, registry, T0 + timedelta(hours=12), POLICY, full=True)
    assert full.version.kind == "full" and full.version.rows == 4_800


def test_full_refits_follow_the_data_not_the_clock(store: MongoStore) -> None:
    registry = ModelRegistry(store)
    add_rows(store, T0, hours=4, per_hour=400, seed=1)
    first = train_step(store, registry, T0 + timedelta(hours=4), POLICY).version
    assert first.kind == "full"

    # Four more hours double the rows and the frauds since the full fit: a refit, judged
    # against version 1 on rows it never saw.
    add_rows(store, T0 + timedelta(hours=4), hours=4, per_hour=400, seed=2)
    refit = train_step(store, registry, T0 + timedelta(hours=8), POLICY).version
    assert (refit.kind, refit.parent, refit.rows) == ("full", None, 3_200)
    assert "since the full fit v1" in refit.fit_reason
    assert refit.gate["incumbent"] == 1 and refit.gate["frauds"] >= 30
    assert "incumbent_ensemble" in refit.metrics
    assert refit.decision.startswith(("promoted: AP", "kept, not promoted: AP"))

    # A little more data within the day: an update of the refit.
    add_rows(store, T0 + timedelta(hours=8), hours=1, per_hour=400, seed=3)
    update = train_step(store, registry, T0 + timedelta(hours=9), POLICY).version
    assert (update.kind, update.full_fit_version) == ("incremental", refit.version)

    # A day of data time after the refit, even a small hour of data refits.
    add_rows(store, T0 + timedelta(hours=32), hours=1, per_hour=400, seed=4)
    daily = train_step(store, registry, T0 + timedelta(hours=33), POLICY).version
    assert daily.kind == "full" and "data time" in daily.fit_reason

    # An update, then a pause in the labels: the lineage is refitted once, then training waits
    # (a day of data time without new labelled rows is no reason to refit the same data).
    add_rows(store, T0 + timedelta(hours=33), hours=1, per_hour=400, seed=5)
    update = train_step(store, registry, T0 + timedelta(hours=34), POLICY).version
    assert update.kind == "incremental"
    pause = train_step(store, registry, T0 + timedelta(hours=35), POLICY).version
    assert pause.kind == "full" and "consolidating its lineage" in pause.fit_reason
    assert pause.promoted and "nothing new to compare on" in pause.decision
    assert pause.data_until == update.data_until
    for hours in (36, 70):
        waiting = train_step(store, registry, T0 + timedelta(hours=hours), POLICY)
        assert waiting.version is None and "new since version" in waiting.skipped


def test_a_full_fit_is_its_trial_updated_with_the_held_out_rows(
    store: MongoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fits: list[int] = []
    real_fit = FraudModels.fit

    def counted_fit(self: FraudModels, features: np.ndarray, labels: np.ndarray) -> FraudModels:
        fits.append(len(labels))
        return real_fit(self, features, labels)

    monkeypatch.setattr(FraudModels, "fit", counted_fit)
    registry = ModelRegistry(store)
    add_rows(store, T0, hours=30, per_hour=400, seed=1)

    # The 30 newest frauds' rows are ~8 % of the 12,000: one fit on the rows before them.
    first = train_step(store, registry, T0 + timedelta(hours=30), POLICY).version
    held_out = first.gate["rows"]
    assert held_out < 0.1 * first.rows
    assert fits == [first.rows - held_out]
    assert (first.rows, first.seen_rows) == (12_000, 12_000)  # the update took the rest
    assert first.metrics["ensemble"]["auc_roc"] > 0.9

    # When the held-out rows are a larger share, the full fit is refitted on all rows.
    add_rows(store, T0 + timedelta(hours=30), hours=4, per_hour=400, seed=2)
    fits.clear()
    wide = replace(POLICY, gate=replace(POLICY.gate, fold_in_share=0.01))
    again = train_step(store, registry, T0 + timedelta(hours=34), wide, full=True).version
    assert fits == [again.rows - again.gate["rows"], again.rows]


def test_too_little_new_data_is_a_clear_skip(store: MongoStore) -> None:
    registry = ModelRegistry(store)
    outcome = train_step(store, registry, T0, POLICY)
    assert outcome.version is None and "no labelled transactions" in outcome.skipped
    add_rows(store, T0, hours=1, per_hour=40, seed=3)
    outcome = train_step(store, registry, T0 + timedelta(hours=1), POLICY)
    assert outcome.version is None
    assert "fewer than the 100" in outcome.skipped or "no fraud" in outcome.skipped
    assert registry.latest() is None


def verdicts_of(store: MongoStore, ids: list[str]) -> np.ndarray:
    docs = {
        d["_id"]: d for d in store.collection("transaction_features").find({"_id": {"$in": ids}})
    }
    return np.array([int(docs[i]["a"] + docs[i]["b"] > 2.0) for i in ids])


def test_an_update_takes_late_labels_and_late_features_of_older_transactions(
    store: MongoStore,
) -> None:
    registry = ModelRegistry(store)
    add_rows(store, T0, hours=10, per_hour=400, seed=1)
    # The last hour's labels arrive after the first version was trained...
    unlabelled = add_rows(store, T0 + timedelta(hours=9), 1, 300, seed=4, labelled=False)
    # ...and these transactions were labelled before their features were computed.
    early_labels = [f"early-{i}" for i in range(200)]
    label(store, early_labels, np.arange(200) % 10 == 0)
    first = train_step(store, registry, T0 + timedelta(hours=10), POLICY).version
    assert first.rows == 4_000

    label(store, unlabelled, verdicts_of(store, unlabelled))
    store.collection("transaction_features").insert_many(
        {"_id": tid, "tx_datetime": T0 + timedelta(hours=5), "first_computed_at": datetime.now(UTC),
         "a": float(i % 10 == 0) * 3, "b": 0.0, "c": 0.0}
        for i, tid in enumerate(early_labels)
    )  # fmt: skip
    add_rows(store, T0 + timedelta(hours=10), hours=1, per_hour=400, seed=5)
    second = train_step(store, registry, T0 + timedelta(hours=11), POLICY).version
    assert (second.kind, second.parent) == ("incremental", 1)
    assert second.rows == 300 + 200 + 400  # late labels + late features + the new hour

    again = train_step(store, registry, T0 + timedelta(hours=11), POLICY)
    assert again.version is None and "already covered by version 2" in again.skipped
    # No new labels after an update: the lineage is consolidated into a full fit, once.
    pause = train_step(store, registry, T0 + timedelta(hours=12), POLICY).version
    assert (pause.kind, pause.rows) == ("full", 4_000 + 900)
    idle = train_step(store, registry, T0 + timedelta(hours=13), POLICY)
    assert idle.version is None and f"new since version {pause.version}" in idle.skipped

"""The three models: full training, incremental updates, refusals (synthetic imbalanced data)."""

import pickle

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from fraudstream.ml.models import FraudModels, NotEnoughData, TrainingParams, leaf_rows

COLUMNS = ["a", "b", "c", "d", "e"]
PARAMS = TrainingParams(trees=30, boosting_iterations=30, min_labels=50)


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, len(COLUMNS)))
    labels = (features[:, 0] + 0.8 * features[:, 1] + rng.normal(0, 0.3, n) > 2.6).astype(int)
    return features, labels


@pytest.fixture(scope="module")
def trained() -> FraudModels:
    return FraudModels(COLUMNS, PARAMS).fit(*data(6_000, seed=1))


def test_each_model_ranks_fraud_well_after_a_full_fit(trained: FraudModels) -> None:
    features, labels = data(4_000, seed=2)
    assert 0.005 < labels.mean() < 0.05  # imbalanced, like card fraud
    probabilities = trained.predict_proba(features)
    assert probabilities.shape == (4_000, 3)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    for column in range(3):
        assert roc_auc_score(labels, probabilities[:, column]) > 0.9


def test_with_scarce_frauds_the_forest_still_votes_fraud_on_clear_cases() -> None:
    # Eight frauds: a 20-row leaf could hold at most 8/20 fraud, and the forest never voted.
    rng = np.random.default_rng(3)
    features = rng.normal(size=(2_000, len(COLUMNS)))
    features[:, 0] = np.clip(features[:, 0], None, 3)
    features[:8, 0] = rng.uniform(4, 5, 8)
    labels = (features[:, 0] > 3.5).astype(int)
    assert labels.sum() == 8
    models = FraudModels(COLUMNS, PARAMS).fit(features, labels)
    clear_frauds = np.column_stack([rng.uniform(4, 5, 20), np.zeros((20, len(COLUMNS) - 1))])
    assert (models.predict_proba(clear_frauds)[:, 0] >= 0.5).all()
    assert [leaf_rows(20, f) for f in (0, 8, 55, 199, 200, 5_000)] == [1, 1, 5, 19, 20, 20]


def test_an_update_uses_the_new_data_only_and_leaves_the_old_version_intact(
    trained: FraudModels,
) -> None:
    def leaves(models: FraudModels) -> list[np.ndarray]:
        return [tree.tree_.value.copy() for tree in models.forest.estimators_]

    old_leaves = leaves(trained)
    old_iterations = trained.boosting.n_iter_
    updated = trained.update(*data(1_500, seed=3))

    assert updated is not trained
    assert all(np.array_equal(a, b) for a, b in zip(leaves(trained), old_leaves, strict=True))
    # The forest keeps its trees' structure and refreshes their leaves' class frequencies.
    for old, new in zip(trained.forest.estimators_, updated.forest.estimators_, strict=True):
        assert np.array_equal(old.tree_.threshold, new.tree_.threshold)
    assert not all(np.array_equal(a, b) for a, b in zip(leaves(updated), old_leaves, strict=True))
    assert updated.boosting.n_iter_ == old_iterations + PARAMS.update_iterations
    assert updated.trained_rows == trained.trained_rows + 1_500
    features, labels = data(4_000, seed=4)
    for column in range(3):
        assert roc_auc_score(labels, updated.predict_proba(features)[:, column]) > 0.9


def test_the_forest_follows_a_changed_fraud_rate_and_forgets_the_old_one(
    trained: FraudModels,
) -> None:
    # New data: every transaction with a > 1.5 is now fraud (before: mostly genuine).
    probe = np.column_stack([np.full(500, 1.8), np.random.default_rng(7).normal(size=(500, 4))])
    before = trained.predict_proba(probe)[:, 0].mean()
    models = trained
    for seed in range(10, 16):
        features, _ = data(1_500, seed=seed)
        models = models.update(features, (features[:, 0] > 1.5).astype(int))
    after = models.predict_proba(probe)[:, 0].mean()
    assert after > before + 0.3, (before, after)


def test_boosting_learns_from_new_rows_once_they_make_a_chunk(trained: FraudModels) -> None:
    chunk = round(PARAMS.boosting_chunk_share * trained.window_rows)  # 300 rows
    features, labels = data(2_000, seed=20)
    features, labels = features[labels == 0][:200], labels[labels == 0][:200]
    features[:60], labels[:60] = data(60, seed=21)[0], 1  # both classes, fewer than a chunk
    first = trained.update(features, labels)
    assert first.boosting.n_iter_ == trained.boosting.n_iter_
    assert len(first.boosting_pending[1]) == 200 < chunk
    second = first.update(features, labels)
    assert second.boosting.n_iter_ == trained.boosting.n_iter_ + PARAMS.update_iterations
    assert second.boosting_pending is None
    assert first.boosting.n_iter_ == trained.boosting.n_iter_  # the parent is left intact


def test_a_down_sampled_full_fit_keeps_the_real_fraud_rate_and_its_ranking(
    trained: FraudModels,
) -> None:
    features, labels = data(6_000, seed=1)
    bounded = TrainingParams(
        trees=30, boosting_iterations=30, min_labels=50, max_full_fit_rows=1_500
    )
    sampled = FraudModels(COLUMNS, bounded).fit(features, labels)
    assert sampled.trained_rows == 6_000  # counted as the rows it stands for
    test_features, test_labels = data(4_000, seed=2)
    full, small = trained.predict_proba(test_features), sampled.predict_proba(test_features)
    for model in range(3):
        # Genuine rows weigh what they stand for: probabilities stay where every row puts them...
        assert 0.7 < small[:, model].mean() / full[:, model].mean() < 1.4
        # ...and frauds rank as well as with every row.
        auc = roc_auc_score(test_labels, small[:, model])
        assert auc > roc_auc_score(test_labels, full[:, model]) - 0.03 and auc > 0.9


def test_too_few_labels_or_one_class_is_a_clear_refusal(trained: FraudModels) -> None:
    features, labels = data(1_000, seed=5)
    with pytest.raises(NotEnoughData, match="fewer than the 50"):
        trained.update(features[:20], labels[:20])
    with pytest.raises(NotEnoughData, match="no fraud transaction"):
        trained.update(features[labels == 0], labels[labels == 0])
    with pytest.raises(NotEnoughData, match="no fraud transaction"):
        FraudModels(COLUMNS, PARAMS).fit(features[labels == 0], labels[labels == 0])


def test_features_must_match_the_columns(trained: FraudModels) -> None:
    with pytest.raises(ValueError, match="5 feature columns"):
        trained.update(np.zeros((100, 4)), np.zeros(100))
    with pytest.raises(ValueError, match="fitted"):
        FraudModels(COLUMNS, PARAMS).update(*data(100, seed=6))


def test_a_version_stored_before_the_spline_basis_still_scores(trained: FraudModels) -> None:
    # Such a version pickled a plain StandardScaler, as "scaler", under its logistic regression.
    x, y = data(4_000, seed=5)
    scaler = StandardScaler().fit(x)
    logistic = SGDClassifier(loss="log_loss", random_state=0).fit(scaler.transform(x), y)
    state = {**trained.__dict__, "logistic": logistic, "scaler": scaler}
    del state["basis"]
    old = FraudModels.__new__(FraudModels)
    old.__setstate__(state)
    restored = pickle.loads(pickle.dumps(old))
    expected = logistic.predict_proba(scaler.transform(x[:10]))[:, 1]
    np.testing.assert_allclose(restored.predict_proba(x[:10])[:, 2], expected)
    assert restored.update(*data(200, seed=6)).is_fitted  # and it takes updates


def test_the_logistic_regression_votes_fraud_beyond_a_threshold_deep_in_the_tail() -> None:
    # Amounts as the simulator draws them, fraud above their 99.7th percentile (as above 220),
    # other frauds from another feature. Knots in the body only (6 at quantiles) voted fraud on
    # 55 % of the tail's frauds here.
    rng = np.random.default_rng(7)
    features = rng.normal(size=(20_000, len(COLUMNS)))
    mean = rng.uniform(5, 100, len(features))
    features[:, 0] = np.abs(rng.normal(mean, mean / 2))
    tail = features[:, 0] > np.quantile(features[:, 0], 0.997)
    labels = (tail | (features[:, 1] + rng.normal(0, 0.3, len(features)) > 2.7)).astype(int)
    logistic = FraudModels(COLUMNS, PARAMS).fit(features, labels).predict_proba(features)[:, 2]
    assert (logistic[tail] >= 0.5).mean() > 0.75
    assert (logistic[labels == 0] >= 0.5).mean() < 0.001

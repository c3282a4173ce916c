"""The three fraud models, trained from scratch or updated with new labelled data only.

- random forest (100 trees, depth 10): an update keeps the trees' structure and refreshes their
  leaves' class frequencies with the new rows (online bagging: each row weighted Poisson(1) per
  tree, as a bootstrap would), older statistics fading so a leaf's weight stays that of the full
  fit's window (an hour's few hundred rows are too few to grow good trees on);
- gradient boosting (``HistGradientBoostingClassifier``, ~75x faster to fit than the classic one at
  similar quality): new rows wait in the model until they make a chunk of 5 % of the full fit's
  window, then add boosting iterations fitted to the chunk's residuals (iterations fitted to an
  hour's handful of frauds overfit them);
- logistic regression (``SGDClassifier`` with log loss, alpha 3e-6) over a cubic spline basis of
  the standardised features, its knots at quantiles that reach into the tail (``KNOT_QUANTILES``):
  the splines let a linear model bend (an amount above a threshold, a terminal whose risk is
  high). On the raw features its votes depended on the data set; with knots in the body of each
  feature only, it gave an amount above 220 (0.15 % of rows, always fraud) 0.03 where the trees
  gave 0.9 — and flags need all three votes or a mean probability above 0.8 (bench/README.md,
  "the logistic regression's basis"). An update is a ``partial_fit`` pass over the new data on
  the basis of the full fit.

Class imbalance (under 1 % fraud): the boosting model trains with balanced class weights — the
rare class would otherwise get few useful splits — and its probabilities are mapped back to the
real fraud rate (prior-shift correction: odds x frauds/genuine seen in training), so the three
probabilities the ensemble averages are on one scale. The forest and the logistic regression train
unweighted: on the handbook protocol, weighting them lowered their Average Precision by 0.05-0.1
and the ensemble's with it (bench/quality.py; bench/README.md has the numbers). All fits
run with BLAS/OpenMP pinned to the given thread count: competing thread pools on two cores slowed
one fit 40x (bench/README.md, platform facts).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler
from threadpoolctl import threadpool_limits

MODEL_NAMES = ("random_forest", "gradient_boosting", "logistic_regression")


class NotEnoughData(ValueError):
    """The labelled data cannot train or update the models (too few rows, or one class only)."""


@dataclass(frozen=True)
class TrainingParams:
    """How the models are built and how much an update changes them."""

    trees: int = 100
    max_depth: int = 10
    # Each split considers every feature; leaves hold at least 20 rows (steadier frequencies to
    # refresh). Measured on two replay-sized data sets: +0.010 ensemble AP over sqrt features.
    max_features: float | None = None
    min_leaf_rows: int = 20
    boosting_iterations: int = 300
    boosting_learning_rate: float = 0.05
    logistic_alpha: float = 3e-6
    update_iterations: int = 10
    boosting_chunk_share: float = 0.05  # of the full fit's rows: new rows per boosting update
    min_labels: int = 100
    seed: int = 0
    threads: int = 2
    # A full fit keeps every fraud and a random share of the genuine rows so that at most this
    # many rows are fitted (None: all); kept genuine rows weigh the inverse share, so the
    # probabilities stay at the real fraud rate. Bounds a full fit's memory and time.
    max_full_fit_rows: int | None = None


@dataclass
class FraudModels:
    """Random forest, gradient boosting and logistic regression over the same feature columns."""

    feature_columns: list[str]
    params: TrainingParams = field(default_factory=TrainingParams)
    forest: RandomForestClassifier | None = None
    boosting: HistGradientBoostingClassifier | None = None
    basis: Pipeline | None = None  # the logistic regression's input: standardised, splines
    logistic: SGDClassifier | None = None
    trained_rows: int = 0
    trained_frauds: int = 0
    window_rows: int = 0  # rows of the full fit: the weight the forest's leaves keep
    # New rows the boosting has not learned from yet (a chunk fills across updates).
    boosting_pending: tuple[np.ndarray, np.ndarray] | None = None

    def __setstate__(self, state: dict[str, object]) -> None:
        # Versions stored before the spline basis hold a plain StandardScaler as "scaler": it
        # is their logistic regression's input, so they keep scoring as they were trained.
        if "scaler" in state:
            state["basis"] = state.pop("scaler")
        self.__dict__.update(state)

    @property
    def is_fitted(self) -> bool:
        return self.forest is not None

    def fit(self, features: np.ndarray, labels: np.ndarray) -> FraudModels:
        """A new set of models trained from scratch on all of ``features``/``labels`` (the
        genuine rows down-sampled when ``max_full_fit_rows`` asks for it)."""
        features, labels = self._checked(features, labels)
        p = self.params
        kept, weights = genuine_sample(labels, p.max_full_fit_rows, p.seed)
        x, y = features[kept], labels[kept]
        with threadpool_limits(p.threads):
            forest = RandomForestClassifier(
                n_estimators=p.trees,
                max_depth=p.max_depth,
                max_features=p.max_features,
                min_samples_leaf=leaf_rows(p.min_leaf_rows, int(labels.sum())),
                n_jobs=p.threads,
                random_state=p.seed,
            ).fit(x, y, sample_weight=weights)
            # Predict in one thread: two threads add the trees' votes in arbitrary order, and the
            # same rows scored twice must score the same (no slower on 200,000 rows).
            forest.set_params(n_jobs=1)
            boosting = HistGradientBoostingClassifier(
                max_iter=p.boosting_iterations,
                learning_rate=p.boosting_learning_rate,
                l2_regularization=1.0,
                min_samples_leaf=50,
                early_stopping=False,
                random_state=p.seed,
            ).fit(x, y, sample_weight=balanced(y, weights))
            basis = spline_basis(x, weights)
            logistic = SGDClassifier(
                loss="log_loss", alpha=p.logistic_alpha, random_state=p.seed
            ).fit(basis.transform(x), y, sample_weight=weights)
        return FraudModels(
            self.feature_columns,
            p,
            forest,
            boosting,
            basis,
            logistic,
            trained_rows=len(labels),
            trained_frauds=int(labels.sum()),
            window_rows=len(labels),
        )

    def update(self, features: np.ndarray, labels: np.ndarray) -> FraudModels:
        """New models: these updated with new labelled data only (time grows with its size)."""
        if not self.is_fitted:
            raise ValueError("update() needs fitted models: fit() them first")
        features, labels = self._checked(features, labels)
        p = self.params
        updated = copy.deepcopy(self)
        with threadpool_limits(p.threads):
            refresh_leaves(
                updated.forest,
                features,
                labels,
                window_rows=updated.window_rows,
                seed=p.seed + updated.trained_rows,
            )
            updated.boosting_pending = _boost_when_chunk_full(
                updated.boosting,
                _appended(updated.boosting_pending, features, labels),
                chunk=max(p.min_labels, round(p.boosting_chunk_share * updated.window_rows)),
                iterations=p.update_iterations,
            )
            updated.logistic.partial_fit(updated.basis.transform(features), labels)
        updated.trained_rows += len(labels)
        updated.trained_frauds += int(labels.sum())
        return updated

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Fraud probability of each row from each model: an ``(n, 3)`` matrix."""
        if not self.is_fitted:
            raise ValueError("predict_proba() needs fitted models")
        features = np.asarray(features, dtype=np.float64)
        with threadpool_limits(self.params.threads):
            return np.column_stack(
                [
                    self.forest.predict_proba(features)[:, 1],
                    self._real_rate(self.boosting.predict_proba(features)[:, 1]),
                    self.logistic.predict_proba(self.basis.transform(features))[:, 1],
                ]
            )

    def _real_rate(self, balanced: np.ndarray) -> np.ndarray:
        """Probabilities of a model trained with balanced class weights, at the real fraud rate:
        its odds scaled by the frauds-to-genuine ratio it was trained on."""
        ratio = self.trained_frauds / max(self.trained_rows - self.trained_frauds, 1)
        odds = balanced / np.maximum(1.0 - balanced, 1e-12) * ratio
        return odds / (1.0 + odds)

    def _checked(self, features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if features.ndim != 2 or features.shape[1] != len(self.feature_columns):
            raise ValueError(
                f"expected {len(self.feature_columns)} feature columns, got shape {features.shape}"
            )
        if len(labels) < self.params.min_labels:
            raise NotEnoughData(
                f"{len(labels)} labelled transactions, fewer than the {self.params.min_labels} "
                "needed; wait for more labels"
            )
        classes = set(np.unique(labels).tolist())
        if classes != {0, 1}:
            missing = "fraud" if 1 not in classes else "genuine"
            raise NotEnoughData(
                f"no {missing} transaction among {len(labels)} labels; both classes are needed"
            )
        return features, labels


# Where the logistic regression's splines bend: quantiles that reach into the tail, where frauds
# live (an amount above 220 is 0.15 % of rows), not only the body of each feature.
KNOT_QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99, 0.997, 1.0)


def spline_basis(features: np.ndarray, weights: np.ndarray | None = None) -> Pipeline:
    """The logistic regression's input, fitted on ``features``: standardised, then a cubic spline
    per feature with knots at its ``KNOT_QUANTILES`` (weighted by ``weights``), extrapolated
    linearly beyond them."""
    scaler = StandardScaler().fit(features, sample_weight=weights)
    scaled = scaler.transform(features)
    knots = np.column_stack([_knots(scaled[:, j], weights) for j in range(scaled.shape[1])])
    splines = SplineTransformer(knots=knots, degree=3, extrapolation="linear").fit(scaled)
    return Pipeline([("standardscaler", scaler), ("splinetransformer", splines)])


def _knots(column: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    order = np.argsort(column, kind="stable")
    cumulative = np.cumsum(np.ones(len(column)) if weights is None else weights[order])
    at = np.searchsorted(cumulative, np.asarray(KNOT_QUANTILES) * cumulative[-1])
    knots = column[order][np.minimum(at, len(column) - 1)]
    # Tied quantiles (flags, small counts) are pulled apart a little: knots must increase.
    return knots + np.arange(len(knots)) * 1e-3


def genuine_sample(
    labels: np.ndarray, max_rows: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows a full fit learns from — every fraud and a share of the genuine rows, at most
    ``max_rows`` in all — and their weights (the inverse share for genuine rows; None when all
    rows are kept)."""
    everything = np.arange(len(labels))
    genuine = np.flatnonzero(labels == 0)
    room = None if max_rows is None else max_rows - (len(labels) - len(genuine))
    if room is None or room >= len(genuine):
        return everything, None
    share = max(room, 1) / len(genuine)
    chosen = np.random.default_rng(seed).choice(genuine, size=max(room, 1), replace=False)
    kept = np.sort(np.concatenate([np.flatnonzero(labels == 1), chosen]))
    weights = np.where(labels[kept] == 0, 1.0 / share, 1.0)
    return kept, weights


def balanced(labels: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Sample weights giving both classes the same total weight (scikit-learn's "balanced"
    class weights, over the rows' own weights: a down-sampled fit stays balanced)."""
    base = np.ones(len(labels)) if weights is None else weights
    totals = np.bincount(labels, weights=base, minlength=2)
    return base * (base.sum() / (2 * totals))[labels]


def leaf_rows(configured: int, frauds: int) -> int:
    """The forest's minimum leaf size: ``configured``, fewer when frauds are scarce. With ten
    frauds a 20-row leaf is never mostly fraud, so the forest never voted fraud and nothing was
    flagged (a demo's first model, trained on one night-time hour: forest AP 0.09). From 200
    frauds on (any day of traffic), ``configured`` as measured."""
    return max(1, min(configured, frauds // 10))


def _appended(
    pending: tuple[np.ndarray, np.ndarray] | None, features: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    if pending is None:
        return features, labels
    return np.vstack([pending[0], features]), np.concatenate([pending[1], labels])


def _boost_when_chunk_full(
    boosting: HistGradientBoostingClassifier,
    pending: tuple[np.ndarray, np.ndarray],
    *,
    chunk: int,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Adds ``iterations`` fitted to the pending rows once they make a ``chunk`` holding both
    classes (in place); returns the rows still pending."""
    features, labels = pending
    if len(labels) < chunk or len(np.unique(labels)) < 2:
        return pending
    boosting.set_params(warm_start=True, max_iter=boosting.n_iter_ + iterations)
    boosting.fit(features, labels, sample_weight=balanced(labels, None))
    return None


def refresh_leaves(
    forest: RandomForestClassifier,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    window_rows: int,
    seed: int,
) -> None:
    """Online bagging (Oza & Russell) on fixed tree structures, in place: each tree's leaves take
    in the new rows, each weighted Poisson(1) for that tree; old counts are first scaled by
    ``window_rows / (window_rows + new weight)``, so older data fades as new data arrives."""
    rng = np.random.default_rng(seed)
    rows = features.astype(np.float32)  # the trees split on float32
    for estimator in forest.estimators_:
        tree = estimator.tree_
        weights = rng.poisson(1.0, len(labels)).astype(np.float64)
        counts = tree.value[:, 0, :] * tree.weighted_n_node_samples[:, None]
        counts *= window_rows / (window_rows + weights.sum())
        np.add.at(counts, (estimator.apply(rows), labels), weights)
        totals = counts.sum(axis=1)
        tree.weighted_n_node_samples[:] = totals
        reached = totals > 0
        tree.value[reached, 0, :] = counts[reached] / totals[reached, None]

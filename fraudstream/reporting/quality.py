"""Validation of each stage's output: the numbers the asset checks show and their verdicts.

Reads are bounded by the checked range (windows' ``partition_key`` strings sort in time order, so
a range is one indexed query). Verdicts are plain functions of those numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from fraudstream.batching import batches
from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.ml.models import MODEL_NAMES
from fraudstream.store.collections import (
    DEAD_LETTERS,
    ENSEMBLE_RESULTS,
    LABELS,
    MODEL_PREDICTIONS,
    TRANSACTIONS,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange


@dataclass(frozen=True)
class QualityThresholds:
    """Where each check draws its line (configurable on the `quality` resource)."""

    max_dead_letter_rate: float = 0.05
    min_volume_ratio: float = 0.2
    min_auc: float = 0.75
    min_average_precision: float = 0.2
    min_precision: float = 0.2
    min_recall: float = 0.2
    min_agreement: float = 0.7
    max_flag_rate: float = 0.05
    min_labelled: int = 200
    min_labelled_frauds: int = 5
    lookback: timedelta = timedelta(hours=24)
    # ensemble_quality reads the whole lookback: measured by the runs that include an hour's end,
    # not by every 10-minute window.
    ensemble_quality_every: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    """A check's outcome: pass or not, why, and its numbers."""

    passed: bool
    description: str
    numbers: dict[str, float | int | str]


def dead_letter_rate(store: MongoStore, window: TimeRange, limits: QualityThresholds) -> Verdict:
    keys = {"partition_key": window.key_range()}
    accepted = store.collection(TRANSACTIONS).count_documents(keys)
    rejected = store.collection(DEAD_LETTERS).count_documents(keys)
    rate = rejected / (accepted + rejected) if accepted + rejected else 0.0
    passed = rate <= limits.max_dead_letter_rate
    return Verdict(
        passed,
        f"{rejected} of {accepted + rejected} records dead-lettered ({rate:.2%}; limit "
        f"{limits.max_dead_letter_rate:.2%})"
        + ("" if passed else ": inspect `dead_letters` for this range and fix the producer"),
        {"transactions": accepted, "dead_letters": rejected, "dead_letter_rate": round(rate, 5)},
    )


def volume(store: MongoStore, window: TimeRange, limits: QualityThresholds) -> Verdict:
    """The range's transaction count against the same range a day earlier (daily seasonality)."""
    day = timedelta(days=1)
    count = store.collection(TRANSACTIONS).count_documents({"partition_key": window.key_range()})
    reference = store.collection(TRANSACTIONS).count_documents(
        {"partition_key": window.shifted(-day).key_range()}
    )
    passed = reference == 0 or count >= limits.min_volume_ratio * reference
    return Verdict(
        passed,
        f"{count} transactions; {reference} in the same windows a day earlier"
        + ("" if passed else ": far fewer than usual, check the producer and the Kafka lag"),
        {"transactions": count, "same_windows_day_before": reference},
    )


def label_classes(store: MongoStore) -> Verdict:
    frauds = store.collection(LABELS).count_documents({"tx_fraud": 1})
    genuine = store.collection(LABELS).count_documents({"tx_fraud": 0})
    passed = frauds > 0 and genuine > 0
    return Verdict(
        passed,
        f"{frauds} fraud and {genuine} genuine labels"
        + ("" if passed else ": training needs both classes, check the label sources"),
        {"fraud_labels": frauds, "genuine_labels": genuine},
    )


def holdout_quality(metrics: dict[str, dict[str, float]], limits: QualityThresholds) -> Verdict:
    """A model version's AUC and AP on its evaluation set, per model and for the ensemble."""
    numbers: dict[str, float | int | str] = {}
    failing = []
    for name in (*MODEL_NAMES, "ensemble"):
        values = metrics.get(name, {})
        for metric, limit in (
            ("auc_roc", limits.min_auc),
            ("average_precision", limits.min_average_precision),
        ):
            value = values.get(metric, float("nan"))
            numbers[f"{name}_{metric}"] = round(value, 4)
            if not np.isnan(value) and value < limit:
                failing.append(f"{name} {metric} {value:.3f} < {limit}")
    if all(np.isnan(v) for v in numbers.values() if isinstance(v, float)):
        return Verdict(
            True,
            "not measurable: no evaluation set (its unseen rows held too few frauds: promoted by "
            "rule) or one class only",
            numbers,
        )
    passed = not failing
    return Verdict(
        passed,
        "holdout metrics within limits" if passed else "below limits: " + "; ".join(failing),
        numbers,
    )


@dataclass(frozen=True)
class LabelledScores:
    """The labelled transactions scored in a range: their labels and what the pipeline said."""

    labels: np.ndarray  # 0/1
    confidence: np.ndarray  # the ensemble's mean probability
    votes: np.ndarray  # the ensemble's majority vote
    flagged: np.ndarray
    per_model: np.ndarray  # n x 3 probabilities, MODEL_NAMES order
    versions: np.ndarray  # the model version that scored each

    @property
    def frauds(self) -> int:
        return int(self.labels.sum())

    @property
    def scores(self) -> dict[str, np.ndarray]:
        """Each model's probability and the ensemble's confidence, by name."""
        per_model = {name: self.per_model[:, i] for i, name in enumerate(MODEL_NAMES)}
        return per_model | {"ensemble": self.confidence}


def labelled_scores(store: MongoStore, window: TimeRange) -> LabelledScores:
    """The labelled transactions scored in ``window`` with the ensemble's and each model's
    output, read in batches (one indexed query per collection and batch)."""
    results = store.collection(ENSEMBLE_RESULTS).find(
        {"partition_key": window.key_range()},
        {"confidence": 1, "is_fraud": 1, "flagged": 1, "model_version": 1},
        batch_size=10_000,
    )
    rows: list[tuple] = []
    per_model: list[list[float]] = []
    for batch in batches(results, 10_000):
        verdicts = {
            doc["_id"]: doc["tx_fraud"]
            for doc in store.collection(LABELS).find(
                {"_id": {"$in": [r["_id"] for r in batch]}}, {"tx_fraud": 1}
            )
        }
        labelled = [r for r in batch if r["_id"] in verdicts]
        if not labelled:
            continue
        probabilities = {
            doc["_id"]: doc["probability"]
            for doc in store.collection(MODEL_PREDICTIONS).find(
                {"_id": {"$in": [r["_id"] for r in labelled]}}, {"probability": 1}
            )
        }
        for r in labelled:
            rows.append(
                (verdicts[r["_id"]], r["confidence"], r["is_fraud"], r["flagged"],
                 r["model_version"])
            )  # fmt: skip
            stored = probabilities.get(r["_id"], {})
            per_model.append([stored.get(m, np.nan) for m in MODEL_NAMES])
    labels, confidence, votes, flagged, versions = zip(*rows, strict=True) if rows else [()] * 5
    return LabelledScores(
        labels=np.asarray(labels, dtype=np.int64),
        confidence=np.asarray(confidence, dtype=np.float64),
        votes=np.asarray(votes, dtype=bool),
        flagged=np.asarray(flagged, dtype=bool),
        per_model=np.asarray(per_model, dtype=np.float64).reshape(-1, len(MODEL_NAMES)),
        versions=np.asarray(versions, dtype=np.int64),
    )


def score_metrics(scored: LabelledScores) -> dict[str, dict[str, float]]:
    """AUC ROC and AP of each model's probability; of the ensemble's confidence too, with the
    precision and recall of its vote."""
    metrics = {name: ranking_metrics(scored.labels, score) for name, score in scored.scores.items()}
    metrics["ensemble"] |= alert_metrics(scored.labels, scored.votes)
    return metrics


def ensemble_quality(store: MongoStore, window: TimeRange, limits: QualityThresholds) -> Verdict:
    """Each model's and the ensemble's AUC / AP, and the vote's precision / recall, on the
    transactions scored over the lookback before the window's end whose labels have arrived;
    measured by a range that holds the end of an ``ensemble_quality_every`` period (an hour), so
    a day of live windows reads the lookback 24 times, not 144."""
    if not _holds_period_end(window, limits.ensemble_quality_every):
        return Verdict(
            True,
            f"not measured by this range: measured once per {limits.ensemble_quality_every}, by "
            f"the run whose windows include the period's end (it reads the {limits.lookback} "
            "lookback)",
            {"measured": "no"},
        )
    since = min(window.start, window.end - limits.lookback)
    scored = labelled_scores(store, TimeRange(since, window.end))
    labels, frauds = scored.labels, scored.frauds
    numbers: dict[str, float | int | str] = {
        "labelled": len(labels),
        "labelled_frauds": frauds,
        "since": since.isoformat(),
    }
    if len(labels) < limits.min_labelled or frauds < limits.min_labelled_frauds:
        return Verdict(
            True,
            f"not measured: {len(labels)} labelled transactions with {frauds} frauds scored "
            f"since {since.isoformat()} (needs {limits.min_labelled} and "
            f"{limits.min_labelled_frauds}); labels arrive later",
            numbers,
        )
    by_score = score_metrics(scored)
    for name, values in by_score.items():
        numbers |= {f"{name}_{metric}": round(value, 4) for metric, value in values.items()}
    ensemble = by_score["ensemble"]
    limits_by_metric = {
        "auc_roc": limits.min_auc,
        "average_precision": limits.min_average_precision,
        "precision": limits.min_precision,
        "recall": limits.min_recall,
    }
    failing = [
        f"ensemble {metric} {ensemble[metric]:.3f} < {limit}"
        for metric, limit in limits_by_metric.items()
        if ensemble[metric] < limit
    ]
    passed = not failing
    return Verdict(
        passed,
        f"ensemble on {len(labels)} labelled transactions: AUC {ensemble['auc_roc']:.3f}, "
        f"AP {ensemble['average_precision']:.3f}, precision {ensemble['precision']:.3f}, "
        f"recall {ensemble['recall']:.3f}"
        + ("" if passed else " — below limits: " + "; ".join(failing)),
        numbers,
    )


def _holds_period_end(window: TimeRange, every: timedelta) -> bool:
    """Whether a multiple of ``every`` (since the epoch) lies in ``(start, end]``."""
    seconds = every.total_seconds()
    return window.end.timestamp() // seconds > window.start.timestamp() // seconds


def scored_counts(store: MongoStore, window: TimeRange) -> dict[str, int]:
    """Scored, flagged and unanimous transactions of the range."""
    [row] = list(
        store.collection(ENSEMBLE_RESULTS).aggregate(
            [
                {"$match": {"partition_key": window.key_range()}},
                {
                    "$group": {
                        "_id": None,
                        "scored": {"$sum": 1},
                        "flagged": {"$sum": {"$cond": ["$flagged", 1, 0]}},
                        "unanimous": {"$sum": {"$cond": [{"$in": ["$fraud_votes", [0, 3]]}, 1, 0]}},
                    }
                },
            ]
        )
    ) or [{"scored": 0, "flagged": 0, "unanimous": 0}]
    return {k: int(row[k]) for k in ("scored", "flagged", "unanimous")}


def agreement(counts: dict[str, int], limits: QualityThresholds) -> Verdict:
    rate = counts["unanimous"] / counts["scored"] if counts["scored"] else 1.0
    passed = rate >= limits.min_agreement
    return Verdict(
        passed,
        f"all three models agree on {rate:.1%} of {counts['scored']} transactions (minimum "
        f"{limits.min_agreement:.0%})"
        + ("" if passed else ": the models disagree, compare their holdout metrics"),
        {"scored": counts["scored"], "agreement_rate": round(rate, 4)},
    )


def flag_rate(counts: dict[str, int], limits: QualityThresholds) -> Verdict:
    rate = counts["flagged"] / counts["scored"] if counts["scored"] else 0.0
    passed = rate <= limits.max_flag_rate
    return Verdict(
        passed,
        f"{counts['flagged']} of {counts['scored']} transactions flagged ({rate:.2%}; limit "
        f"{limits.max_flag_rate:.2%})"
        + ("" if passed else ": too many for review, check the model version and thresholds"),
        {"scored": counts["scored"], "flagged": counts["flagged"], "flag_rate": round(rate, 5)},
    )

"""Scoring a range of windows with the ensemble and storing the results (contracts: DESIGN.md).

Each window is scored by the version the registry chooses for it (trained only on data from before
the window, or the oldest one, recorded). Writes are idempotent: a window's documents are upserted
and those a re-run no longer produces (a transaction no longer flagged) are deleted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymongo import ReplaceOne

from fraudstream.ensemble import EnsembleDecision, EnsembleThresholds, decide
from fraudstream.feature_history import TRANSACTION_FEATURES
from fraudstream.model_registry import ModelRegistry
from fraudstream.models import MODEL_NAMES
from fraudstream.mongo_store import MongoStore
from fraudstream.windows import TimeRange, partition_key

MODEL_PREDICTIONS = "model_predictions"
ENSEMBLE_RESULTS = "ensemble_results"
FLAGGED_TRANSACTIONS = "flagged_transactions"
SCORE_BATCH = 50_000


class NoModelVersion(RuntimeError):
    """Nothing is promoted in the registry yet."""


@dataclass
class ScoringReport:
    """What scoring a range did."""

    scored: int = 0
    flagged: int = 0
    frauds_voted: int = 0
    unanimous: int = 0
    versions: Counter[int] = field(default_factory=Counter)
    reasons: set[str] = field(default_factory=set)

    @property
    def agreement_rate(self) -> float:
        return self.unanimous / self.scored if self.scored else 1.0


def score_range(
    store: MongoStore,
    registry: ModelRegistry,
    time_range: TimeRange,
    thresholds: EnsembleThresholds,
) -> ScoringReport:
    """Score every featured transaction of the range's windows."""
    report = ScoringReport()
    for window in time_range.windows():
        choice = registry.for_scoring(window.start)
        if choice is None:
            raise NoModelVersion(
                "no promoted model version in the registry: materialize fraud_models (or run "
                "full_retrain_job) once labelled data exists"
            )
        models = registry.load(choice.version)
        report.reasons.add(f"v{choice.version.version}: {choice.reason}")
        rows = list(
            store.collection(TRANSACTION_FEATURES).find(
                {"partition_key": partition_key(window.start)},
                {"_id": 1, "tx_datetime": 1, "customer_id": 1, "terminal_id": 1,
                 **dict.fromkeys(models.feature_columns, 1)},
            )
        )  # fmt: skip
        key = partition_key(window.start)
        flagged: set[str] = set()
        for start in range(0, len(rows), SCORE_BATCH):
            chunk = rows[start : start + SCORE_BATCH]
            features = np.array(
                [[row[c] for c in models.feature_columns] for row in chunk], dtype=np.float64
            )
            probabilities = models.predict_proba(features)
            decision = decide(probabilities, thresholds)
            flagged |= _write(
                store, chunk, key, choice.version.version, probabilities, decision, thresholds
            )
            report.scored += len(chunk)
            report.flagged += int(decision.flagged.sum())
            report.frauds_voted += int(decision.is_fraud.sum())
            report.unanimous += round(decision.agreement_rate * len(chunk))
            report.versions[choice.version.version] += len(chunk)
        _delete_stale(store, key, {row["_id"] for row in rows}, flagged)
    return report


def _write(
    store: MongoStore,
    rows: list[dict[str, Any]],
    key: str,
    version: int,
    probabilities: np.ndarray,
    decision: EnsembleDecision,
    thresholds: EnsembleThresholds,
) -> set[str]:
    """Upsert the chunk's predictions and results; returns the ids flagged."""
    now = datetime.now(UTC)
    predictions, results, flagged = [], [], []
    flagged_ids: set[str] = set()
    for i, row in enumerate(rows):
        tid = row["_id"]
        for m, model in enumerate(MODEL_NAMES):
            probability = float(probabilities[i, m])
            predictions.append(
                ReplaceOne(
                    {"_id": f"{tid}/{model}"},
                    {
                        "transaction_id": tid,
                        "partition_key": key,
                        "model": model,
                        "model_version": version,
                        "probability": probability,
                        "vote": probability >= thresholds.vote,
                        "scored_at": now,
                    },
                    upsert=True,
                )
            )
        result = {
            "partition_key": key,
            "model_version": version,
            "fraud_votes": int(decision.fraud_votes[i]),
            "is_fraud": bool(decision.is_fraud[i]),
            "confidence": float(decision.confidence[i]),
            "flagged": bool(decision.flagged[i]),
            "scored_at": now,
        }
        results.append(ReplaceOne({"_id": tid}, result, upsert=True))
        if result["flagged"]:
            details = {k: row[k] for k in ("tx_datetime", "customer_id", "terminal_id")}
            flagged.append(ReplaceOne({"_id": tid}, {**result, **details}, upsert=True))
            flagged_ids.add(tid)
    for name, operations in (
        (MODEL_PREDICTIONS, predictions),
        (ENSEMBLE_RESULTS, results),
        (FLAGGED_TRANSACTIONS, flagged),
    ):
        if operations:
            store.collection(name).bulk_write(operations, ordered=False)
    return flagged_ids


def _delete_stale(store: MongoStore, key: str, scored: set[str], flagged: set[str]) -> None:
    """Remove a window's documents that this run did not produce (e.g. no longer flagged)."""
    store.collection(ENSEMBLE_RESULTS).delete_many(
        {"partition_key": key, "_id": {"$nin": list(scored)}}
    )
    store.collection(FLAGGED_TRANSACTIONS).delete_many(
        {"partition_key": key, "_id": {"$nin": list(flagged)}}
    )
    store.collection(MODEL_PREDICTIONS).delete_many(
        {"partition_key": key, "transaction_id": {"$nin": list(scored)}}
    )

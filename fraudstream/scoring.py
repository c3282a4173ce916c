"""Scoring a range of windows with the ensemble and storing the results (contracts: DESIGN.md).

Each window is scored by the version the registry chooses for it (trained only on data from before
the window, or the oldest one, recorded). Writes are idempotent: a window's documents are upserted
with the run's token, then the window's documents without it (a transaction no longer flagged, or
no longer in the window) are deleted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pymongo import ASCENDING, ReplaceOne

from fraudstream.batching import batches
from fraudstream.ensemble import EnsembleDecision, EnsembleThresholds, decide
from fraudstream.feature_history import TRANSACTION_FEATURES
from fraudstream.model_registry import ModelRegistry
from fraudstream.models import MODEL_NAMES
from fraudstream.mongo_store import MongoStore
from fraudstream.windows import TimeRange, partition_key

MODEL_PREDICTIONS = "model_predictions"
ENSEMBLE_RESULTS = "ensemble_results"
FLAGGED_TRANSACTIONS = "flagged_transactions"
SCORE_BATCH = 20_000


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
    """Score every featured transaction of the range's windows, a batch at a time (memory is
    bounded by the batch, not the window)."""
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
        key = partition_key(window.start)
        token = uuid.uuid4().hex  # marks this run's documents; the window's others are stale
        rows = store.collection(TRANSACTION_FEATURES).find(
            {"partition_key": key},
            {"_id": 1, "tx_datetime": 1, "customer_id": 1, "terminal_id": 1,
             **dict.fromkeys(models.feature_columns, 1)},
            batch_size=10_000,
        )  # fmt: skip
        for chunk in batches(rows, SCORE_BATCH):
            features = np.array(
                [[row[c] for c in models.feature_columns] for row in chunk], dtype=np.float64
            )
            probabilities = models.predict_proba(features)
            decision = decide(probabilities, thresholds)
            _write(store, chunk, key, choice.version.version, token, probabilities, decision,
                   thresholds)  # fmt: skip
            report.scored += len(chunk)
            report.flagged += int(decision.flagged.sum())
            report.frauds_voted += int(decision.is_fraud.sum())
            report.unanimous += round(decision.agreement_rate * len(chunk))
            report.versions[choice.version.version] += len(chunk)
        for name in (MODEL_PREDICTIONS, ENSEMBLE_RESULTS, FLAGGED_TRANSACTIONS):
            store.collection(name).delete_many(
                {"partition_key": key, "scoring_run": {"$ne": token}}
            )
    return report


def ensure_scoring_indexes(store: MongoStore) -> None:
    for name in (MODEL_PREDICTIONS, ENSEMBLE_RESULTS, FLAGGED_TRANSACTIONS):
        store.collection(name).create_index([("partition_key", ASCENDING)])


def _write(
    store: MongoStore,
    rows: list[dict[str, Any]],
    key: str,
    version: int,
    token: str,
    probabilities: np.ndarray,
    decision: EnsembleDecision,
    thresholds: EnsembleThresholds,
) -> None:
    """Upsert the chunk's predictions and results."""
    now = datetime.now(UTC)
    predictions, results, flagged = [], [], []
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
                        "scoring_run": token,
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
            "scoring_run": token,
        }
        results.append(ReplaceOne({"_id": tid}, result, upsert=True))
        if result["flagged"]:
            details = {k: row[k] for k in ("tx_datetime", "customer_id", "terminal_id")}
            flagged.append(ReplaceOne({"_id": tid}, {**result, **details}, upsert=True))
    for name, operations in (
        (MODEL_PREDICTIONS, predictions),
        (ENSEMBLE_RESULTS, results),
        (FLAGGED_TRANSACTIONS, flagged),
    ):
        if operations:
            store.collection(name).bulk_write(operations, ordered=False)

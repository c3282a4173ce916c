"""Scoring a range of windows with the ensemble and storing the results (docs/contracts.md).

Each window is scored by the version ``rescoring.best_for_window`` chooses among the promoted ones
(its data precedes the window, or the oldest one, recorded). Writes are idempotent: a window's
documents are replaced as a whole (deleted, then inserted in bulk — an upsert costs ~4x an insert
here, bench/score.py). ``model_predictions`` holds one document per transaction with each model's
probability and vote; ``scored_windows`` one per window: the version that scored it, and when a
re-score replaced an earlier version, which one and the flags it added and removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.batching import BackgroundWriter, batches
from fraudstream.ml.ensemble import EnsembleDecision, EnsembleThresholds, decide
from fraudstream.ml.models import MODEL_NAMES, FraudModels
from fraudstream.ml.registry import ModelRegistry
from fraudstream.ml.rescoring import RescoringPolicy, StaleWindow, best_for_window, stale_windows
from fraudstream.store import DESCENDING, ReplaceOne
from fraudstream.store.collections import (
    ENSEMBLE_RESULTS,
    FLAGGED_TRANSACTIONS,
    MODEL_PREDICTIONS,
    SCORED_WINDOWS,
    TRANSACTION_FEATURES,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import TimeRange, partition_key

SCORE_BATCH = 20_000
DETAIL_FIELDS = ["tx_datetime", "customer_id", "terminal_id"]  # copied to flagged documents


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
    rescored_windows: int = 0  # scored before, by another version
    replaced_versions: Counter[int] = field(default_factory=Counter)  # windows per old version
    flags_added: int = 0
    flags_removed: int = 0

    @property
    def agreement_rate(self) -> float:
        return self.unanimous / self.scored if self.scored else 1.0


def score_range(
    store: MongoStore,
    registry: ModelRegistry,
    time_range: TimeRange,
    thresholds: EnsembleThresholds,
) -> ScoringReport:
    """Score every featured transaction of the range's windows. The windows scored by one
    version are read, cleared and written together, a batch at a time: a range of small windows
    costs a few round trips per batch, not per window, and memory is bounded by the batch."""
    report = ScoringReport()
    keys = time_range.partition_keys()
    featured = store.documents_per_window(TRANSACTION_FEATURES, keys)
    before = {doc["_id"]: doc for doc in store.find_in(SCORED_WINDOWS, "_id", keys)}
    _clear(store, [key for key in keys if key not in featured])  # an empty window needs no model
    candidates = registry.promoted_summaries(time_range.start)
    by_version: dict[int, list[TimeRange]] = {}
    for window in time_range.windows():
        if partition_key(window.start) not in featured:
            continue
        choice = best_for_window(candidates, window.start)
        if choice is None:
            raise NoModelVersion(
                "no promoted model version in the registry: materialize fraud_models (or run "
                "full_retrain_job) once labelled data exists"
            )
        by_version.setdefault(choice.version, []).append(window)
        report.reasons.add(f"v{choice.version}: {choice.reason}")
    for version, windows in by_version.items():
        models = registry.load(registry.get(version))
        _score_windows(store, models, version, windows, before, thresholds, report)
    return report


def _score_windows(
    store: MongoStore,
    models: FraudModels,
    version: int,
    windows: list[TimeRange],
    before: dict[str, dict[str, Any]],
    thresholds: EnsembleThresholds,
    report: ScoringReport,
) -> None:
    """Replace the scores of ``windows`` with ``version``'s and record each window."""
    keys = [partition_key(window.start) for window in windows]
    # A re-score by another version compares flags: read the old ones before they go.
    rescored = [key for key in keys if key in before and before[key]["model_version"] != version]
    old_flags = _flagged_ids(store, rescored)
    new_flags: dict[str, set[str]] = {key: set() for key in keys}
    # Replace the windows: their old documents go first, so a transaction no longer in them (or
    # no longer flagged) leaves no trace; a crash in between is repaired by the re-run.
    _clear(store, keys)
    columns = ["_id", "partition_key", *DETAIL_FIELDS, *models.feature_columns]
    rows = store.collection(TRANSACTION_FEATURES).find(
        {"partition_key": {"$in": keys}}, dict.fromkeys(columns, 1), batch_size=SCORE_BATCH
    )
    write = partial(_write, store, version=version)
    # Writes of one batch overlap the read and prediction of the next.
    with BackgroundWriter(write, depth=1) as writer:
        for chunk in batches(rows, SCORE_BATCH):
            frame = pd.DataFrame.from_records(chunk, columns=columns)
            probabilities = models.predict_proba(frame[models.feature_columns].to_numpy(float))
            decision = decide(probabilities, thresholds)
            writer.submit((frame[columns[: 2 + len(DETAIL_FIELDS)]], probabilities, decision))
            report.scored += len(frame)
            report.flagged += int(decision.flagged.sum())
            report.frauds_voted += int(decision.is_fraud.sum())
            report.unanimous += round(decision.agreement_rate * len(frame))
            report.versions[version] += len(frame)
            flagged = frame.loc[decision.flagged, ["partition_key", "_id"]]
            for key, tid in flagged.itertuples(index=False):
                new_flags[key].add(tid)
    records = [
        _window_record(
            report, window, version, before.get(key), (old_flags.get(key), new_flags[key])
        )
        for key, window in zip(keys, windows, strict=True)
    ]
    store.collection(SCORED_WINDOWS).bulk_write(records, ordered=False)


def _flagged_ids(store: MongoStore, keys: list[str]) -> dict[str, set[str]]:
    """The flagged transactions of these windows, per window (each of them present)."""
    flags: dict[str, set[str]] = {key: set() for key in keys}
    for doc in store.find_in(
        FLAGGED_TRANSACTIONS, "partition_key", keys, None, {"partition_key": 1}
    ):
        flags[doc["partition_key"]].add(doc["_id"])
    return flags


def _window_record(
    report: ScoringReport,
    window: TimeRange,
    version: int,
    before: dict[str, Any] | None,
    flags: tuple[set[str] | None, set[str]],
) -> ReplaceOne:
    """The window's ``scored_windows`` document; a re-score by another version records which
    version it replaced and the flags that changed (``flags``: old, or None, and new; also
    counted in ``report``)."""
    key = partition_key(window.start)
    document: dict[str, Any] = {
        "partition_key": key,
        "window_start": window.start,
        "model_version": version,
        "scored_at": datetime.now(UTC),
    }
    replaced = ("replaced_version", "flags_added", "flags_removed")
    old_flags, new_flags = flags
    if before is not None and old_flags is None:  # a re-run keeps the last re-score
        document |= {name: before[name] for name in replaced if name in before}
    elif before is not None:
        added, removed = len(new_flags - old_flags), len(old_flags - new_flags)
        document |= {"replaced_version": before["model_version"], "flags_added": added,
                     "flags_removed": removed}  # fmt: skip
        report.rescored_windows += 1
        report.replaced_versions[before["model_version"]] += 1
        report.flags_added += added
        report.flags_removed += removed
    return ReplaceOne({"_id": key}, document, upsert=True)


def windows_to_rescore(
    store: MongoStore, registry: ModelRegistry, policy: RescoringPolicy
) -> list[StaleWindow]:
    """The scored windows within the horizon whose best version now is clearly better than the
    one that scored them (``rescoring.stale_windows``). Reads the horizon's ``scored_windows``
    documents (a few per hour) and the versions involved, never the scores themselves."""
    windows = store.collection(SCORED_WINDOWS)
    newest = windows.find_one({}, {"window_start": 1}, sort=[("window_start", DESCENDING)])
    if newest is None:
        return []
    since = newest["window_start"] - policy.horizon
    scored = {
        doc["window_start"]: doc["model_version"]
        for doc in windows.find({"window_start": {"$gte": since}})
    }
    promoted = registry.promoted_summaries(since)
    known = {v.version for v in promoted}
    versions = promoted + registry.summaries(set(scored.values()) - known)
    return stale_windows(scored, versions, policy)


def _clear(store: MongoStore, keys: list[str]) -> None:
    """Delete these windows' scoring documents (one round trip per collection)."""
    if not keys:
        return
    for name in (MODEL_PREDICTIONS, ENSEMBLE_RESULTS, FLAGGED_TRANSACTIONS):
        store.collection(name).delete_many({"partition_key": {"$in": keys}})
    store.collection(SCORED_WINDOWS).delete_many({"_id": {"$in": keys}})


def _write(
    store: MongoStore,
    scored: tuple[pd.DataFrame, np.ndarray, EnsembleDecision],
    *,
    version: int,
) -> None:
    """Insert a batch's predictions, results and flagged copies (``scored``: the rows' ids,
    windows and details, each model's probability, the ensemble's decision)."""
    rows, probabilities, decision = scored
    now = datetime.now(UTC)
    votes = decision.votes
    ids = rows["_id"].tolist()
    keys = rows["partition_key"].tolist()
    columns = [probabilities[:, m].tolist() for m in range(len(MODEL_NAMES))]
    vote_columns = [votes[:, m].tolist() for m in range(len(MODEL_NAMES))]
    fraud_votes = decision.fraud_votes.tolist()
    is_fraud = decision.is_fraud.tolist()
    confidence = decision.confidence.tolist()
    flagged = decision.flagged.tolist()
    predictions = [
        {
            "_id": tid,
            "partition_key": keys[i],
            "model_version": version,
            "probability": {name: columns[m][i] for m, name in enumerate(MODEL_NAMES)},
            "vote": {name: vote_columns[m][i] for m, name in enumerate(MODEL_NAMES)},
            "scored_at": now,
        }
        for i, tid in enumerate(ids)
    ]
    results = [
        {
            "_id": tid,
            "partition_key": keys[i],
            "model_version": version,
            "fraud_votes": fraud_votes[i],
            "is_fraud": is_fraud[i],
            "confidence": confidence[i],
            "flagged": flagged[i],
            "scored_at": now,
        }
        for i, tid in enumerate(ids)
    ]
    details = rows.loc[decision.flagged, ["_id", *DETAIL_FIELDS]].to_dict("records")
    flagged_results = [
        {**detail, **results[i]}
        for detail, i in zip(details, np.flatnonzero(decision.flagged), strict=True)
    ]
    for name, documents in (
        (MODEL_PREDICTIONS, predictions),
        (ENSEMBLE_RESULTS, results),
        (FLAGGED_TRANSACTIONS, flagged_results),
    ):
        _insert(store, name, documents)


def _insert(store: MongoStore, name: str, documents: list[dict[str, Any]]) -> None:
    """Insert; a transaction already stored under another window (its time was corrected since)
    is replaced instead."""
    if not documents:
        return
    stored = store.insert_new(name, documents, "score")
    if stored:
        store.collection(name).bulk_write(
            [ReplaceOne({"_id": documents[i]["_id"]}, documents[i]) for i in stored],
            ordered=False,
        )

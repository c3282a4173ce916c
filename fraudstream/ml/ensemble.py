"""Ensemble decisions from the three models' fraud probabilities (pure functions, numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EnsembleThresholds:
    """Where a probability becomes a vote, and when a transaction is flagged for review."""

    vote: float = 0.5
    flag_confidence: float = 0.8
    majority: int = 2


@dataclass(frozen=True)
class EnsembleDecision:
    """Per transaction: each model's vote (``votes``, ``(n, models)``), votes for fraud (0 to
    ``models``), majority verdict, mean probability, review flag."""

    models: int
    votes: np.ndarray
    fraud_votes: np.ndarray
    is_fraud: np.ndarray
    confidence: np.ndarray
    flagged: np.ndarray

    @property
    def agreement_rate(self) -> float:
        """Share of transactions on which all models cast the same vote."""
        if not len(self.fraud_votes):
            return 1.0
        unanimous = (self.fraud_votes == 0) | (self.fraud_votes == self.models)
        return float(unanimous.mean())


def decide(probabilities: np.ndarray, thresholds: EnsembleThresholds) -> EnsembleDecision:
    """Combine an ``(n, models)`` matrix of fraud probabilities.

    ``votes``: a model votes fraud at probability >= ``vote``; ``is_fraud``: at least
    ``majority`` models vote fraud;
    ``confidence``: the mean probability; ``flagged``: confidence above ``flag_confidence`` or
    every model voting fraud.
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2:
        raise ValueError(f"expected an (n, models) matrix, got shape {probabilities.shape}")
    models = probabilities.shape[1]
    votes = probabilities >= thresholds.vote
    fraud_votes = votes.sum(axis=1)
    confidence = probabilities.mean(axis=1)
    return EnsembleDecision(
        models=models,
        votes=votes,
        fraud_votes=fraud_votes,
        is_fraud=fraud_votes >= thresholds.majority,
        confidence=confidence,
        flagged=(confidence > thresholds.flag_confidence) | (fraud_votes == models),
    )

import numpy as np
import pytest

from fraudstream.ml.ensemble import EnsembleThresholds, decide

DEFAULT = EnsembleThresholds()


@pytest.mark.parametrize(
    ("probabilities", "votes", "is_fraud", "confidence", "flagged"),
    [
        ([0.1, 0.2, 0.3], 0, False, 0.2, False),
        ([0.6, 0.2, 0.3], 1, False, 0.366667, False),
        ([0.6, 0.5, 0.1], 2, True, 0.4, False),  # a probability at the threshold votes fraud
        ([0.55, 0.6, 0.51], 3, True, 0.553333, True),  # all three vote: flagged at low confidence
        ([0.99, 0.99, 0.45], 2, True, 0.81, True),  # confidence above 0.8
        ([0.9, 0.9, 0.6], 3, True, 0.8, True),
    ],
)
def test_majority_vote_mean_confidence_and_flags(
    probabilities: list[float], votes: int, is_fraud: bool, confidence: float, flagged: bool
) -> None:
    decision = decide(np.array([probabilities]), DEFAULT)
    assert decision.fraud_votes[0] == votes
    assert decision.is_fraud[0] == is_fraud
    assert decision.confidence[0] == pytest.approx(confidence, abs=1e-6)
    assert decision.flagged[0] == flagged


def test_thresholds_are_configurable() -> None:
    strict = EnsembleThresholds(vote=0.7, flag_confidence=0.6, majority=3)
    decision = decide(np.array([[0.65, 0.8, 0.8]]), strict)
    assert (decision.fraud_votes[0], decision.is_fraud[0], decision.flagged[0]) == (2, False, True)


def test_agreement_rate_counts_unanimous_rows() -> None:
    decision = decide(
        np.array([[0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.9, 0.1, 0.1], [0.1] * 3]), DEFAULT
    )
    assert decision.agreement_rate == 0.75
    assert decide(np.zeros((0, 3)), DEFAULT).agreement_rate == 1.0


def test_a_vector_is_refused() -> None:
    with pytest.raises(ValueError, match="matrix"):
        decide(np.array([0.1, 0.2]), DEFAULT)


def test_each_models_vote_is_kept_beside_their_count() -> None:
    decision = decide(np.array([[0.5, 0.49, 0.9], [0.1, 0.2, 0.3]]), DEFAULT)
    assert decision.votes.tolist() == [[True, False, True], [False, False, False]]
    assert decision.fraud_votes.tolist() == [2, 0]

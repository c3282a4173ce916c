"""The model lifecycle's decisions as plain functions: refits, evaluation sets, the gate, which
version scores a window and which windows are re-scored."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from fraudstream.ml.lifecycle import (
    FullFit,
    GatePolicy,
    RefitPolicy,
    evaluation_split,
    gate_decision,
    refit_reason,
    rule_decision,
)
from fraudstream.ml.rescoring import (
    RescoringPolicy,
    StaleWindow,
    VersionSummary,
    as_ranges,
    best_for_window,
    stale_windows,
)
from fraudstream.windows import WINDOW

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LAST_FULL = FullFit(version=3, trained_until=T0, rows=10_000, frauds=100)


@pytest.mark.parametrize(
    ("hours", "rows", "frauds", "words"),
    [
        (1, 500, 10, None),
        (23, 9_000, 99, None),
        (2, 500, 100, "100 labelled frauds since the full fit v3"),
        (2, 10_000, 5, "10000 labelled rows"),
        (24, 50, 1, "data time 2026-11-02T00:00:00+00:00 is 1 d after the full fit v3"),
    ],
)
def test_a_refit_comes_with_doubled_frauds_or_rows_or_a_day_of_data_time(
    hours: int, rows: int, frauds: int, words: str | None
) -> None:
    reason = refit_reason(
        LAST_FULL,
        until=T0 + timedelta(hours=hours),
        rows_since=rows,
        frauds_since=frauds,
        policy=RefitPolicy(),
    )
    assert reason is None if words is None else words in reason


def test_the_first_version_is_a_full_fit() -> None:
    reason = refit_reason(None, until=T0, rows_since=0, frauds_since=0, policy=RefitPolicy())
    assert reason.startswith("first version")


def rows(frauds_at: list[int], n: int) -> pd.DataFrame:
    """``n`` rows a minute apart; frauds at the given positions."""
    labels = np.zeros(n, dtype=int)
    labels[frauds_at] = 1
    times = pd.date_range(T0, periods=n, freq="min", tz=UTC)
    return pd.DataFrame({"tx_datetime": times, "tx_fraud": labels})


def test_the_evaluation_set_is_the_newest_unseen_rows_holding_enough_frauds() -> None:
    unseen = rows([10, 50, 90, 95], 100)
    start = evaluation_split(unseen, 1_000, GatePolicy(min_frauds=3))
    assert start == unseen["tx_datetime"][50]  # rows 50-99 hold three frauds
    assert evaluation_split(unseen, 1_000, GatePolicy(min_frauds=5)) is None  # only four
    # Holding out 50 rows of a 60-row fit would leave the trial fit too little to learn from.
    assert evaluation_split(unseen, 60, GatePolicy(min_frauds=3)) is None


def scores(labels: np.ndarray, signal: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=len(labels))
    return signal * labels + noise


@pytest.fixture
def labels() -> np.ndarray:
    values = np.zeros(3_000, dtype=int)
    values[::30] = 1  # 100 frauds
    return values


def test_the_gate_refuses_only_a_candidate_that_is_clearly_worse(labels: np.ndarray) -> None:
    policy = GatePolicy(min_frauds=50)
    good, poor = scores(labels, 3.0, 1), scores(labels, 0.5, 2)

    refused = gate_decision(labels, poor, good, incumbent_version=4, policy=policy)
    assert not refused.promoted and "kept, not promoted" in refused.decision
    assert refused.evidence["frauds"] == 100 and refused.evidence["rows"] == 3_000
    assert refused.evidence["ap_difference_high"] < 0

    better = gate_decision(labels, good, poor, incumbent_version=4, policy=policy)
    assert better.promoted and "for v4 on 3000 unseen rows with 100 frauds" in better.decision
    # Two equally good models differ by noise only: the interval spans zero, promoted.
    twin = gate_decision(labels, scores(labels, 3.0, 3), good, incumbent_version=4, policy=policy)
    assert twin.promoted
    assert twin.evidence["ap_difference_low"] < 0 < twin.evidence["ap_difference_high"]


def test_a_first_version_is_promoted_with_its_measure(labels: np.ndarray) -> None:
    first = gate_decision(
        labels, scores(labels, 3.0, 1), None, incumbent_version=None, policy=GatePolicy()
    )
    assert first.promoted and first.decision.startswith("first version (AP 0.")


def test_too_few_unseen_frauds_promote_by_a_stated_rule() -> None:
    rule = rule_decision(400, 7, incumbent_version=2, policy=GatePolicy(min_frauds=50))
    assert rule.promoted
    assert "hold 7 frauds, too few to compare on (a comparison needs 50" in rule.decision
    assert rule.evidence == {"rows": 400, "frauds": 7, "incumbent": 2}


def summary(version: int, data_hours: float, full_fit: int, frauds: int) -> VersionSummary:
    return VersionSummary(version, T0 + timedelta(hours=data_hours), full_fit, frauds)


VERSIONS = [
    summary(1, 1, full_fit=1, frauds=10),
    summary(2, 2, full_fit=1, frauds=11),  # an update: one fraud more
    summary(3, 3, full_fit=3, frauds=30),  # a refit
    summary(4, 4, full_fit=3, frauds=31),
    summary(5, 5, full_fit=3, frauds=60),  # a late label wave: twice the frauds
]


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_a_window_gets_the_version_whose_data_ends_closest_before_it() -> None:
    assert best_for_window(VERSIONS, at(3.5)).version == 3
    assert best_for_window(VERSIONS, at(3)).version == 2  # data until 3 is not before 3
    assert best_for_window(VERSIONS, at(9)).version == 5
    assert "oldest data" in best_for_window(VERSIONS, at(0.5)).reason
    assert best_for_window([], at(1)) is None


def test_windows_scored_before_a_newer_full_fit_or_a_label_wave_are_stale() -> None:
    scored = {
        at(2.5): 2,  # best is 2: fine
        at(3.5): 2,  # best is 3, a newer full fit: stale
        at(4.5): 3,  # best is 4, same lineage, one fraud more: not worth it
        at(5.5): 4,  # best is 5, same lineage, twice the frauds: stale
        at(6.5): 5,
    }
    stale = stale_windows(scored, VERSIONS, RescoringPolicy())
    assert stale == [StaleWindow(at(3.5), 2, 3), StaleWindow(at(5.5), 4, 5)]


def test_windows_beyond_the_horizon_keep_their_scores() -> None:
    scored = {at(3.5): 2, at(3.5) + timedelta(days=8): 2}
    stale = stale_windows(scored, VERSIONS, RescoringPolicy(horizon=timedelta(days=7)))
    assert [w.start for w in stale] == [at(3.5) + timedelta(days=8)]


def test_stale_windows_make_few_bounded_ranges() -> None:
    windows = [StaleWindow(T0 + i * WINDOW, 1, 2) for i in (0, 1, 2, 3, 4, 7, 20)]
    ranges = as_ranges(windows, max_windows=8)
    assert [(r.start, r.end) for r in ranges] == [
        (T0, T0 + 8 * WINDOW),  # windows 5 and 6 are scored again too: same result
        (T0 + 20 * WINDOW, T0 + 21 * WINDOW),
    ]
    assert len(as_ranges(windows, max_windows=3)) == 4

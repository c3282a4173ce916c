"""The handbook-style simulator: deterministic, range-independent, three fraud scenarios."""

from datetime import timedelta

import pandas as pd
import pytest

from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.windows import TimeRange, parse_utc

MONTH = TimeRange(parse_utc("2026-03-01T00:00Z"), parse_utc("2026-03-31T00:00Z"))


@pytest.fixture(scope="module")
def month() -> pd.DataFrame:
    return TransactionSimulator(SimulationConfig(seed=7, tx_per_day=4_000)).transactions(MONTH)


def test_the_same_seed_gives_the_same_transactions_and_another_seed_does_not() -> None:
    day = TimeRange(MONTH.start, MONTH.start + timedelta(days=1))
    first = TransactionSimulator(SimulationConfig(seed=1, tx_per_day=2_000)).transactions(day)
    again = TransactionSimulator(SimulationConfig(seed=1, tx_per_day=2_000)).transactions(day)
    other = TransactionSimulator(SimulationConfig(seed=2, tx_per_day=2_000)).transactions(day)
    pd.testing.assert_frame_equal(first, again)
    assert not first["tx_amount"].equals(other["tx_amount"])


def test_a_sub_range_equals_the_slice_of_a_longer_range(month: pd.DataFrame) -> None:
    hour = TimeRange(parse_utc("2026-03-10T11:00Z"), parse_utc("2026-03-10T12:00Z"))
    alone = TransactionSimulator(SimulationConfig(seed=7, tx_per_day=4_000)).transactions(hour)
    inside = (month["tx_datetime"] >= hour.start) & (month["tx_datetime"] < hour.end)
    pd.testing.assert_frame_equal(alone, month.loc[inside].reset_index(drop=True))
    assert len(alone) > 0


def test_volume_and_fraud_rate_follow_the_handbook(month: pd.DataFrame) -> None:
    per_day = len(month) / 30
    assert 3_200 < per_day < 4_400  # 4,000 asked; a few customers have no terminal in reach
    assert 0.004 < month["tx_fraud"].mean() < 0.015  # the handbook's data set: ~0.8 %
    assert month["transaction_id"].is_unique
    assert month["tx_datetime"].is_monotonic_increasing
    assert (month["tx_amount"] >= 0).all()


def test_all_three_fraud_scenarios_occur_with_their_signatures(month: pd.DataFrame) -> None:
    scenarios = month.groupby("tx_fraud_scenario")
    assert set(scenarios.groups) == {0, 1, 2, 3}
    assert (month.loc[month["tx_fraud_scenario"] == 1, "tx_amount"] > 220).all()
    compromised = month.loc[month["tx_fraud_scenario"] == 2]
    # Scenario 2 is per terminal: all of a compromised terminal's transactions for 28 days.
    assert compromised["terminal_id"].nunique() < len(compromised) / 3
    stolen = month.loc[month["tx_fraud_scenario"] == 3]
    genuine_mean = month.loc[month["tx_fraud"] == 0, "tx_amount"].mean()
    assert stolen["tx_amount"].mean() > 3 * genuine_mean  # amounts multiplied by five
    assert (month["tx_fraud"] == (month["tx_fraud_scenario"] > 0)).all()

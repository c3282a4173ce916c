"""Transactions following the Fraud Detection Handbook's simulator (chapter 3, "Transaction data
simulator"): customer and terminal profiles on a square, terminals within a radius of each
customer, Poisson daily counts, Gaussian times around noon and Gaussian amounts, and its three fraud
scenarios: (1) amounts above 220; (2) two terminals a day compromised for 28 days; (3) three
customers a day whose card is used for 14 days, a third of their transactions multiplied by 5.

Counts scale with ``tx_per_day`` at the handbook's densities (5,000 customers and 10,000 terminals
give 10,000 transactions a day). Every day is generated from its own seeded generator, so any
event-time range is deterministic for a seed and independent of the range asked for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from scipy.spatial import KDTree

from fraudstream.windows import TimeRange

HANDBOOK_CUSTOMERS = 5_000
HANDBOOK_TERMINALS = 10_000
HANDBOOK_SIDE = 100.0
RADIUS = 5.0
AMOUNT_FRAUD_THRESHOLD = 220.0
TERMINAL_COMPROMISE_DAYS = 28
CUSTOMER_COMPROMISE_DAYS = 14
_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; equal configs give equal transactions."""

    seed: int = 0
    tx_per_day: int = 10_000

    @property
    def n_customers(self) -> int:
        # mean_nb_tx_per_day ~ U(0, 4): two transactions a day per customer on average.
        return max(1, round(self.tx_per_day / 2))

    @property
    def n_terminals(self) -> int:
        return max(1, round(self.n_customers * HANDBOOK_TERMINALS / HANDBOOK_CUSTOMERS))

    @property
    def side(self) -> float:
        # Keep the handbook's terminal density so a customer sees ~78 terminals in its radius.
        return HANDBOOK_SIDE * float(np.sqrt(self.n_terminals / HANDBOOK_TERMINALS))


class TransactionSimulator:
    """Generates handbook-style transactions and their labels for any event-time range."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config

    @cached_property
    def _profiles(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, 0])
        n_c, n_t, side = self.config.n_customers, self.config.n_terminals, self.config.side
        customer_xy = rng.uniform(0, side, size=(n_c, 2))
        mean_amount = rng.uniform(5, 100, size=n_c)
        terminal_xy = rng.uniform(0, side, size=(n_t, 2))
        # Terminals within RADIUS of each customer, as a CSR structure (offsets + flat ids).
        neighbours = [
            np.sort(np.asarray(found, dtype=np.int64))
            for found in KDTree(terminal_xy).query_ball_point(customer_xy, r=RADIUS)
        ]
        counts = np.array([len(n) for n in neighbours])
        return {
            "mean_amount": mean_amount,
            "std_amount": mean_amount / 2,
            "mean_tx_per_day": rng.uniform(0, 4, size=n_c),
            "available_count": counts,
            "available_offset": np.concatenate(([0], np.cumsum(counts)[:-1])),
            "available_flat": np.concatenate(neighbours) if counts.sum() else np.zeros(0, int),
        }

    def transactions(self, time_range: TimeRange) -> pd.DataFrame:
        """All transactions with ``time_range.start <= tx_datetime < time_range.end``.

        Columns: transaction_id, tx_datetime (UTC), customer_id, terminal_id, tx_amount, tx_fraud,
        tx_fraud_scenario (0 = genuine).
        """
        frames = [self._day(day) for day in _days(time_range)]
        frame = pd.concat(frames, ignore_index=True) if frames else _empty()
        inside = (frame["tx_datetime"] >= time_range.start) & (
            frame["tx_datetime"] < time_range.end
        )
        return frame.loc[inside].reset_index(drop=True)

    def days(self, time_range: TimeRange) -> Iterator[pd.DataFrame]:
        """The same transactions one day at a time (bounded memory for long ranges)."""
        for day in _days(time_range):
            frame = self._day(day)
            inside = (frame["tx_datetime"] >= time_range.start) & (
                frame["tx_datetime"] < time_range.end
            )
            yield frame.loc[inside].reset_index(drop=True)

    def _day(self, day: int) -> pd.DataFrame:
        p = self._profiles
        rng = np.random.default_rng([self.config.seed, 1, day])
        per_customer = rng.poisson(p["mean_tx_per_day"])
        # Customers with no terminal in reach cannot transact (as in the handbook).
        per_customer[p["available_count"] == 0] = 0
        customer = np.repeat(np.arange(self.config.n_customers), per_customer)
        seconds = rng.normal(86_400 / 2, 20_000, size=customer.size)
        amount = rng.normal(p["mean_amount"][customer], p["std_amount"][customer])
        negative = amount < 0
        amount[negative] = rng.uniform(0, p["mean_amount"][customer[negative]] * 2)
        pick = (rng.random(customer.size) * p["available_count"][customer]).astype(np.int64)
        terminal = p["available_flat"][p["available_offset"][customer] + pick]
        keep = (seconds >= 0) & (seconds < 86_400)
        customer, seconds, amount, terminal = (
            customer[keep],
            seconds[keep].astype(np.int64),
            np.round(amount[keep], 2),
            terminal[keep],
        )
        order = np.lexsort((customer, seconds))
        customer, seconds, amount, terminal = (
            customer[order],
            seconds[order],
            amount[order],
            terminal[order],
        )
        scenario = np.zeros(customer.size, dtype=np.int8)
        scenario[amount > AMOUNT_FRAUD_THRESHOLD] = 1
        scenario[np.isin(terminal, self._compromised_terminals(day))] = 2
        third = np.isin(customer, self._compromised_customers(day)) & (
            rng.random(customer.size) < 1 / 3
        )
        amount[third] = np.round(amount[third] * 5, 2)
        scenario[third] = 3
        day_start = _EPOCH + day * _DAY
        stamp = day_start.strftime("%Y%m%d")
        return pd.DataFrame(
            {
                "transaction_id": [
                    f"s{self.config.seed}-{stamp}-{i:06d}" for i in range(customer.size)
                ],
                "tx_datetime": pd.to_datetime(day_start) + pd.to_timedelta(seconds, unit="s"),
                "customer_id": [f"C{c:05d}" for c in customer],
                "terminal_id": [f"T{t:05d}" for t in terminal],
                "tx_amount": amount,
                "tx_fraud": (scenario > 0).astype(np.int8),
                "tx_fraud_scenario": scenario,
            }
        )

    def _compromised_terminals(self, day: int) -> np.ndarray:
        rate = 2 * self.config.n_terminals / HANDBOOK_TERMINALS
        return _union_of_draws(
            self.config.seed, 2, day, TERMINAL_COMPROMISE_DAYS, rate, self.config.n_terminals
        )

    def _compromised_customers(self, day: int) -> np.ndarray:
        rate = 3 * self.config.n_customers / HANDBOOK_CUSTOMERS
        return _union_of_draws(
            self.config.seed, 3, day, CUSTOMER_COMPROMISE_DAYS, rate, self.config.n_customers
        )


def _union_of_draws(seed: int, stream: int, day: int, span: int, rate: float, n: int) -> np.ndarray:
    """Ids drawn on any of the ``span`` days ending at ``day`` (each day's draw is its own)."""
    return np.unique(
        np.concatenate([_draw(seed, stream, d, rate, n) for d in range(day - span + 1, day + 1)])
    )


@lru_cache(maxsize=4_096)
def _draw(seed: int, stream: int, day: int, rate: float, n: int) -> np.ndarray:
    rng = np.random.default_rng([seed, stream, day])
    # The handbook draws exactly 2 terminals / 3 customers a day at its size; at other sizes the
    # same rate per profile, as a Poisson count.
    count = min(n, int(rate) if float(rate).is_integer() else int(rng.poisson(rate)))
    return rng.choice(n, size=count, replace=False)


def _days(time_range: TimeRange) -> range:
    first = (time_range.start - _EPOCH) // _DAY
    last = (time_range.end - _EPOCH - timedelta(microseconds=1)) // _DAY
    return range(first, last + 1)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": pd.Series(dtype=str),
            "tx_datetime": pd.Series(dtype="datetime64[ns, UTC]"),
            "customer_id": pd.Series(dtype=str),
            "terminal_id": pd.Series(dtype=str),
            "tx_amount": pd.Series(dtype=float),
            "tx_fraud": pd.Series(dtype=np.int8),
            "tx_fraud_scenario": pd.Series(dtype=np.int8),
        }
    )

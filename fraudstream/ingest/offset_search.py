"""Finding the first offset of a partition whose record timestamp reaches a target, without
trusting the broker's time index: a bracket narrowed by probes (bisection alternating with
interpolation on the timestamps seen), seeded with the broker's guess."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.consumer.fetcher import ConsumerRecord

# Bisection stops when this few offsets remain: scanning them costs less than more round trips.
LOCATE_PRECISION = 2_048


@dataclass
class OffsetSearch:
    """One partition's search: the answer lies in ``[lo, hi]``; timestamps known near the ends."""

    lo: int
    hi: int
    hi_ms: int | None
    lo_ms: int | None = None
    guess: int | None = None
    found: int | None = None
    steps: int = 0

    @property
    def answer(self) -> int:
        return self.found if self.found is not None else self.lo

    def next_probe(self, target_ms: int) -> int | None:
        """The offset to probe next, or None when the search is over."""
        if self.found is not None:
            return None
        if self.guess is not None:
            guess, self.guess = self.guess, None
            return guess
        if self.hi - self.lo <= LOCATE_PRECISION:
            return None
        self.steps += 1
        if self.lo_ms is None:
            return self.lo
        if self.steps % 2 == 1 or self.hi_ms is None or self.hi_ms <= self.lo_ms:
            return (self.lo + self.hi) // 2
        share = (target_ms - self.lo_ms) / (self.hi_ms - self.lo_ms)
        return min(max(self.lo + int(share * (self.hi - self.lo)), self.lo), self.hi - 1)

    def settle(self, probed: int, records: list[ConsumerRecord], target_ms: int) -> None:
        """Narrow the bracket with what a probe at ``probed`` returned."""
        first_late = next((r for r in records if r.timestamp >= target_ms), None)
        if not records or first_late is records[0]:
            self.hi = probed
            self.hi_ms = records[0].timestamp if records else self.hi_ms
        elif first_late is None:
            self.lo, self.lo_ms = records[-1].offset + 1, records[-1].timestamp
        else:
            self.found = first_late.offset

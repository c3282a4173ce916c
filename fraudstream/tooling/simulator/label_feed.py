"""The partner's label feed: an append-only JSONL file the label API serves from.

A label becomes visible at ``available_at = max(reported_at, time it was appended)``: a partner
publishes what it learns when it learns it. Items are served in ``(available_at, seq)`` order, where
``seq`` is the line's byte offset in the file, so a cursor never skips a label appended later.
"""

from __future__ import annotations

import bisect
import fcntl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from fraudstream.windows import to_millis

FEED_FILE = "label_feed.jsonl"


@dataclass(frozen=True, order=True)
class FeedItem:
    available_ms: int
    seq: int
    transaction_id: str
    tx_fraud: int
    reported_at: str

    @property
    def cursor(self) -> str:
        return f"{self.available_ms}-{self.seq}"

    def to_api(self) -> dict[str, object]:
        return {
            "transaction_id": self.transaction_id,
            "tx_fraud": self.tx_fraud,
            "reported_at": self.reported_at,
        }


def feed_path(state_dir: Path) -> Path:
    return state_dir / FEED_FILE


def append_labels(state_dir: Path, labels: Iterable[tuple[str, int, datetime]]) -> int:
    """Append ``(transaction_id, tx_fraud, reported_at)`` labels to the feed; returns the count."""
    path = feed_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    appended_ms = to_millis(datetime.now(UTC))
    lines = [
        orjson.dumps(
            {
                "transaction_id": tid,
                "tx_fraud": int(fraud),
                "reported_at": reported.isoformat(),
                "available_ms": max(to_millis(reported), appended_ms),
            }
        )
        + b"\n"
        for tid, fraud, reported in labels
    ]
    with open(path, "ab") as feed:
        fcntl.flock(feed, fcntl.LOCK_EX)  # whole lines, even with two simulators at once
        feed.write(b"".join(lines))
        fcntl.flock(feed, fcntl.LOCK_UN)
    return len(lines)


class LabelFeed:
    """Reads the feed incrementally and answers cursor pages (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._items: list[FeedItem] = []
        self._read_bytes = 0
        self._lock = threading.Lock()

    def page(
        self, cursor: str | None, limit: int, now: datetime
    ) -> tuple[list[FeedItem], str | None]:
        """Items after ``cursor`` that are available at ``now``, at most ``limit``."""
        after = _parse_cursor(cursor)
        with self._lock:
            self._refresh()
            start = bisect.bisect_right(self._items, after, key=lambda i: (i.available_ms, i.seq))
            now_ms = to_millis(now)
            page = []
            for item in self._items[start:]:
                if item.available_ms > now_ms or len(page) >= limit:
                    break
                page.append(item)
        return page, (page[-1].cursor if page else None)

    def _refresh(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as feed:
            feed.seek(self._read_bytes)
            data = feed.read()
        complete = data[: data.rfind(b"\n") + 1]  # a half-written last line waits for next time
        offset = self._read_bytes
        for line in complete.splitlines(keepends=True):
            row = orjson.loads(line)
            bisect.insort(
                self._items,
                FeedItem(
                    row["available_ms"],
                    offset,
                    row["transaction_id"],
                    row["tx_fraud"],
                    row["reported_at"],
                ),
            )
            offset += len(line)
        self._read_bytes = offset


def _parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, -1)
    try:
        available, seq = cursor.split("-")
        return int(available), int(seq)
    except ValueError:
        raise ValueError(f"cursor {cursor!r} is not one this API issued") from None

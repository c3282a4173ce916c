"""Polling for what a running system does by itself (the daemon's sensors, runs, automation)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], timeout: float, what: str, *, poll: float = 5.0) -> None:
    """Return once ``check`` holds; fail the test if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(poll)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")

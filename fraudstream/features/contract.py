"""The feature contract between the feature job and the models: which columns a transaction's
features hold, over which windows, and how long a label takes to be known by default.

The Spark job (``features.spark``) computes exactly these columns; the models (``fraudstream.ml``)
train and score on them in this order.
"""

from __future__ import annotations

from collections.abc import Sequence

WINDOW_DAYS = (1, 7, 30)  # customer spend and terminal risk windows
# The handbook's feedback delay: a fraud counts for a terminal's risk this long after it happened
# (a deployment sets its own: ``config.feedback_delay``).
DELAY_DAYS = 7

FEATURE_COLUMNS = [
    "tx_amount",
    "tx_during_weekend",
    "tx_during_night",
    *(
        f"customer_id_{kind}_{days}day_window"
        for days in WINDOW_DAYS
        for kind in ("nb_tx", "avg_amount")
    ),
    *(f"terminal_id_{kind}_{days}day_window" for days in WINDOW_DAYS for kind in ("nb_tx", "risk")),
]


def lookback_days(windows: Sequence[int] = WINDOW_DAYS, delay: int = DELAY_DAYS) -> int:
    """How far back the history of a scored row must reach (terminal windows are delayed)."""
    return max(windows) + delay

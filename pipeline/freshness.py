"""Freshness of the streaming assets: how old their newest window may be before the UI shows them
late (Dagster's freshness policies, evaluated by the daemon; the asset's page and the catalog
show PASS, WARN or FAIL)."""

import dagster as dg

from fraudstream import config


def window_freshness() -> dg.FreshnessPolicy:
    """Late once no window was materialized for ``FRAUDSTREAM_LATE_AFTER_MINUTES`` (30 by
    default: a stalled ingestion or scoring shows within three windows); a warning at two thirds
    of it."""
    late = config.late_after()
    return dg.FreshnessPolicy.time_window(fail_window=late, warn_window=late * 2 / 3)

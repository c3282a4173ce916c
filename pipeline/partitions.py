"""The time grids of the pipeline, all in UTC and starting at ``FRAUDSTREAM_PARTITION_START``."""

import dagster as dg

from fraudstream.config import partition_start
from fraudstream.windows import PARTITION_KEY_FORMAT

# A window exists once it has closed (end_offset 0); keys look like 2026-11-23-10:20.
ten_minute_partitions = dg.TimeWindowPartitionsDefinition(
    start=partition_start(),
    cron_schedule="*/10 * * * *",
    fmt=PARTITION_KEY_FORMAT,
    timezone="UTC",
)

# The training cadence: an hour's partition depends on its six 10-minute windows.
hourly_partitions = dg.TimeWindowPartitionsDefinition(
    start=partition_start(),
    cron_schedule="0 * * * *",
    fmt=PARTITION_KEY_FORMAT,
    timezone="UTC",
)

# The export cadence: a day's partition covers its 144 10-minute windows. The current day exists
# (end_offset=1) so its workbooks can be refreshed while it fills. It starts at midnight of the
# partition start's day: starting at the partition start itself, the windows before the first
# midnight belonged to no day and were never exported.
daily_partitions = dg.TimeWindowPartitionsDefinition(
    start=partition_start().replace(hour=0, minute=0, second=0, microsecond=0),
    cron_schedule="0 0 * * *",
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,
)

# A day's asset reads the 10-minute windows that exist so far (today's later ones do not yet).
DAY_SO_FAR = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)

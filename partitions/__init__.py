"""Partition definitions shared by assets, jobs and sensors."""

from partitions.time_windows import daily_partitions, hourly_partitions, ten_minute_partitions

__all__ = ["daily_partitions", "hourly_partitions", "ten_minute_partitions"]

"""Partition definitions shared by assets, jobs and sensors."""

from partitions.time_windows import hourly_partitions, ten_minute_partitions

__all__ = ["hourly_partitions", "ten_minute_partitions"]

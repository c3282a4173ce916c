"""Partition definitions shared by assets, jobs and sensors."""

from partitions.time_windows import ten_minute_partitions

__all__ = ["ten_minute_partitions"]

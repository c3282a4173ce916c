"""The Dagster glue around ``fraudstream``: assets, checks, sensors, schedules and resources.

Thin by rule: an asset computes its window, calls ``fraudstream`` functions and returns metadata.
Shared glue (``partitions``, ``automation``, ``resources``, ``owners``, ``keys``, ``runs``) may
be imported by every module here; assets, checks, sensors and schedules never import each other —
they refer to assets by key. ``definitions.py`` at the repository root merges it all, and nothing
imports it.
"""

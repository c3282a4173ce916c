"""A transaction's behavioural features: the contract (``contract``), their computation as pure
functions of Spark DataFrames (``spark``), the job that runs them over a range on Spark's
executors (``job``), what its tasks read from and write to MongoDB (``history``), and an entry
point outside Dagster (``offline``).

Features go next to scoring (``fraudstream.ml``); labelled ones to training. May import the shared
kernel, ``fraudstream.store`` and ``fraudstream.labels``.
"""

"""A transaction's behavioural features: the contract (``contract``), their computation as pure
functions of Spark DataFrames (``spark``, run by the pipeline or ``offline``), and the history a
window's features read and where they are stored (``history``).

Features go next to scoring (``fraudstream.ml``); labelled ones to training. May import the shared
kernel, ``fraudstream.store`` and ``fraudstream.labels``.
"""

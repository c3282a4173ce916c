"""fraudstream: the domain code of the card-fraud streaming-batch pipeline (no Dagster imports
outside ``tooling/``).

A transaction's path, one package per step:

    ingest/     Kafka topic and landing files -> validated ``transactions`` (bad ones: dead letters)
    labels/     label files and the partner API -> ``labels``
    features/   transactions + their history (+ known frauds) -> ``transaction_features``
    ml/         labelled features -> model versions; features + best version -> scores and flags
    reporting/  checks' numbers, UI reports, the Excel export

``store/`` is the only way into MongoDB; ``config``, ``windows`` and ``batching`` are the shared
kernel every package may import. A package imports only those listed above it. ``tooling/`` (the
embedded stack, simulator, demo and CLI) sits beside the domain and nothing in it imports tooling.
"""

__version__ = "0.1.0"

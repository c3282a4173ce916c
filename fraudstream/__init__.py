"""fraudstream: the domain code of the card-fraud streaming-batch pipeline (no Dagster imports)."""

__version__ = "0.1.0"

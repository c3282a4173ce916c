"""Every MongoDB collection fraudstream uses, and the indexes its queries rely on.

The fields of each collection are documented in ``docs/contracts.md``. Every index costs
ingestion throughput (bench/ingest.py): only what a query uses is here.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING

# Ingestion
TRANSACTIONS = "transactions"
DEAD_LETTERS = "dead_letters"
INGESTED_WINDOWS = "ingested_windows"  # which windows an ingestion completed, with its offsets
LANDING_FILES = "landing_files"  # the ledger of landing files, by content hash
# Labels
LABELS = "labels"
SOURCE_CURSORS = "source_cursors"  # where the label API was last read up to
# Features
TRANSACTION_FEATURES = "transaction_features"
# Models and scores
MODELS = "models"
MODEL_ARTIFACTS = "model_artifacts"  # GridFS bucket of the pickled models
MODEL_PREDICTIONS = "model_predictions"
ENSEMBLE_RESULTS = "ensemble_results"
FLAGGED_TRANSACTIONS = "flagged_transactions"
SCORED_WINDOWS = "scored_windows"  # which model version scored each window
# Writes whose stamps a training cut must not pass yet (store/stamps.py)
WRITE_LEASES = "write_leases"

SCORE_COLLECTIONS = (MODEL_PREDICTIONS, ENSEMBLE_RESULTS, FLAGGED_TRANSACTIONS)

Index = list[tuple[str, int]]

INDEXES: dict[str, list[Index]] = {
    # The entity indexes serve the features' history reads (fraudstream/features/history.py).
    TRANSACTIONS: [
        [("partition_key", ASCENDING)],
        [("tx_datetime", ASCENDING)],
        [("customer_id", ASCENDING), ("tx_datetime", ASCENDING)],
        [("terminal_id", ASCENDING), ("tx_datetime", ASCENDING)],
    ],
    DEAD_LETTERS: [[("partition_key", ASCENDING)]],
    LABELS: [[("loaded_at", ASCENDING)]],
    TRANSACTION_FEATURES: [
        [("partition_key", ASCENDING)],
        [("tx_datetime", ASCENDING)],
        [("first_computed_at", ASCENDING)],
    ],
    MODELS: [
        [("promoted", ASCENDING), ("data_until", DESCENDING)],
        [("kind", ASCENDING), ("_id", DESCENDING)],
    ],
    **{name: [[("partition_key", ASCENDING)]] for name in SCORE_COLLECTIONS},
    SCORED_WINDOWS: [[("window_start", ASCENDING)], [("partition_key", ASCENDING)]],
    WRITE_LEASES: [[("at", ASCENDING)]],
}

"""Names the glue modules share instead of importing each other: asset keys and run tags."""

import dagster as dg

TRANSACTIONS = dg.AssetKey("transactions")
LABELS = dg.AssetKey("labels")
TRANSACTION_FEATURES = dg.AssetKey("transaction_features")
FRAUD_MODELS = dg.AssetKey("fraud_models")
ENSEMBLE_PREDICTIONS = dg.AssetKey("ensemble_predictions")
MODEL_QUALITY_REPORT = dg.AssetKey("model_quality_report")

# Dagster's tags for a run over a range of partitions (one run, one BackfillPolicy.single_run).
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
TRIGGER = "fraudstream/trigger"  # which sensor requested a run
# The queue starts runs by this tag, highest first: ingestion (transactions and labels) is never
# starved by the downstream work it unblocks.
PRIORITY = "dagster/priority"
INGESTION_PRIORITY = "10"
# Quality reports (monitoring, a run per day) start after any waiting scoring or export run.
REPORTING_PRIORITY = "-1"

# The concurrency pool of training: one run at a time (the stacks set its limit at start).
TRAINING_POOL = "training"

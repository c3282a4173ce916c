"""Feature assets: the handbook's behavioural features on Spark, one 10-minute window per
partition."""

import time
from datetime import UTC, datetime

import dagster as dg

from fraudstream.features.job import compute_features
from fraudstream.windows import TimeRange
from pipeline.automation import window_features
from pipeline.keys import TRANSACTIONS
from pipeline.owners import DATA_ENGINEERING
from pipeline.partitions import ten_minute_partitions
from pipeline.resources import MongoResource, SparkResource


@dg.asset(
    partitions_def=ten_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[TRANSACTIONS],
    group_name="features",
    owners=DATA_ENGINEERING,
    automation_condition=window_features,
    kinds={"spark", "mongodb"},
)
def transaction_features(
    context: dg.AssetExecutionContext, mongo: MongoResource, spark: SparkResource
) -> dg.MaterializeResult:
    """The handbook's features of each window's transactions (weekend/night flags; per customer the
    count and mean amount over 1, 7, 30 days; per terminal the count and fraud risk over 1, 7, 30
    days before the feedback delay, FRAUDSTREAM_FEEDBACK_DELAY_DAYS), computed in one Spark job
    over the range and its customers' and terminals' history; Spark's tasks read and write
    MongoDB `transaction_features` themselves."""
    window = context.partition_time_window
    started = time.monotonic()
    with mongo.store() as store:
        store.ensure_indexes()
    with spark.session() as session:
        run = compute_features(
            session, mongo.source(), TimeRange(window.start, window.end), datetime.now(UTC)
        )
    context.log.info(
        f"features of {run.written} transactions from {run.rows_read} rows read "
        f"({run.mode}, {run.tasks} tasks)"
    )
    return dg.MaterializeResult(
        metadata={
            "transactions": run.written,
            "history_rows": run.rows_read,
            "rows_read_per_transaction": round(run.rows_read / run.written, 2)
            if run.written
            else 0.0,
            "read_mode": run.mode,
            "read_tasks": run.tasks,
            "frauds_known_in_history": run.frauds_known,
            "feature_version": run.version,
            "duration_s": round(time.monotonic() - started, 3),
        }
    )

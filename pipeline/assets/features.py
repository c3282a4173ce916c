"""Feature assets: the handbook's behavioural features on Spark, one 10-minute window per
partition."""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster_pyspark import PySparkResource

from fraudstream.features.contract import DELAY_DAYS, WINDOW_DAYS, lookback_days
from fraudstream.features.history import load_history, write_features
from fraudstream.features.spark import transaction_features as compute_features
from fraudstream.windows import TimeRange
from pipeline.automation import every_window
from pipeline.keys import TRANSACTIONS
from pipeline.owners import DATA_ENGINEERING
from pipeline.partitions import ten_minute_partitions
from pipeline.resources import MongoResource

CHUNK = timedelta(days=1)


@dg.asset(
    partitions_def=ten_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[TRANSACTIONS],
    group_name="features",
    owners=DATA_ENGINEERING,
    automation_condition=every_window,
    kinds={"spark", "mongodb"},
)
def transaction_features(
    context: dg.AssetExecutionContext, mongo: MongoResource, pyspark: PySparkResource
) -> dg.MaterializeResult:
    """The handbook's features of each window's transactions (weekend/night flags; per customer the
    count and mean amount over 1, 7, 30 days; per terminal the count and fraud risk over 1, 7, 30
    days before a 7-day feedback delay), computed on Spark over the window plus its customers' and
    terminals' history, stored in MongoDB `transaction_features`."""
    window = context.partition_time_window
    started = time.monotonic()
    written = history_rows = frauds_known = 0
    with mongo.store() as store:
        store.ensure_indexes()
        # A backfill is computed a day at a time: memory stays bounded by a day's history.
        for chunk in TimeRange(window.start, window.end).chunks(CHUNK):
            history = load_history(
                store,
                chunk,
                customer_days=max(WINDOW_DAYS),
                terminal_days=lookback_days(),
                delay=timedelta(days=DELAY_DAYS),
            )
            if history.empty:
                continue
            features = compute_features(
                pyspark.spark_session.createDataFrame(history), chunk.start, chunk.end
            ).toPandas()
            written += write_features(store, features, datetime.now(UTC))
            history_rows += len(history)
            frauds_known += int(history["fraud_known"].sum())
    context.log.info(f"features of {written} transactions from {history_rows} history rows")
    return dg.MaterializeResult(
        metadata={
            "transactions": written,
            "history_rows": history_rows,
            "frauds_known_in_history": frauds_known,
            "duration_s": round(time.monotonic() - started, 3),
        }
    )

"""Entry point for the features outside Dagster (benchmarks, quality reports): a local Spark
session and the pipeline's feature definitions over a pandas frame of labelled transactions."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from pyspark.sql import SparkSession

from fraudstream.config import spark_settings
from fraudstream.features.spark import transaction_features


def local_spark(cores: int = 2, memory: str = "4g") -> SparkSession:
    """A local session configured like the pipeline's (UTC, Arrow transfers)."""
    settings = spark_settings(f"local[{cores}]", memory, 4 * cores, "fraudstream-offline")
    spark = SparkSession.builder.config(map=settings).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def labelled_features(frame: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """Features of the rows of ``frame`` in ``[start, end)`` over all of ``frame`` as history,
    with their ``tx_fraud``. Every label counts as known at its transaction's time (the
    handbook's assumption), so terminal risk uses it once the feedback delay has passed."""
    spark = local_spark()
    try:
        history = frame[
            ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
        ]
        history = history.assign(fraud_known=frame["tx_fraud"].astype("int32"))
        features = transaction_features(spark.createDataFrame(history), start, end).toPandas()
    finally:
        spark.stop()
    features["tx_datetime"] = pd.to_datetime(features["tx_datetime"]).dt.tz_localize("UTC")
    labels = frame.set_index("transaction_id")["tx_fraud"]
    return features.assign(tx_fraud=features["transaction_id"].map(labels).astype(int))

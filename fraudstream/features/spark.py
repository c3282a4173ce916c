"""The Fraud Detection Handbook's behavioural features as pure functions of Spark DataFrames.

One definition serves training and scoring. Input rows: ``transaction_id``, ``tx_datetime``
(timestamp), ``customer_id``, ``terminal_id``, ``tx_amount`` and ``fraud_known`` (1 when the
transaction was reported fraudulent within the feedback delay of its own time, so that counting it
``delay`` days later never uses a label that was not known then). The input holds the rows to score
plus their history: the customers' last 30 days and the terminals' last 30 + delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from fraudstream.features.contract import DELAY_DAYS, FEATURE_COLUMNS, WINDOW_DAYS

_DAY = 86_400


def with_time_flags(transactions: DataFrame) -> DataFrame:
    """Weekend (Saturday, Sunday) and night (00:00-06:59 UTC) flags."""
    day_of_week = F.dayofweek("tx_datetime")  # 1 = Sunday ... 7 = Saturday
    return transactions.withColumn(
        "tx_during_weekend", day_of_week.isin(1, 7).cast("int")
    ).withColumn("tx_during_night", (F.hour("tx_datetime") <= 6).cast("int"))


def with_customer_spend(transactions: DataFrame, windows: Sequence[int] = WINDOW_DAYS) -> DataFrame:
    """Per customer, the number and mean amount of transactions in the last 1, 7 and 30 days,
    the current one included: the frame ``(t - days, t]``."""
    result = transactions.withColumn("_ts", _seconds())
    for days in windows:
        frame = _frame("customer_id", -days * _DAY + 1, 0)
        result = result.withColumn(
            f"customer_id_nb_tx_{days}day_window", F.count(F.lit(1)).over(frame)
        ).withColumn(f"customer_id_avg_amount_{days}day_window", F.avg("tx_amount").over(frame))
    return result.drop("_ts")


def with_terminal_risk(
    transactions: DataFrame, windows: Sequence[int] = WINDOW_DAYS, delay: int = DELAY_DAYS
) -> DataFrame:
    """Per terminal, the number of transactions and the share known fraudulent in the 1, 7 and 30
    days before the feedback delay: the frame ``(t - delay - days, t - delay]``; risk 0 when the
    frame is empty."""
    result = transactions.withColumn("_ts", _seconds())
    for days in windows:
        frame = _frame("terminal_id", -(delay + days) * _DAY + 1, -delay * _DAY)
        count = F.count(F.lit(1)).over(frame)
        frauds = F.sum("fraud_known").over(frame)
        result = result.withColumn(f"terminal_id_nb_tx_{days}day_window", count).withColumn(
            f"terminal_id_risk_{days}day_window",
            F.when(count > 0, frauds / count).otherwise(F.lit(0.0)),
        )
    return result.drop("_ts")


def transaction_features(
    history: DataFrame, start: datetime, end: datetime, delay: int = DELAY_DAYS
) -> DataFrame:
    """Features of the rows with ``start <= tx_datetime < end``, computed over ``history``
    (terminal risk after a feedback delay of ``delay`` days)."""
    featured = with_terminal_risk(with_customer_spend(with_time_flags(history)), delay=delay)
    in_range = (F.col("tx_datetime") >= F.lit(start)) & (F.col("tx_datetime") < F.lit(end))
    return featured.where(in_range).select(
        "transaction_id", "tx_datetime", "customer_id", "terminal_id", *FEATURE_COLUMNS
    )


def _seconds() -> Column:
    return F.col("tx_datetime").cast("long")


def _frame(entity: str, start: int, end: int) -> Window:
    return Window.partitionBy(entity).orderBy("_ts").rangeBetween(start, end)

"""The handbook features on real local Spark, against values worked out by hand."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession

from fraudstream.features.contract import FEATURE_COLUMNS
from fraudstream.features.spark import (
    transaction_features,
    with_customer_spend,
    with_terminal_risk,
    with_time_flags,
)

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fraudstream-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    yield session
    session.stop()


def frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    columns = ["transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount"]
    data = pd.DataFrame([row[:5] for row in rows], columns=columns)
    data["fraud_known"] = [row[5] if len(row) > 5 else 0 for row in rows]
    return spark.createDataFrame(data)


def by_id(df: DataFrame) -> dict[str, dict]:
    return {row["transaction_id"]: row.asDict() for row in df.collect()}


def test_weekend_and_night_flags(spark: SparkSession) -> None:
    rows = by_id(
        with_time_flags(
            frame(
                spark,
                [
                    ("sat-3am", MONDAY - timedelta(days=2) + timedelta(hours=3), "c", "t", 1.0),
                    (
                        "sun-6:59",
                        MONDAY - timedelta(minutes=1) - timedelta(hours=17),
                        "c",
                        "t",
                        1.0,
                    ),
                    ("mon-7am", MONDAY + timedelta(hours=7), "c", "t", 1.0),
                ],
            )
        )
    )
    assert (rows["sat-3am"]["tx_during_weekend"], rows["sat-3am"]["tx_during_night"]) == (1, 1)
    assert (rows["sun-6:59"]["tx_during_weekend"], rows["sun-6:59"]["tx_during_night"]) == (1, 1)
    assert (rows["mon-7am"]["tx_during_weekend"], rows["mon-7am"]["tx_during_night"]) == (0, 0)


def test_customer_spend_counts_the_current_transaction_and_the_days_before(
    spark: SparkSession,
) -> None:
    at = [timedelta(0), timedelta(hours=12), timedelta(days=2), timedelta(days=8)]
    rows = by_id(
        with_customer_spend(
            frame(
                spark,
                [(f"t{i}", MONDAY + d, "C", "T", 10.0 * (i + 1)) for i, d in enumerate(at)]
                + [("other", MONDAY, "D", "T", 999.0)],
            )
        )
    )
    counts = [
        [rows[f"t{i}"][f"customer_id_nb_tx_{d}day_window"] for i in range(4)] for d in (1, 7, 30)
    ]
    assert counts == [[1, 2, 1, 1], [1, 2, 3, 2], [1, 2, 3, 4]]
    assert rows["t1"]["customer_id_avg_amount_1day_window"] == 15.0
    assert rows["t3"]["customer_id_avg_amount_7day_window"] == 35.0  # t2 (30) and t3 (40)
    assert rows["t3"]["customer_id_avg_amount_30day_window"] == 25.0


def test_terminal_risk_looks_only_at_the_days_before_the_feedback_delay(
    spark: SparkSession,
) -> None:
    rows = by_id(
        with_terminal_risk(
            frame(
                spark,
                [
                    ("fraud-day0", MONDAY, "c1", "T", 1.0, 1),
                    ("genuine-day1", MONDAY + timedelta(days=1), "c2", "T", 1.0, 0),
                    ("day3", MONDAY + timedelta(days=3), "c3", "T", 1.0, 0),
                    ("day8.5", MONDAY + timedelta(days=8, hours=12), "c4", "T", 1.0, 0),
                    ("elsewhere", MONDAY + timedelta(days=8, hours=12), "c4", "U", 1.0, 0),
                ],
            )
        )
    )
    late = rows["day8.5"]
    # 1-day frame (day 0.5, day 1.5]: the genuine one only; 7-day frame: both.
    assert (late["terminal_id_nb_tx_1day_window"], late["terminal_id_risk_1day_window"]) == (1, 0.0)
    assert (late["terminal_id_nb_tx_7day_window"], late["terminal_id_risk_7day_window"]) == (2, 0.5)
    early = rows["day3"]  # everything before it is less than 7 days old: not yet known
    assert (early["terminal_id_nb_tx_30day_window"], early["terminal_id_risk_30day_window"]) == (
        0,
        0.0,
    )
    assert rows["elsewhere"]["terminal_id_nb_tx_30day_window"] == 0


def test_a_shorter_feedback_delay_counts_a_known_fraud_sooner(spark: SparkSession) -> None:
    history = frame(
        spark,
        [
            ("fraud-day0", MONDAY, "c1", "T", 1.0, 1),
            ("day3.5", MONDAY + timedelta(days=3, hours=12), "c2", "T", 1.0, 0),
        ],
    )
    at = MONDAY + timedelta(days=3)
    handbook = by_id(transaction_features(history, at, at + timedelta(days=1)))["day3.5"]
    three_days = by_id(transaction_features(history, at, at + timedelta(days=1), delay=3))
    assert handbook["terminal_id_risk_7day_window"] == 0.0  # not 7 days old yet
    assert three_days["day3.5"]["terminal_id_nb_tx_1day_window"] == 1
    assert three_days["day3.5"]["terminal_id_risk_1day_window"] == 1.0


def test_features_are_returned_for_the_range_only_with_every_column(spark: SparkSession) -> None:
    history = frame(
        spark,
        [(f"h{i}", MONDAY - timedelta(days=i), "C", "T", 5.0) for i in range(1, 20)]
        + [("in", MONDAY + timedelta(minutes=3), "C", "T", 7.0)],
    )
    result = transaction_features(history, MONDAY, MONDAY + timedelta(minutes=10))
    [row] = result.collect()
    assert row["transaction_id"] == "in"
    assert set(FEATURE_COLUMNS) <= set(result.columns)
    assert row["customer_id_nb_tx_30day_window"] == 20

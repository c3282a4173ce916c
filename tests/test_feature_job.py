"""The feature job on Spark's executors against real MongoDB: a long range scanned in one pass
and the same range expanded entity by entity give the same features; every row is read once."""

from collections.abc import Iterator
from datetime import timedelta

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from fraudstream.config import StackRecord
from fraudstream.features.contract import FEATURE_COLUMNS
from fraudstream.features.job import FeatureJob, compute_features
from fraudstream.features.offline import local_spark
from fraudstream.store.access import MongoSource
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator
from fraudstream.windows import TimeRange, parse_utc, partition_key

HISTORY = TimeRange(parse_utc("2026-10-01T00:00Z"), parse_utc("2026-10-12T00:00Z"))
RANGE = TimeRange(parse_utc("2026-10-09T00:00Z"), parse_utc("2026-10-12T00:00Z"))


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    session = local_spark()
    yield session
    session.stop()


@pytest.fixture
def history(store: MongoStore) -> pd.DataFrame:
    """Eleven days of transactions in `transactions`; frauds labelled, some too late to count."""
    frame = TransactionSimulator(SimulationConfig(seed=8, tx_per_day=800)).transactions(HISTORY)
    store.collection("transactions").insert_many(
        {"_id": row.transaction_id, "tx_datetime": row.tx_datetime.to_pydatetime(),
         "customer_id": row.customer_id, "terminal_id": row.terminal_id,
         "tx_amount": float(row.tx_amount), "partition_key": partition_key(row.tx_datetime)}
        for row in frame.itertuples()
    )  # fmt: skip
    frauds = frame[frame["tx_fraud"] == 1]
    store.collection("labels").insert_many(
        {"_id": row.transaction_id, "tx_fraud": 1,
         "reported_at": row.tx_datetime.to_pydatetime() + timedelta(days=1 + i % 10)}
        for i, row in enumerate(frauds.itertuples())
    )  # fmt: skip
    return frame


def stored_features(store: MongoStore) -> pd.DataFrame:
    documents = store.collection("transaction_features").find(
        {}, ["partition_key", *FEATURE_COLUMNS]
    )
    return pd.DataFrame(list(documents)).set_index("_id").sort_index()


def test_a_range_scanned_in_one_pass_matches_the_entity_lookups_and_reads_each_row_once(
    stack: StackRecord, database: str, store: MongoStore, history: pd.DataFrame, spark: SparkSession
) -> None:
    source = MongoSource.from_settings(stack.mongo_uri, database)
    scan = compute_features(
        spark, source, RANGE, RANGE.end, FeatureJob(rows_per_task=1_500, scan_from=timedelta(0))
    )
    in_span = history["tx_datetime"] >= pd.Timestamp(RANGE.start - timedelta(days=37))
    in_range = history["tx_datetime"] >= pd.Timestamp(RANGE.start)
    assert scan.mode == "scan" and scan.tasks > 1
    assert scan.rows_read == int(in_span.sum())  # the range and its lookback, each row once
    assert scan.written == int(in_range.sum()) > 0
    scanned = stored_features(store)
    first_computed = {
        d["_id"]: d["first_computed_at"] for d in store.collection("transaction_features").find()
    }

    lookup = compute_features(
        spark,
        source,
        RANGE,
        RANGE.end,
        FeatureJob(lookup_rows_per_task=500, scan_from=timedelta(days=30)),
    )
    assert lookup.mode == "lookup" and lookup.tasks > 1 and lookup.written == scan.written
    looked_up = stored_features(store)
    assert set(looked_up.index) == set(history.loc[in_range, "transaction_id"])
    pd.testing.assert_frame_equal(scanned, looked_up, check_exact=False, rtol=1e-9)
    assert looked_up["terminal_id_risk_30day_window"].max() > 0  # labels known in time count
    # The re-run updated the stored documents: their first computation time stays.
    again = {
        d["_id"]: d["first_computed_at"] for d in store.collection("transaction_features").find()
    }
    assert again == first_computed


def test_a_range_without_transactions_runs_no_task(
    stack: StackRecord, database: str, spark: SparkSession
) -> None:
    run = compute_features(
        spark, MongoSource.from_settings(stack.mongo_uri, database), RANGE, RANGE.end
    )
    assert (run.tasks, run.written) == (0, 0)


def test_the_feedback_delay_is_a_setting_the_stored_features_record(
    stack: StackRecord,
    database: str,
    store: MongoStore,
    history: pd.DataFrame,
    spark: SparkSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = MongoSource.from_settings(stack.mongo_uri, database)
    handbook = compute_features(spark, source, RANGE, RANGE.end)
    assert handbook.version == "handbook-v1"
    handbook_risk = stored_features(store)["terminal_id_risk_7day_window"]
    monkeypatch.setenv("FRAUDSTREAM_FEEDBACK_DELAY_DAYS", "2")
    job = FeatureJob()
    assert (job.lookback.delay, job.lookback.terminal) == (timedelta(days=2), timedelta(days=32))
    shorter = compute_features(spark, source, RANGE, RANGE.end, job)
    assert shorter.version == "handbook-v1-delay-2d" and shorter.written == handbook.written
    versions = store.collection("transaction_features").distinct("feature_version")
    assert versions == ["handbook-v1-delay-2d"]
    # Labels come 1-10 days after their fraud: with 2 days, fewer count, each one sooner.
    assert not stored_features(store)["terminal_id_risk_7day_window"].equals(handbook_risk)
    monkeypatch.setenv("FRAUDSTREAM_FEEDBACK_DELAY_DAYS", "a week")
    with pytest.raises(ValueError, match="whole number of days"):
        FeatureJob()

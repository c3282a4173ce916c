"""The `transactions` asset through Dagster: single partitions, a range as one run, the CLI."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg

from definitions import defs
from fraudstream.config import StackRecord
from fraudstream.store.mongo import MongoStore
from pipeline.assets.ingestion import transactions
from pipeline.partitions import daily_partitions, hourly_partitions, ten_minute_partitions
from pipeline.resources import KafkaResource
from tests.helpers.producing import HOUR_START, RecordProducer, publish_hour, tx

ROOT = Path(__file__).resolve().parents[1]


def count(store: MongoStore, collection: str) -> int:
    return store.collection(collection).count_documents({})


def test_a_partition_materializes_with_its_metadata_and_twice_changes_no_counts(
    producer: RecordProducer, resources: dict[str, object], store: MongoStore
) -> None:
    publish_hour(producer)
    instance = dg.DagsterInstance.ephemeral()
    for _ in range(2):
        result = dg.materialize(
            [transactions], partition_key="2026-11-23-10:00", resources=resources, instance=instance
        )
        assert result.success
        assert (count(store, "transactions"), count(store, "dead_letters")) == (20, 1)
    metadata = result.asset_materializations_for_node("transactions")[0].metadata
    assert metadata["transactions"].value == 20
    assert metadata["dead_letters"].value == 1
    assert metadata["replaced"].value == 20
    offsets = metadata["offsets"].value.records  # a sortable table, a row per topic partition
    assert sum(row.data["records read"] for row in offsets) >= 20
    assert metadata["records_per_s"].value > 0


def test_late_records_mark_their_window_updated_so_automation_refreshes_it(
    producer: RecordProducer, resources: dict[str, object], store: MongoStore
) -> None:
    publish_hour(producer)  # 10:00-10:59
    instance = dg.DagsterInstance.ephemeral()
    first = "2026-11-23-10:00"
    dg.materialize([transactions], partition_key=first, resources=resources, instance=instance)
    for i in range(3):  # stamped 10:01-10:03, sent after the hour's data
        producer.send_tx(tx(f"late-{i}", HOUR_START + timedelta(minutes=i + 1)), partition=i)
    producer.flush()

    # The newest window's scan reads to the topic's end, where the late records sit.
    result = dg.materialize(
        [transactions], partition_key="2026-11-23-10:50", resources=resources, instance=instance
    )

    assert (
        result.asset_materializations_for_node("transactions")[0].metadata["late_arrivals"].value
        == 3
    )
    events = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("transactions"), asset_partitions=[first]),
        limit=5,
    ).records
    assert len(events) == 2  # its own run, then the late records' run
    late_event = events[0].asset_materialization
    assert late_event.metadata["late_arrivals"].value == 3
    assert late_event.metadata["transactions"].value == 20 + 3
    assert store.collection("transactions").count_documents({"partition_key": first}) == 23


def test_a_range_of_partitions_runs_as_one_run(
    producer: RecordProducer, resources: dict[str, object], store: MongoStore
) -> None:
    publish_hour(producer)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [transactions],
        resources=resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": "2026-11-23-10:00",
            "dagster/asset_partition_range_end": "2026-11-23-10:50",
        },
    )
    assert result.success
    assert count(store, "transactions") == 120
    materialized = instance.get_materialized_partitions(dg.AssetKey("transactions"))
    assert len(materialized) == 6
    assert len(instance.get_runs()) == 1
    for key in materialized:
        assert store.collection("transactions").count_documents({"partition_key": key}) == 20


def test_a_large_range_is_split_over_worker_processes_by_the_asset_itself(
    producer: RecordProducer, resources: dict[str, object], store: MongoStore
) -> None:
    publish_hour(producer)
    settings = resources["kafka"].settings()
    kafka = KafkaResource(
        bootstrap_servers=settings.bootstrap_servers, topic=settings.topic,
        group_id=settings.group_id, ingest_workers=2, parallel_min_records=1,
    )  # fmt: skip
    result = dg.materialize(
        [transactions],
        resources={**resources, "kafka": kafka},
        tags={
            "dagster/asset_partition_range_start": "2026-11-23-10:00",
            "dagster/asset_partition_range_end": "2026-11-23-10:50",
        },
    )
    assert result.success
    metadata = result.asset_materializations_for_node("transactions")[0].metadata
    assert metadata["processes"].value == 2
    assert count(store, "transactions") == 120 == metadata["transactions"].value


def test_the_code_location_defines_the_assets_as_designed() -> None:
    repository = defs.get_repository_def()
    node = repository.asset_graph.get(dg.AssetKey("transactions"))
    assert node.partitions_def == ten_minute_partitions
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.group_name == "ingestion"
    assert {"kafka", "mongodb"} <= set(node.kinds)
    assert node.description
    assert ten_minute_partitions.get_first_partition_key() == "2026-01-01-00:00"
    assert set(repository.get_top_level_resources()) >= {"kafka", "mongo", "spark"}
    graph = repository.asset_graph
    features = graph.get(dg.AssetKey("transaction_features"))
    assert features.parent_keys == {dg.AssetKey("transactions")}
    assert features.partitions_def == ten_minute_partitions
    models = graph.get(dg.AssetKey("fraud_models"))
    assert models.parent_keys == {dg.AssetKey("transaction_features"), dg.AssetKey("labels")}
    assert models.partitions_def == hourly_partitions
    assert repository.get_job("full_retrain_job")
    predictions = graph.get(dg.AssetKey("ensemble_predictions"))
    assert predictions.parent_keys == {
        dg.AssetKey("transaction_features"),
        dg.AssetKey("fraud_models"),
    }
    scored_by = repository.assets_defs_by_key[dg.AssetKey("ensemble_predictions")]
    mapping = scored_by.get_partition_mapping(dg.AssetKey("fraud_models"))
    for window in ("2026-11-23-21:00", "2026-11-23-21:50"):  # the hour before, whole
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            ten_minute_partitions.subset_with_partition_keys([window]),
            ten_minute_partitions,
            hourly_partitions,
        )
        assert upstream.partitions_subset.get_partition_keys() == ["2026-11-23-20:00"]
    export = graph.get(dg.AssetKey("excel_export"))
    assert export.partitions_def == daily_partitions and "excel" in export.kinds
    assert len(graph.asset_check_keys) == 7
    for key in graph.get_all_asset_keys():
        assert graph.get(key).description, f"{key} has no description"


def test_the_dagster_cli_materializes_a_window_from_the_repository_root(
    stack: StackRecord, topic: str, database: str, producer: RecordProducer, store: MongoStore
) -> None:
    publish_hour(producer)
    env = {
        **os.environ,
        "FRAUDSTREAM_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FRAUDSTREAM_MONGO_URI": stack.mongo_uri,
        "FRAUDSTREAM_KAFKA_TOPIC": topic,
        "FRAUDSTREAM_MONGO_DATABASE": database,
    }
    command = [
        *(sys.executable, "-m", "dagster", "asset", "materialize"),
        *("-m", "definitions", "--select", "transactions", "--partition", "2026-11-23-10:20"),
    ]
    for _ in range(2):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        assert count(store, "transactions") == 20

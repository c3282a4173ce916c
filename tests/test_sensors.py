"""Sensors and the schedule evaluated against real services with `build_sensor_context`."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id

from definitions import defs
from fraudstream.config import StackRecord
from fraudstream.ingest.kafka_admin import ensure_topic
from fraudstream.store.mongo import MongoStore
from fraudstream.tooling.simulator.label_feed import append_labels
from pipeline.assets.labels import labels as labels_asset
from pipeline.assets.models import fraud_models
from pipeline.keys import TRANSACTION_FEATURES
from pipeline.resources import LabelApiResource, MongoResource
from pipeline.schedules import daily_full_retrain_schedule, hourly_training_schedule
from pipeline.sensors.kafka_lag import kafka_lag_sensor
from pipeline.sensors.label_api import label_api_sensor
from pipeline.sensors.landing_files import landing_files_sensor
from tests.helpers.files import settled
from tests.helpers.producing import RecordProducer, tx
from tests.helpers.stack import kafka_resource

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def test_the_lag_sensor_requests_closed_windows_as_one_range_and_never_twice(
    stack: StackRecord, topic: str, database: str, producer: RecordProducer
) -> None:
    # 08:00-08:59 on three partitions: the slowest ends 08:58:30, the watermark is 5 min
    # earlier; 08:00-08:40 are closed and 08:50 still waits for late data.
    for i in range(120):
        producer.send_tx(tx(f"t{i:03d}", START + timedelta(seconds=30 * i)), partition=i % 3)
    producer.flush()
    instance = dg.DagsterInstance.ephemeral()
    mongo = MongoResource(uri=stack.mongo_uri, database=database)
    resources = {"kafka": kafka_resource(stack, topic), "mongo": mongo}
    context = dg.build_sensor_context(instance=instance, resources=resources)
    result = kafka_lag_sensor(context)
    [request] = result.run_requests
    assert (request.tags[RANGE[0]], request.tags[RANGE[1]]) == (
        "2026-11-23-07:50",  # one lateness before the oldest record: its stream may start there
        "2026-11-23-08:40",
    )
    assert request.tags["dagster/priority"] == "10"  # queued ahead of downstream runs
    [observation] = result.asset_events
    assert observation.metadata["kafka_lag"].value == 120
    assert observation.metadata["watermark"].value == "2026-11-23T08:53:30+00:00"

    def tick(cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor)
        return kafka_lag_sensor(context)

    # The requested range's run fails (MongoDB unreachable): its windows stay a gap ...
    asset = defs.get_assets_def("transactions")
    down = MongoResource(uri="mongodb://127.0.0.1:9", database=database)
    failed = dg.materialize(
        [asset], instance=instance, resources={**resources, "mongo": down}, tags=request.tags,
        raise_on_error=False,
    )  # fmt: skip
    assert not failed.success
    # ... which the sensor asks for again by itself, as none of its runs is in flight.
    [retry] = tick(result.cursor).run_requests
    assert retry.run_key.startswith("retry:2026-11-23-07:50:2026-11-23-08:50:")
    assert (retry.tags[RANGE[0]], retry.tags[RANGE[1]]) == ("2026-11-23-07:50", "2026-11-23-08:40")

    # The retry runs with MongoDB back; with the offsets committed nothing is asked for twice.
    run = dg.materialize(
        [asset], instance=instance, resources={**resources, "mongo": mongo}, tags=retry.tags
    )
    assert run.success
    again = tick(result.cursor)
    assert not again.run_requests
    assert "no new records" in again.skip_reason.skip_message
    producer.send_tx(tx("late", START + timedelta(minutes=58)), partition=0)  # no new window
    producer.flush()
    assert not tick(result.cursor).run_requests


def test_the_label_api_sensor_follows_the_stored_cursor_and_retries_a_failed_run(
    api: str, tmp_path: Path, stack: StackRecord, database: str
) -> None:
    append_labels(tmp_path, [("a", 1, datetime.now(UTC) - timedelta(minutes=3))])
    mongo = MongoResource(uri=stack.mongo_uri, database=database)
    resources = {"label_api": LabelApiResource(url=api, token="s3cret"), "mongo": mongo}
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor: str | None, **changed: object) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=instance, resources={**resources, **changed}, cursor=cursor
        )
        return label_api_sensor(context)

    result = tick(None)
    [request] = result.run_requests
    assert request.run_config["ops"]["labels"]["config"] == {
        "read_files": False,
        "api_cursor": None,
    }
    # Requested, but nothing stored yet (say the run failed): the position has not moved, so
    # the labels are asked for again once the retry delay has passed, under a new run key.
    waiting = tick(result.cursor)
    assert not waiting.run_requests and "retrying at" in waiting.skip_reason.skip_message
    state = json.loads(result.cursor) | {"requested_at": "2026-01-01T00:00:00+00:00"}
    [retry] = tick(json.dumps(state)).run_requests
    assert retry.run_key != request.run_key

    stored = dg.materialize(
        [labels_asset],
        resources=resources,
        instance=instance,
        run_config={"ops": {"labels": {"config": {"read_files": False}}}},
    )
    assert stored.success
    quiet = tick(result.cursor)
    assert not quiet.run_requests and "no new labels" in quiet.skip_reason.skip_message

    down = LabelApiResource(url="http://127.0.0.1:9", retries=0, timeout_seconds=0.2)
    assert "unreachable" in tick(result.cursor, label_api=down).skip_reason.skip_message
    refused = LabelApiResource(url=api, token="wrong")
    denied = tick(result.cursor, label_api=refused)
    assert "FRAUDSTREAM_LABEL_API_TOKEN" in denied.skip_reason.skip_message


def test_the_hourly_schedule_trains_the_closed_hour_unless_automation_did() -> None:
    with dg.instance_for_test() as instance:
        check_the_schedule(instance)


def check_the_schedule(instance: dg.DagsterInstance) -> None:
    when = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    request = hourly_training_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    )
    assert request.partition_key == "2026-11-23-09:00"
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=fraud_models.key, partition="2026-11-23-09:00")
    )
    skipped = hourly_training_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    )
    assert "already trained" in skipped.skip_message


def test_the_hourly_schedule_waits_while_features_are_computed() -> None:
    with dg.instance_for_test() as instance:
        instance.add_run(
            DagsterRun(
                job_name="__ASSET_JOB",
                run_id=make_new_run_id(),
                status=DagsterRunStatus.STARTED,
                asset_selection=frozenset({TRANSACTION_FEATURES}),
            )
        )
        when = datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
        skipped = hourly_training_schedule(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        )
        assert "is materializing transaction_features" in skipped.skip_message


def test_the_daily_full_retrain_covers_the_hour_that_just_closed() -> None:
    when = datetime(2026, 11, 23, 2, 45, tzinfo=UTC)
    request = daily_full_retrain_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    assert request.partition_key == "2026-11-23-01:00"
    assert request.run_key == "full-retrain:2026-11-23-01:00"


def test_every_sensor_and_schedule_runs_by_default() -> None:
    repository = defs.get_repository_def()
    for sensor in repository.sensor_defs:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name
        assert sensor.description, sensor.name
    schedules = {schedule.name: schedule for schedule in repository.schedule_defs}
    assert set(schedules) == {"hourly_training_schedule", "daily_full_retrain_schedule"}
    for schedule in schedules.values():
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, schedule.name
        assert schedule.description, schedule.name


def empty_topic(stack: StackRecord, name: str) -> str:
    ensure_topic(stack.kafka_bootstrap, f"empty-{name}", 1)
    return f"empty-{name}"


def test_the_file_sensor_requests_each_settled_file_once_and_quarantines_corrupt_ones(
    stack: StackRecord, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    (landing / "transactions").mkdir(parents=True)
    (landing / "labels").mkdir()
    monkeypatch.setenv("FRAUDSTREAM_LANDING_DIR", str(landing))
    resources = {"mongo": MongoResource(uri=stack.mongo_uri, database=database)}

    def tick(cursor: str | None) -> dg.SensorResult:
        return landing_files_sensor(dg.build_sensor_context(resources=resources, cursor=cursor))

    batch = landing / "transactions" / "late.csv"
    batch.write_text(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n"
        "b1,2026-11-23 08:01:00,c1,t1,10.0\n"
        "b2,2026-11-23 08:15:00,c2,t2,20.0\n"
        "b3,2026-11-23 09:05:00,c3,t3,30.0\n"
        "b4,2099-01-01 00:00:00,c4,t4,40.0\n"  # no window holds it: a dead letter, no run
    )
    (landing / "labels" / "labels.csv").write_text("transaction_id,tx_fraud\nb1,1\n")
    first = tick(None)
    assert not first.run_requests and "still being written" in first.skip_reason.skip_message

    for path in (batch, landing / "labels" / "labels.csv"):
        settled(path)
    second = tick(first.cursor)
    windows = sorted(
        (r.tags[RANGE[0]], r.tags[RANGE[1]]) for r in second.run_requests if RANGE[0] in r.tags
    )
    assert windows == [
        ("2026-11-23-08:00", "2026-11-23-08:10"),  # consecutive windows: one run
        ("2026-11-23-09:00", "2026-11-23-09:00"),
    ]
    [labels_run] = [r for r in second.run_requests if RANGE[0] not in r.tags]
    assert labels_run.run_config["ops"]["labels"]["config"]["files"] == [
        str(landing / "labels" / "labels.csv")
    ]

    # The same bytes under a new name are not requested again; a corrupt file is quarantined.
    (landing / "transactions" / "copy.csv").write_bytes(batch.read_bytes())
    (landing / "transactions" / "broken.csv").write_bytes(b"\xff\xfe garbage")
    (landing / "transactions" / "future.csv").write_text(
        "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount\nf1,2099-01-01,c,t,1\n"
    )
    for name in ("copy.csv", "broken.csv", "future.csv"):
        settled(landing / "transactions" / name)
    third = tick(second.cursor)
    assert not third.run_requests and "quarantined broken.csv" in third.skip_reason.skip_message
    assert (landing / "quarantine" / "transactions" / "broken.csv.reason.txt").exists()
    reason = landing / "quarantine" / "transactions" / "future.csv.reason.txt"
    assert "no row with a tx_datetime a window can hold" in reason.read_text()

    # The batch run loads the file's rows of its windows beside the topic's.
    [morning] = [r for r in second.run_requests if r.tags.get(RANGE[0]) == "2026-11-23-08:00"]
    run = dg.materialize(
        [defs.get_assets_def("transactions")],
        resources={**resources, "kafka": kafka_resource(stack, empty_topic(stack, database))},
        run_config=morning.run_config,
        tags=morning.tags,
        raise_on_error=False,
    )
    assert run.success
    stored = MongoStore.connect(stack.mongo_uri, database)
    assert {d["_id"] for d in stored.collection("transactions").find()} == {"b1", "b2"}
    [letter] = stored.collection("dead_letters").find()
    assert letter["position"]["line"] == 5 and "in the future" in letter["error"]
    stored.close()

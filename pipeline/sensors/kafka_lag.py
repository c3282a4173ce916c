"""The Kafka-lag sensor: ingestion runs for closed 10-minute windows that hold new records."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from fraudstream import config
from fraudstream.ingest.lag import (
    TopicLag,
    WindowRange,
    emptied_partitions,
    failed_windows,
    late_sweep,
    topic_lag,
    windows_to_ingest,
)
from fraudstream.store.mongo import MongoStore
from fraudstream.windows import partition_key, window_of_key
from pipeline.keys import (
    INGESTION_PRIORITY,
    PRIORITY,
    RANGE_END,
    RANGE_START,
    TRANSACTIONS,
    TRIGGER,
)
from pipeline.metadata import table
from pipeline.partitions import ten_minute_partitions
from pipeline.resources import KafkaResource, MongoResource
from pipeline.runs import unfinished_runs

SENSOR_NAME = "kafka_lag_sensor"
# A week: a catch-up takes a few runs (each start costs seconds), bounded and showing progress.
MAX_WINDOWS_PER_RUN = 1008
RETRY_FAILED_AFTER = timedelta(minutes=10)  # windows whose runs failed are asked for again


KAFKA_LAG_SENSOR_DESCRIPTION = (
    "Each tick measures, per topic partition, the true end, the committed offset, the lag and "
    "the newest record time (the event-time watermark is the slowest partition's, minus the "
    "allowed lateness), records them as an observation of `transactions`, and requests "
    "ingestion of every closed window that may hold unconsumed records and is neither in "
    "the ingestion ledger nor already requested: consecutive windows as one run over the "
    "range (up to a week each). Windows still within the allowed lateness wait. Windows whose "
    "runs failed are requested again every 10 minutes while none of its runs is in flight, so "
    "a gap heals once its cause (MongoDB or the broker down) is gone. When the topic is idle and "
    "still holds records stamped before the windows requested (late arrivals), the newest "
    "window is read again so they reach their own windows. Off: nothing is requested; "
    "on again: it resumes from its cursor."
)


@dg.sensor(
    name=SENSOR_NAME,
    asset_selection=[TRANSACTIONS],
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=KAFKA_LAG_SENSOR_DESCRIPTION,
)
def kafka_lag_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, mongo: MongoResource
) -> dg.SensorResult:
    """Ingestion runs for closed windows with unconsumed records; the lag as an observation."""
    state = json.loads(context.cursor) if context.cursor else {}
    requested_until = _moment(state.get("requested_until"))
    with kafka.reader() as reader:
        extents = reader.extents()
        committed = reader.committed()
        first_unconsumed = reader.first_unconsumed_ms(committed, extents)
    now = datetime.now(UTC)
    ends = {str(p): extent.end for p, extent in extents.items()}
    moved_at = now if ends != state.get("ends") else datetime.fromisoformat(state["ends_moved_at"])
    idle = now - moved_at >= config.idle_close()
    lag = topic_lag(extents, committed, first_unconsumed, kafka.allowed_lateness(), now, idle=idle)
    unplanned_from = requested_until or ten_minute_partitions.start
    checked_from = _moment(state.get("checked_from") or state.get("requested_from"))
    with mongo.store() as store:
        emptied = emptied_partitions(extents, store.topic_high_water(kafka.settings().topic))
        ingested = _ingested_windows(store, min(unplanned_from, checked_from or unplanned_from))
    if emptied:
        context.log.warning(
            f"partition(s) {emptied} end below offsets already ingested: the topic was re-created "
            "or the broker lost its memory. Windows not ingested before can no longer be read "
            "from Kafka (their runs fail saying so): load them as batch files in "
            "landing/transactions/."
        )
    observation = _observation(lag, emptied)
    plan = windows_to_ingest(
        lag, requested_until, ingested, ten_minute_partitions.start, MAX_WINDOWS_PER_RUN
    )
    if plan:
        requests = [
            _request(r, f"ingest:{partition_key(r.start)}:{partition_key(r.end)}") for r in plan
        ]
        cursor = _cursor(checked_from or plan[0].start, plan[-1].end, ends, moved_at)
        return dg.SensorResult(run_requests=requests, asset_events=[observation], cursor=cursor)
    requests, checked_from = _repairs(
        context.instance, lag, checked_from, requested_until, ingested, ends, now
    )
    cursor = _cursor(checked_from, requested_until, ends, moved_at)
    if requests:
        return dg.SensorResult(run_requests=requests, asset_events=[observation], cursor=cursor)
    return dg.SensorResult(
        skip_reason=_why_nothing(lag, requested_until), asset_events=[observation], cursor=cursor
    )


def _repairs(
    instance: dg.DagsterInstance,
    lag: TopicLag,
    checked_from: datetime | None,
    requested_until: datetime | None,
    ingested: set[datetime],
    ends: dict[str, int],
    now: datetime,
) -> tuple[list[dg.RunRequest], datetime | None]:
    """With nothing new to ingest and none of its runs in flight: the windows whose runs failed
    (again at most once per retry interval), else late records at the end of an idle topic
    (the newest window's scan reaches them). Also where the next check for failed windows
    starts: the first one still missing (every window before it is in the ledger)."""
    if unfinished_runs(instance, SENSOR_NAME) or checked_from is None:
        return [], checked_from
    failed = failed_windows(checked_from, requested_until, ingested, MAX_WINDOWS_PER_RUN)
    if failed:
        epoch = int(now.timestamp() // RETRY_FAILED_AFTER.total_seconds())
        return [
            _request(r, f"retry:{partition_key(r.start)}:{partition_key(r.end)}:{epoch}")
            for r in failed
        ], failed[0].start
    sweep = late_sweep(lag, requested_until)
    if sweep is None:
        return [], requested_until
    late = _request(sweep, f"late-sweep:{partition_key(sweep.start)}:{sum(ends.values())}")
    return [late], requested_until


def _request(windows: WindowRange, run_key: str) -> dg.RunRequest:
    """One ingestion run over consecutive windows."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[TRANSACTIONS],
        tags={
            RANGE_START: partition_key(windows.start),
            RANGE_END: ten_minute_partitions.get_partition_key_for_timestamp(
                windows.end.timestamp() - 1
            ),
            TRIGGER: SENSOR_NAME,
            PRIORITY: INGESTION_PRIORITY,
            "dagster/max_retries": "2",
        },
    )


def _ingested_windows(store: MongoStore, since: datetime) -> set[datetime]:
    """Starts of the windows from ``since`` on that the ingestion ledger holds (every window of a
    successful run is recorded, empty ones too): one indexed range read of the windows in
    question, whatever the partitions' history."""
    return {window_of_key(key).start for key in store.ingested_windows_since(partition_key(since))}


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _cursor(
    checked_from: datetime | None,
    requested_until: datetime | None,
    ends: dict[str, int],
    moved_at: datetime,
) -> str:
    """Windows requested so far (every one before ``checked_from`` is in the ledger), and when
    the topic's ends last moved (idle detection)."""
    return json.dumps(
        {
            "checked_from": checked_from.isoformat() if checked_from else None,
            "requested_until": requested_until.isoformat() if requested_until else None,
            "ends": ends,
            "ends_moved_at": moved_at.isoformat(),
        }
    )


def _observation(lag: TopicLag, emptied: list[int]) -> dg.AssetObservation:
    partitions = table(
        ["partition", "end", "committed", "lag", "newest record"],
        [
            [p.partition, p.end, "-" if p.committed is None else p.committed, p.lag,
             p.newest.isoformat() if p.newest else "-"]
            for p in lag.partitions
        ],
    )  # fmt: skip
    watermark = lag.watermark
    return dg.AssetObservation(
        asset_key=TRANSACTIONS,
        metadata={
            "kafka_lag": lag.total,
            "watermark": watermark.isoformat() if watermark else "no data",
            "watermark_age_s": round((datetime.now(watermark.tzinfo) - watermark).total_seconds())
            if watermark
            else -1,
            "partitions": partitions,
            "emptied_partitions": ", ".join(map(str, emptied)) or "none",
        },
    )


def _why_nothing(lag: TopicLag, requested_until: datetime | None) -> str:
    if lag.watermark is None:
        return "the topic holds no records yet"
    if lag.total == 0:
        return f"no new records (lag 0); watermark {lag.watermark.isoformat()}"
    return (
        f"{lag.total} records not ingested, but no window is closed and unrequested: watermark "
        f"{lag.watermark.isoformat()}, windows requested until "
        f"{requested_until.isoformat() if requested_until else 'none'}; a window closes once the "
        "watermark passes its end (allowed lateness), or once the topic has been idle for "
        f"{config.idle_close()}"
    )

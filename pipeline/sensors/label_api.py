"""The REST-source sensor: polls the partner's label API from the position the `labels` runs
stored, and requests a run when there are labels after it."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from fraudstream.labels.api_client import LabelApiUnavailable
from fraudstream.labels.sources import stored_api_cursor
from pipeline.keys import INGESTION_PRIORITY, LABELS, PRIORITY, TRIGGER
from pipeline.resources import LabelApiResource, MongoResource
from pipeline.runs import unfinished_runs

SENSOR_NAME = "label_api_sensor"
PEEK = 100  # items read to see whether there are new ones; the run reads them all
RETRY_AFTER = timedelta(minutes=5)  # a run that ended without moving the stored cursor

LABEL_API_SENSOR_DESCRIPTION = (
    "Polls the label API (timeouts, retries with backoff, bounded bodies, bearer token from "
    "FRAUDSTREAM_LABEL_API_TOKEN) from the cursor the `labels` runs stored after the last page "
    "they wrote; labels after it request a `labels` run that reads on from there. The position "
    "moves only with stored labels: a failed run is requested again (after 5 minutes), nothing "
    "is skipped. API down or answering garbage: the tick says so. Off: nothing is polled; on "
    "again: it resumes from the stored position."
)


@dg.sensor(
    name=SENSOR_NAME,
    asset_selection=[LABELS],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=LABEL_API_SENSOR_DESCRIPTION,
)
def label_api_sensor(
    context: dg.SensorEvaluationContext, label_api: LabelApiResource, mongo: MongoResource
) -> dg.SensorResult:
    """A `labels` run when the label API has items after the stored cursor."""
    if not label_api.configured():
        return dg.SensorResult(
            skip_reason="no label API configured: set FRAUDSTREAM_LABEL_API_URL or start the "
            "embedded stack (`fraudstream up`)"
        )
    if unfinished_runs(context.instance, SENSOR_NAME):
        return dg.SensorResult(skip_reason="a `labels` run is reading the API; waiting for it")
    with mongo.store() as store:
        stored = stored_api_cursor(store)
    try:
        with label_api.client() as client:
            page = client.page(stored, limit=PEEK)
    except LabelApiUnavailable as error:
        return dg.SensorResult(skip_reason=str(error))
    position = stored or "start"
    if not page.labels and not page.invalid:
        return dg.SensorResult(skip_reason=f"no new labels after the stored cursor {position}")
    state = json.loads(context.cursor) if context.cursor else {}
    now = datetime.now(UTC)
    attempt = 0
    if state and state["stored"] == stored:  # requested before; the cursor has not moved since
        requested_at = datetime.fromisoformat(state["requested_at"])
        if now - requested_at < RETRY_AFTER:
            return dg.SensorResult(
                skip_reason=f"the labels after {position} were requested at "
                f"{requested_at:%H:%M:%S}; retrying at {requested_at + RETRY_AFTER:%H:%M:%S} "
                "if the stored cursor has not moved by then"
            )
        attempt = state["attempt"] + 1
    context.log.info(f"labels after the stored cursor {position} (attempt {attempt + 1})")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"labels-api:{position}:{attempt}",
                asset_selection=[LABELS],
                run_config={
                    "ops": {"labels": {"config": {"read_files": False, "api_cursor": None}}}
                },
                tags={
                    TRIGGER: SENSOR_NAME,
                    PRIORITY: INGESTION_PRIORITY,
                    "dagster/max_retries": "2",
                },
            )
        ],
        cursor=json.dumps({"stored": stored, "attempt": attempt, "requested_at": now.isoformat()}),
    )

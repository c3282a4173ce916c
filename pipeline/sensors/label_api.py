"""The REST-source sensor: polls the partner's label API and requests a `labels` run for new
items; its position is the sensor cursor."""

import dagster as dg

from fraudstream.labels.api_client import LabelApiUnavailable
from pipeline.keys import LABELS, TRIGGER
from pipeline.resources import LabelApiResource

MAX_PAGES_PER_TICK = 20  # bounds a tick's time whatever the backlog: 20 x 5,000 labels


LABEL_API_SENSOR_DESCRIPTION = (
    "Polls the label API (timeouts, retries with backoff, bearer token from "
    "FRAUDSTREAM_LABEL_API_TOKEN) from its cursor; new items request a `labels` run that "
    "reads the API from that cursor. API down: the tick says so and the cursor stays. Off: "
    "nothing is polled; on again: it resumes from its cursor."
)


@dg.sensor(
    name="label_api_sensor",
    asset_selection=[LABELS],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=LABEL_API_SENSOR_DESCRIPTION,
)
def label_api_sensor(
    context: dg.SensorEvaluationContext, label_api: LabelApiResource
) -> dg.SensorResult:
    """A `labels` run when the label API has items after the cursor."""
    if not label_api.configured():
        return dg.SensorResult(
            skip_reason="no label API configured: set FRAUDSTREAM_LABEL_API_URL or start the "
            "embedded stack (`fraudstream up`)"
        )
    start = context.cursor or None
    cursor, items = start, 0
    try:
        with label_api.client() as client:
            for page_number, (_, page) in enumerate(client.pages(start)):
                items += len(page.labels) + len(page.invalid)
                if page.next_cursor is not None:
                    cursor = page.next_cursor
                if page_number + 1 == MAX_PAGES_PER_TICK:
                    break
    except LabelApiUnavailable as error:
        return dg.SensorResult(skip_reason=str(error), cursor=context.cursor)
    if not items:
        return dg.SensorResult(skip_reason=f"no new labels after cursor {start or 'start'}")
    context.log.info(f"{items} new label(s) after cursor {start or 'start'}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"labels-api:{start or 'start'}:{cursor}",
                asset_selection=[LABELS],
                run_config={
                    "ops": {"labels": {"config": {"read_files": False, "api_cursor": start}}}
                },
                tags={TRIGGER: "label_api_sensor", "dagster/max_retries": "2"},
            )
        ],
        cursor=cursor,
    )

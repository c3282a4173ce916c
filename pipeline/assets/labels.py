"""The labels asset: fraud verdicts from landing files and the partner's label API."""

import dagster as dg

from fraudstream import config as settings
from fraudstream.config import ServiceUnavailable
from fraudstream.ingest.landing import LABELS_KIND, confined
from fraudstream.labels.sources import load_api_labels, load_label_files, stored_api_cursor
from pipeline.owners import DATA_ENGINEERING
from pipeline.resources import LabelApiResource, MongoResource


class LabelsConfig(dg.Config):
    """Which label sources a run reads (the file and REST sensors say; by hand, all of them)."""

    files: list[str] = []  # paths under landing/labels; empty: every file not loaded yet
    read_files: bool = True
    read_api: bool = True
    api_cursor: str | None = None  # where to read the API from; None: after the last stored page


@dg.asset(group_name="ingestion", owners=DATA_ENGINEERING, kinds={"mongodb", "rest"})
def labels(
    context: dg.AssetExecutionContext,
    config: LabelsConfig,
    mongo: MongoResource,
    label_api: LabelApiResource,
) -> dg.MaterializeResult:
    """Fraud labels (`labels`: `tx_fraud` per transaction, with when it was reported) loaded from
    CSV/JSONL files in `landing/labels/` (each content once; unreadable files quarantined, bad
    rows dead-lettered) and from the label API after its stored cursor. Idempotent."""
    directory = settings.landing_dir() / LABELS_KIND
    api_error = None
    with mongo.store() as store:
        from_files = (
            load_label_files(
                store,
                directory,
                context.run.run_id,
                confined(config.files, directory) if config.files else None,
            )
            if config.read_files
            else None
        )
        from_api = None
        if config.read_api and label_api.configured():
            try:
                with label_api.client() as client:
                    cursor = config.api_cursor or stored_api_cursor(store)
                    from_api = load_api_labels(store, client, context.run.run_id, cursor)
            except ServiceUnavailable as error:
                api_error = str(error)
    metadata: dict[str, dg.RawMetadataValue] = {
        "landing_dir": str(directory),
        "label_api": "read" if from_api else "not configured or not asked",
    }
    if from_files:
        for name, reason in from_files.quarantined.items():
            context.log.error(f"quarantined {name}: {reason}")
        metadata |= {
            "files_loaded": len(from_files.files),
            "files": ", ".join(from_files.files) or "none",
            "files_already_loaded": len(from_files.skipped_files),
            "files_quarantined": len(from_files.quarantined),
            "file_rows": from_files.rows,
            "file_labels_new": from_files.written.new,
            "file_labels_changed": from_files.written.changed,
            "file_dead_letters": from_files.dead_letters,
        }
    if from_api:
        metadata |= {
            "api_items": from_api.api_items,
            "api_labels_new": from_api.written.new,
            "api_labels_changed": from_api.written.changed,
            "api_dead_letters": from_api.dead_letters,
            "api_cursor": from_api.api_cursor or "start",
        }
    if api_error:
        # Files are stored and remembered; failing makes the API outage visible, and a retry
        # reads the API only.
        raise dg.Failure(description=api_error, metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)

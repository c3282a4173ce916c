"""The export asset: each day's data as Excel workbooks for the people who review fraud."""

import dagster as dg

from fraudstream import config
from fraudstream.reporting.excel_export import export_day
from fraudstream.reporting.reports import markdown_table
from fraudstream.windows import TimeRange
from pipeline.automation import export_refresh
from pipeline.keys import ENSEMBLE_PREDICTIONS, TRANSACTIONS
from pipeline.owners import DATA_ENGINEERING
from pipeline.partitions import DAY_SO_FAR, daily_partitions
from pipeline.resources import MongoResource


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # Today's partition exists while the day fills; its later windows do not exist yet, and an
    # automation backfill that includes it must not fail on them.
    deps=[
        dg.AssetDep(asset, partition_mapping=DAY_SO_FAR)
        for asset in (TRANSACTIONS, ENSEMBLE_PREDICTIONS)
    ],
    group_name="export",
    owners=DATA_ENGINEERING,
    automation_condition=export_refresh,
    kinds={"excel", "mongodb"},
)
def excel_export(context: dg.AssetExecutionContext, mongo: MongoResource) -> dg.MaterializeResult:
    """The day's `transactions`, `model_predictions`, `ensemble_results` and
    `flagged_transactions` as .xlsx workbooks plus `summary.xlsx` (export time, row counts, model
    versions) under `<export dir>/<day>/`. Streamed from MongoDB in constant memory; sheets split
    at Excel's 1,048,576-row limit; a re-run replaces the files."""
    exported = []
    with mongo.store() as store:
        for day in context.partition_keys:
            window = daily_partitions.time_window_for_partition_key(day)
            exported.append(
                export_day(store, config.export_dir() / day, TimeRange(window.start, window.end))
            )
    files = markdown_table(
        ["day", "workbook", "rows", "sheets"],
        [
            [day, name, file.rows, file.sheets]
            for day, export in zip(context.partition_keys, exported, strict=True)
            for name, file in export.files.items()
        ],
    )
    last = exported[-1]
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(last.directory)),
            "summary": dg.MetadataValue.path(str(last.summary)),
            "rows": sum(f.rows for e in exported for f in e.files.values()),
            "flagged": sum(e.files["flagged_transactions"].rows for e in exported),
            "model_versions": ", ".join(
                sorted({f"v{v}" for e in exported for v in e.model_versions})
            )
            or "none",
            "files": dg.MetadataValue.md(files),
        }
    )

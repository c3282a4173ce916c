"""The export asset: each day's data as Excel workbooks for the people who review fraud."""

import dagster as dg

from fraudstream import config
from fraudstream.reporting.excel_export import export_day
from fraudstream.windows import TimeRange
from pipeline.automation import export_refresh
from pipeline.keys import ENSEMBLE_PREDICTIONS, TRANSACTIONS
from pipeline.metadata import table
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
    """The day's `transactions`, `model_predictions`, `ensemble_results`,
    `flagged_transactions` and `scored_windows` as .xlsx workbooks, one part per hour
    (`<export dir>/<day>/hour-HH/`), plus the day's `summary.xlsx`. Only the hours whose data
    changed since their part was written are exported again; streamed from MongoDB in constant
    memory; sheets split at Excel's 1,048,576-row limit. A range is written newest day first."""
    exported = []
    # Newest day first: the day reviewers work on is ready before a catch-up's older ones.
    newest_first = sorted(context.partition_keys, reverse=True)
    with mongo.store() as store:
        for day in newest_first:
            window = daily_partitions.time_window_for_partition_key(day)
            exported.append(
                export_day(store, config.export_dir() / day, TimeRange(window.start, window.end))
            )
    days = table(
        ["day", "hour parts", "written now", "transactions", "flagged"],
        [
            [day, len(e.parts), ", ".join(e.written) or "none", e.rows["transactions"],
             e.rows["flagged_transactions"]]
            for day, e in zip(newest_first, exported, strict=True)
        ],
    )  # fmt: skip
    last = exported[0]
    return dg.MaterializeResult(
        metadata={
            "directory": dg.MetadataValue.path(str(last.directory)),
            "summary": dg.MetadataValue.path(str(last.summary)),
            "rows": sum(sum(e.rows.values()) for e in exported),
            "flagged": sum(e.rows["flagged_transactions"] for e in exported),
            "hour_parts_written": sum(len(e.written) for e in exported),
            "model_versions": ", ".join(
                sorted({f"v{v}" for e in exported for v in e.model_versions})
            )
            or "none",
            "days": days,
        }
    )

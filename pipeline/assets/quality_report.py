"""The quality asset: how well each day's scores ranked the frauds, once their labels arrived."""

import dagster as dg

from fraudstream.reporting.plots import markdown_image, pr_curves_png
from fraudstream.reporting.quality import labelled_scores, score_metrics
from fraudstream.reporting.reports import metrics_table, versions_table
from fraudstream.windows import TimeRange
from pipeline.automation import quality_refresh
from pipeline.keys import ENSEMBLE_PREDICTIONS, LABELS
from pipeline.metadata import report_table
from pipeline.owners import ML
from pipeline.partitions import DAY_SO_FAR, daily_partitions
from pipeline.resources import MongoResource


@dg.asset(
    partitions_def=daily_partitions,
    # One run per day: each day's report is its own materialization with its own pictures.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    deps=[dg.AssetDep(ENSEMBLE_PREDICTIONS, partition_mapping=DAY_SO_FAR), LABELS],
    group_name="quality",
    owners=ML,
    automation_condition=quality_refresh,
    kinds={"scikit-learn", "mongodb"},
)
def model_quality_report(
    context: dg.AssetExecutionContext, mongo: MongoResource
) -> dg.MaterializeResult:
    """The day's scored transactions whose labels have arrived: AUC ROC and Average Precision of
    each model and of the ensemble's confidence, the vote's precision and recall, the flags'
    precision and recall per model version, and precision-recall curves. Refreshed with new
    labels (at most once per `FRAUDSTREAM_QUALITY_REPORT_CRON` tick) for a week."""
    window = context.partition_time_window
    with mongo.store() as store:
        scored = labelled_scores(store, TimeRange(window.start, window.end))
    numbers = {"labelled": len(scored.labels), "labelled_frauds": scored.frauds}
    if scored.frauds == 0 or scored.frauds == len(scored.labels):
        context.log.info(f"{context.partition_key}: no frauds and genuine ones to rank yet")
        return dg.MaterializeResult(
            metadata=numbers
            | {"report": "Not measurable yet: the day's labels hold one class or none."}
        )
    metrics = score_metrics(scored)
    curves = pr_curves_png(
        scored.labels,
        scored.scores,
        f"{context.partition_key}: {len(scored.labels):,} labelled, {scored.frauds} frauds",
    )
    return dg.MaterializeResult(
        metadata=numbers
        | {
            "ensemble_auc_roc": round(metrics["ensemble"]["auc_roc"], 4),
            "ensemble_average_precision": round(metrics["ensemble"]["average_precision"], 4),
            "metrics": report_table(metrics_table(metrics)),
            "by_model_version": report_table(versions_table(scored)),
            "pr_curves": dg.MetadataValue.md(markdown_image(curves, "precision-recall curves")),
        }
    )

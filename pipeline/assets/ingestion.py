"""Ingestion assets: Kafka → MongoDB, one 10-minute window per partition."""

from typing import Any

import dagster as dg

from fraudstream import config as settings
from fraudstream.ingest.batch_files import load_batch_files
from fraudstream.ingest.landing import TRANSACTIONS_KIND, confined, describe
from fraudstream.ingest.report import IngestReport
from fraudstream.ingest.transactions import ingest_range
from fraudstream.windows import TimeRange
from pipeline.freshness import window_freshness
from pipeline.keys import TRANSACTIONS
from pipeline.metadata import bounded, table
from pipeline.owners import DATA_ENGINEERING
from pipeline.partitions import ten_minute_partitions
from pipeline.resources import KafkaResource, MongoResource


class TransactionsConfig(dg.Config):
    """Batch files whose rows join the Kafka records of the run's windows (the file sensor says
    which; paths under landing/transactions)."""

    batch_files: list[str] = []


@dg.asset(
    partitions_def=ten_minute_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
    owners=DATA_ENGINEERING,
    kinds={"kafka", "mongodb"},
    freshness_policy=window_freshness(),
)
def transactions(
    context: dg.AssetExecutionContext,
    config: TransactionsConfig,
    kafka: KafkaResource,
    mongo: MongoResource,
) -> dg.MaterializeResult:
    """Card transactions of each 10-minute window, by `tx_datetime`, read from every partition of
    the Kafka topic, validated and upserted into MongoDB `transactions`; invalid records go to
    `dead_letters`. Batch files from `landing/transactions/` named in the config add their rows of
    these windows. Late records met on the way (valid, of a window already ingested) are stored in
    their own window, which is marked updated so automation refreshes what follows from it.
    Re-running a window yields the same documents. A range of windows is one run."""
    window = context.partition_time_window
    time_range = TimeRange(window.start, window.end)
    context.log.info(f"ingesting {time_range} ({len(context.partition_keys)} window(s))")
    with kafka.reader() as reader, mongo.store() as store:
        store.ensure_indexes()
        report = ingest_range(
            reader,
            store,
            time_range,
            allowed_lateness=kafka.allowed_lateness(),
            run_id=context.run.run_id,
            workers=kafka.workers(),
            parallel_min_records=kafka.parallel_min_records,
            on_batch_written=lambda written: context.log.debug(f"{written} transactions written"),
        )
        named = confined(config.batch_files, settings.landing_dir() / TRANSACTIONS_KIND)
        files = [describe(p) for p in named if p.is_file()]
        batch = load_batch_files(store, files, time_range, context.run.run_id)
        keys = context.partition_keys
        if batch.changed_windows:  # the ledger counts the file's rows too
            others = batch.changed_windows - set(keys)
            report.other_windows |= others
            report.stored_per_window |= store.recount_windows([*keys, *sorted(others)])
        refreshed = store.ingested_windows(report.other_windows)
    if report.dead_letters:
        context.log.warning(
            f"{report.dead_letters} invalid record(s) sent to dead_letters: "
            + "; ".join(f"{n} x {kind}" for kind, n in report.dead_letter_reasons.most_common(5))
        )
    # Windows already ingested whose documents this run changed (late records stored in them,
    # corrected transactions moved out of them): marked updated, so automation refreshes them.
    for key in sorted(refreshed):
        arrivals = report.late_arrivals.get(key, 0)
        context.log.warning(f"window {key} changed: {arrivals} late record(s) stored in it")
        context.log_event(
            dg.AssetMaterialization(
                asset_key=TRANSACTIONS,
                partition=key,
                metadata={
                    "late_arrivals": arrivals,
                    "transactions": report.stored_per_window.get(key, 0),
                    "changed_by_run": context.run.run_id,
                },
            )
        )
    metadata, details = ingest_metadata(report, context.partition_keys)
    if config.batch_files:
        metadata |= {
            "batch_files": ", ".join(batch.files) or "none found",
            "batch_transactions": batch.transactions,
            "batch_dead_letters": batch.dead_letters,
        }
    return dg.MaterializeResult(metadata=bounded(context, metadata, details))


def ingest_metadata(report: IngestReport, keys: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the UI shows for an ingestion of the windows ``keys``: the numbers (distinct
    transactions stored, records read, late arrivals, amounts, speed) and the detail tables
    (offsets, per window, late windows, dead-letter reasons)."""
    amounts = report.amounts
    stored = {key: report.stored_per_window.get(key, 0) for key in keys}
    numbers: dict[str, Any] = {
        "transactions": sum(stored.values()),
        "records_in_range": report.transactions,
        "late_arrivals": sum(report.late_arrivals.values()),
        "dead_letters": report.dead_letters,
        "new_dead_letters": report.new_dead_letters,
        "inserted": report.inserted,
        "replaced": report.replaced,
        "records_scanned": report.records_scanned,
        "amount_total": round(amounts.total, 2),
        "amount_mean": dg.FloatMetadataValue(round(amounts.mean, 2) if amounts.mean else None),
        "amount_min": dg.FloatMetadataValue(amounts.minimum),
        "amount_max": dg.FloatMetadataValue(amounts.maximum),
        "duration_s": round(report.duration_s, 3),
        "records_per_s": round(report.records_per_second, 1),
        "processes": report.processes,
    }
    if report.expired_but_kept:
        numbers["expired_from_topic"] = True
    details: dict[str, Any] = {"offsets": _offsets_table(report)}
    if len(stored) > 1:
        details["per_window"] = table(["window", "transactions"], sorted(stored.items()))
    if report.late_arrivals:
        details["late_windows"] = table(
            ["window", "late records"], sorted(report.late_arrivals.items())
        )
    if report.dead_letter_reasons:
        details["dead_letter_reasons"] = table(
            ["reason", "count"], report.dead_letter_reasons.most_common(20)
        )
    return numbers, details


def _offsets_table(report: IngestReport) -> dg.TableMetadataValue:
    return table(
        ["partition", "first offset", "next offset", "records read", "committed"],
        [
            [partition, scan.first_offset, scan.next_offset, scan.records_read,
             report.committed.get(partition, "unchanged")]
            for partition, scan in sorted(report.scans.items())
        ],
    )  # fmt: skip

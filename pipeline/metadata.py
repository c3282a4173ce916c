"""Metadata the UI can sort and chart: tables with typed columns, and the rule that keeps a
range's metadata small."""

import math
from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg

from fraudstream.reporting.reports import Table


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> dg.TableMetadataValue:
    """A sortable table: each column typed by its values (int, float, bool or string); NaN (a
    metric one class cannot define) and None are empty cells."""
    records = [dict(zip(header, map(_plain, row), strict=True)) for row in rows]
    columns = [
        dg.TableColumn(name, _type([r[name] for r in records if r[name] is not None]))
        for name in header
    ]
    return dg.MetadataValue.table(
        [dg.TableRecord(r) for r in records], dg.TableSchema(columns=columns)
    )


def report_table(report: Table) -> dg.TableMetadataValue:
    """A ``reporting`` table as sortable metadata."""
    return table(report.header, report.rows)


def _plain(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value  # type: ignore[return-value]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if hasattr(value, "item"):  # a numpy scalar
        return _plain(value.item())
    return str(value)


def _type(values: list[object]) -> str:
    for kind, name in ((bool, "bool"), (int, "int"), (int | float, "float")):
        if values and all(isinstance(v, kind) for v in values):
            return name
    return "string"


# A run over a range of partitions writes its metadata into every partition's materialization:
# a 1,008-row table in each of 1,008 events was ~190 MB of SQLite writes, minutes of a run.
DETAILED_PARTITIONS = 24


def bounded(
    context: dg.AssetExecutionContext,
    metadata: dict[str, Any],
    details: dict[str, Any],
) -> dict[str, Any]:
    """The materialization metadata of the run: ``metadata`` (small: counts, numbers the UI
    charts) with ``details`` (tables, pictures) when the run covers at most
    ``DETAILED_PARTITIONS`` partitions; otherwise the details are recorded once, as an
    observation of the range's last partition, and the metadata says where."""
    keys = context.partition_keys
    if len(keys) <= DETAILED_PARTITIONS or not details:
        return metadata | details
    last = keys[-1]
    context.log_event(
        dg.AssetObservation(asset_key=context.asset_key, partition=last, metadata=details)
    )
    return metadata | {
        "details": f"{', '.join(details)} of this {len(keys)}-partition run: in the observation "
        f"of partition {last} (not copied into each partition's event)"
    }

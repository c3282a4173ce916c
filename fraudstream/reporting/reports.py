"""Tables for the Dagster UI: metric tables of model versions and of a day's labelled scores.
Pure functions of numbers already computed (``quality``, ``training``); the glue turns a
``Table`` into sortable metadata (``pipeline/metadata.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.reporting.quality import LabelledScores


@dataclass(frozen=True)
class Table:
    """A header and rows of plain values (NaN: a metric one class cannot define)."""

    header: list[str]
    rows: list[list[object]]


def metrics_table(metrics: dict[str, dict[str, float]]) -> Table:
    """One row per model (and the ensemble) with whichever of AUC ROC, Average Precision,
    precision and recall it has."""
    columns = {
        "auc_roc": "AUC ROC",
        "average_precision": "Average Precision",
        "precision": "precision (vote)",
        "recall": "recall (vote)",
    }
    present = [c for c in columns if any(c in values for values in metrics.values())]
    rows = [
        [name, *(values.get(c, float("nan")) for c in present)]
        for name, values in metrics.items()
        if "average_precision" in values
    ]
    return Table(["model", *(columns[c] for c in present)], rows)


def versions_table(scored: LabelledScores) -> Table:
    """Per model version that scored the range: labelled rows, frauds, the ensemble's AUC / AP,
    and the flags' precision and recall."""
    rows = []
    for version in np.unique(scored.versions):
        mine = scored.versions == version
        labels = scored.labels[mine]
        ranked = ranking_metrics(labels, scored.confidence[mine])
        flags = alert_metrics(labels, scored.flagged[mine])
        rows.append(
            [f"v{version}", int(mine.sum()), int(labels.sum()), ranked["auc_roc"],
             ranked["average_precision"], int(scored.flagged[mine].sum()), flags["precision"],
             flags["recall"]]
        )  # fmt: skip
    return Table(
        ["version", "labelled", "frauds", "AUC ROC", "AP", "flagged", "flag precision",
         "flag recall"],
        rows,
    )  # fmt: skip

"""Markdown for the Dagster UI: metric tables of model versions and of a day's labelled scores.
Pure functions of numbers already computed (``quality``, ``training``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from fraudstream.ml.metrics import alert_metrics, ranking_metrics
from fraudstream.reporting.quality import LabelledScores


def cell(value: object) -> str:
    """A table cell: floats to three decimals, NaN as n/a (a metric one class cannot define)."""
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(metrics: dict[str, dict[str, float]]) -> str:
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
    return markdown_table(["model", *(columns[c] for c in present)], rows)


def versions_table(scored: LabelledScores) -> str:
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
    return markdown_table(
        ["version", "labelled", "frauds", "AUC ROC", "AP", "flagged", "flag precision",
         "flag recall"],
        rows,
    )  # fmt: skip

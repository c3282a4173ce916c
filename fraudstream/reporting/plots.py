"""Pictures for the Dagster UI: precision-recall curves as PNG, embedded in Markdown metadata
(the UI renders a data-URI image inline, and the event log keeps it with the materialization)."""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no global figure state, no display backend
from sklearn.metrics import average_precision_score, precision_recall_curve


def pr_curves_png(labels: np.ndarray, scores: dict[str, np.ndarray], title: str) -> bytes | None:
    """One precision-recall curve per named score, with its Average Precision in the legend and
    the fraud rate (a random ranking's precision) as a dashed line; None without both classes."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    figure = Figure(figsize=(5.5, 4.6), dpi=100)
    axes = figure.subplots()
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(labels, score)
        ap = average_precision_score(labels, score)
        axes.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    axes.axhline(labels.mean(), color="grey", linestyle="--", linewidth=1, label="fraud rate")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title=title)
    axes.grid(alpha=0.3)
    # Below the axes: inside, it hid the curves' high-precision end.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """The PNG as a Markdown image with a data URI."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"

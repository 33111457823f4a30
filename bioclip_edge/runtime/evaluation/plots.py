"""The confusion-matrix and threshold-curve PNGs, drawn with matplotlib when it is installed.

matplotlib is the ``profiling`` extra, not the base install: without it the report is written
whole but for these two pictures, and says how to get them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bioclip_edge.runtime.common.files import atomic_writer
from bioclip_edge.runtime.evaluation.result import EvaluationResult

INSTALL_HINT = 'matplotlib is not installed: pip install "bioclip-edge[profiling]" and run evaluate again'
MAX_CLASSES = 40  # more rows than this are unreadable in one picture: the most frequent truth classes are drawn


def _figure_class() -> Any:
    """matplotlib's ``Figure``: drawn straight to a file, no pyplot, so the caller's backend and open
    figures (a notebook's) are left alone."""
    from matplotlib.figure import Figure

    return Figure


def write_plots(result: EvaluationResult, confusion_png: Path, curve_png: Path) -> tuple[list[Path], str | None]:
    """Both PNGs, or none and the reason they were skipped."""
    try:
        figure = _figure_class()
    except ImportError:
        return [], INSTALL_HINT
    return [_confusion(figure, result, confusion_png), _curve(figure, result, curve_png)], None


def _save(fig: Any, path: Path) -> Path:
    with atomic_writer(path) as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    return path


def _confusion(figure: Any, result: EvaluationResult, path: Path) -> Path:
    m = result.metrics
    support = m.confusion.sum(axis=1)
    keep = np.sort(np.argsort(-support, kind="stable")[:MAX_CLASSES])
    matrix = m.confusion[np.ix_(keep, keep)]
    labels = [m.labels[i] for i in keep]
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)  # each truth row as shares: rare classes stay visible
    size = 2.5 + 0.35 * len(labels)
    fig = figure(figsize=(size + 1.5, size))
    ax = fig.subplots()
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    if len(labels) <= 20:
        for (i, j), n in np.ndenumerate(matrix):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=7, color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    cut = f" ({len(labels)} most frequent of {len(m.labels)} classes)" if len(labels) < len(m.labels) else ""
    ax.set_title(f"Confusion matrix, rows as shares of truth{cut}", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    return _save(fig, path)


def _curve(figure: Any, result: EvaluationResult, path: Path) -> Path:
    t = result.thresholds
    x = [p.threshold for p in t.curve]
    fig = figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(x, [p.coverage for p in t.curve], label="coverage (share keeping a label)")
    ax.plot(x, [p.precision for p in t.curve], label="precision of the kept labels")
    if t.target_precision is not None:
        ax.axhline(t.target_precision, color="grey", linestyle=":", label=f"target {t.target_precision:g}")
    if t.suggested is not None:
        ax.axvline(t.suggested.threshold, color="grey", linestyle="--", label=f"suggested {t.suggested.threshold:.3f}")
    ax.set_xlabel("top-1 score threshold")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"Accuracy and coverage against the threshold ({t.images} images)", fontsize=10)
    return _save(fig, path)

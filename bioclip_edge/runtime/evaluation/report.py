"""The evaluation's files and its console table.

``--out DIR`` gets ``metrics.json`` (every number and every list, in full), ``report.md`` (the
same, readable: long lists cut to ``LISTED`` entries) and, with matplotlib, two PNGs
(``plots``). Each file follows the project's overwrite rule (``common.target``): an existing one
is replaced only with ``--overwrite``, and that is checked before anything is read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.common.target import check_folder_target
from bioclip_edge.runtime.evaluation.result import EvaluationResult

METRICS, REPORT = "metrics.json", "report.md"
CONFUSION_PNG, CURVE_PNG = "confusion-matrix.png", "threshold-curve.png"
FILES = (METRICS, REPORT, CONFUSION_PNG, CURVE_PNG)
LISTED = 50


def check_report_target(out: str | os.PathLike, overwrite: bool) -> Path:
    return check_folder_target(out, FILES, overwrite=overwrite, what="evaluation report")


def write_report(result: EvaluationResult, out: Path, plots: bool) -> None:
    from bioclip_edge.runtime.evaluation.plots import write_plots

    result.files.clear()
    if plots:
        written, skipped = write_plots(result, out / CONFUSION_PNG, out / CURVE_PNG)
        result.files.extend(written)
        result.plots_skipped = skipped
    else:
        result.plots_skipped = "not asked for"
    result.files[:0] = [write_atomic(out / METRICS, json.dumps(result.to_dict(), indent=2) + "\n"),
                        write_atomic(out / REPORT, markdown(result))]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _listed(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    more = [f"- ... and {len(lines) - LISTED} more (all in {METRICS})"] if len(lines) > LISTED else []
    return ["", f"## {title} ({len(lines)})", "", *[f"- {line}" for line in lines[:LISTED]], *more]


def _table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> list[str]:
    header = list(header)
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(str(c) for c in row) + " |" for row in rows]]


def headline(result: EvaluationResult) -> list[tuple[str, str]]:
    """The few numbers the console and the report open with."""
    m = result.metrics
    rank = [("rank", f"{result.request.rank} ({result.taxonomy})")] if result.request.rank else []
    return rank + [("images evaluated", str(m.images)), ("top-1 accuracy", _pct(m.top1)), (f"top-{m.k} accuracy", _pct(m.topk)),
            ("balanced accuracy", _pct(m.balanced_accuracy)), ("macro-F1", f"{m.macro_f1:.3f}"),
            ("failed files (apart)", str(len(result.failed))),
            ("truth labels the model cannot predict", str(len(result.unpredictable))),
            ("predicted files without truth", str(len(result.without_truth))),
            ("truth files without prediction", str(len(result.without_prediction)))]


def markdown(result: EvaluationResult) -> str:
    r, m, t = result.request, result.metrics, result.thresholds
    lines = ["# Evaluation", "", f"Predictions `{r.predictions}` ({result.fmt}{', --detections' if result.boxes else ''}) "
             f"against truth `{r.truth}`" + (f", rolled up to {r.rank} ({result.taxonomy})" if r.rank else "") + ".",
             "Metrics follow scikit-learn's definitions; a 0/0 precision or recall counts as 0 (zero_division=0).", ""]
    lines += _table(("metric", "value"), headline(result))
    lines += ["", "## Per class", ""]
    lines += _table(("label", "precision", "recall", "F1", "support", "predicted"),
                    ((c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", c.support, c.predicted) for c in m.classes))
    lines += ["", "## Score threshold", "", f"Over the {t.images} image(s) with a score: keep a label only when its top-1 "
              "score is at least the threshold. Coverage is the share that keeps one; precision, how many of those are right.", ""]
    lines += _table(("threshold", "coverage", "precision", "kept"),
                    ((f"{p.threshold:.2f}", _pct(p.coverage), _pct(p.precision), p.kept) for p in t.curve[::2]))
    lines += ["", f"Target: {t.sentence()}."]
    lines += _listed("Truth labels the model cannot predict", [f"{label}: {n} image(s)" for label, n in result.unpredictable.items()])
    lines += _listed("Failed files (counted apart)", [f"{path}: {why}" for path, why in result.failed])
    lines += _listed("Predicted files without truth", result.without_truth)
    lines += _listed("Truth files without prediction", result.without_prediction)
    if result.plots_skipped:
        lines += ["", f"Plots skipped: {result.plots_skipped}."]
    else:
        lines += ["", f"![confusion matrix]({CONFUSION_PNG})", "", f"![threshold curve]({CURVE_PNG})"]
    return "\n".join(lines) + "\n"


def console(result: EvaluationResult) -> str:
    """The short table ``bioclip-edge evaluate`` prints."""
    rows = headline(result)
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append(f"{'score threshold':<{width}}  {result.thresholds.sentence()}")
    if result.files:
        lines.append(f"wrote {', '.join(str(p) for p in result.files)}")
    if result.plots_skipped and result.plots_skipped != "not asked for":
        lines.append(f"plots skipped: {result.plots_skipped}")
    return "\n".join(lines)

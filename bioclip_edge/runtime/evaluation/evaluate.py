"""``evaluate(EvaluateRequest(...)) -> EvaluationResult``: a classify output against the user's labels.

What ``bioclip-edge evaluate`` calls. The steps: check ``out`` (before any reading), read the
predictions (``predictions``) and the truth (``truth``), pair them by path (``matching``), name both
sides alike and roll them up to ``rank`` (``ranks``), then the metrics (``metrics``), the threshold
curve (``thresholds``) and the files (``report``, ``plots``). Files that failed are counted apart:
they have no prediction to be right or wrong.
"""

from __future__ import annotations

from pathlib import Path

from bioclip_edge.errors import OptionError, UserError
from bioclip_edge.runtime.evaluation.matching import match
from bioclip_edge.runtime.evaluation.metrics import compute
from bioclip_edge.runtime.evaluation.predictions import BLANK, PredictionsFile, read_predictions
from bioclip_edge.runtime.evaluation.ranks import Names
from bioclip_edge.runtime.evaluation.report import check_report_target, write_report
from bioclip_edge.runtime.evaluation.result import EvaluateRequest, EvaluationResult
from bioclip_edge.runtime.evaluation.thresholds import thresholds
from bioclip_edge.runtime.evaluation.truth import Truth, read_truth

__all__ = ["EvaluateRequest", "EvaluationResult", "NoOverlapError", "evaluate"]

BLANK_TRUTH = ("blank", "empty")  # truth labels that mean "no animal"; --detections predicts BLANK for them
TOP_K = 5


class NoOverlapError(UserError, ValueError):
    """Predictions and truth that share no file."""


def _check_request(request: EvaluateRequest) -> None:
    p, t = request.target_precision, request.detection_threshold
    if p is not None and not 0 < p <= 1:
        raise OptionError(f"--target-precision {p}: give a precision above 0 and at most 1, e.g. 0.95")
    if t is not None and not 0 <= t <= 1:
        raise OptionError(f"--detection-threshold {t}: give a confidence from 0 to 1")
    if request.image_root is not None and not Path(request.image_root).is_dir():
        raise OptionError(f"--image-root {request.image_root}: not a folder; give the folder relative prediction paths start from")


def _names(request: EvaluateRequest, pf: PredictionsFile, truth: Truth) -> tuple[Names, set[str]]:
    """How labels are named (and their taxonomy), and the labels the model can predict."""
    if request.labels is None:
        return Names.from_descriptions(pf.known, pf.descriptions, str(pf.path)), set(pf.known)
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    matrix = LabelMatrix.load(request.labels)
    known = set(matrix.names) | ({BLANK} if pf.boxes else set())
    predicted = {label for item in pf.items for label in item.labels}
    stray = sorted(predicted - known)
    if stray:
        raise OptionError(f"--labels {request.labels}: has no label {stray[0]!r} that {pf.path} predicts "
                          f"({len(stray)} such); pass the label matrix classify used")
    wanted = {label.strip().lower() for label in truth.labels.values()} | {label.lower() for label in predicted}
    return Names.from_matrix(matrix, wanted), known


def _truth_label(label: str, names: Names, boxes: bool) -> str:
    if boxes and label.strip().lower() in BLANK_TRUTH:
        return BLANK
    named = names.canonical(label)
    return BLANK if named.lower() in BLANK_TRUTH and named not in names.aliases.values() else named


def evaluate(request: EvaluateRequest) -> EvaluationResult:
    _check_request(request)
    if request.out is not None:
        check_report_target(request.out, request.overwrite)
    pf = read_predictions(request.predictions, request.detection_threshold)
    truth = read_truth(request.truth)
    names, known = _names(request, pf, truth)
    rank = names.check_rank(request.rank) if request.rank else None
    pairs = match([item.filepath for item in pf.items], truth.labels, request.image_root or pf.path.parent)
    scored = [(i, path) for i, path in pairs.pairs if not pf.items[i].failure]
    if not scored:
        raise _no_overlap(pf, truth, pairs.pairs)
    truths: list[str] = []
    ranked: list[list[str]] = []
    scores: list[float | None] = []
    unpredictable: dict[str, int] = {}
    for i, path in scored:
        label, item = _truth_label(truth.labels[path], names, pf.boxes), pf.items[i]
        taxon = names.taxon(label, rank) if rank else label
        if label not in known and taxon == label:  # at a rank, a truth naming a taxon ("Panthera") is predictable
            unpredictable[label] = unpredictable.get(label, 0) + 1
        labels, item_scores = names.rolled(item.labels, item.scores, rank) if rank else (item.labels, item.scores)
        truths.append(taxon)
        ranked.append(labels)
        scores.append(item_scores[0] if item_scores else None)
    metrics = compute(truths, ranked, TOP_K)
    kept = [(s, r[0] == t) for s, r, t in zip(scores, ranked, truths) if s is not None]
    result = EvaluationResult(
        request, pf.fmt, pf.boxes, metrics, thresholds([s for s, _ in kept], [r for _, r in kept], request.target_precision),
        dict(sorted(unpredictable.items())), [pf.items[i].filepath for i in pairs.unmatched_predictions if not pf.items[i].failure],
        pairs.unmatched_truth, [(item.filepath, str(item.failure)) for item in pf.items if item.failure],
        names.source if (rank or names.lineages) else None)
    if request.out is not None:
        write_report(result, Path(request.out), request.plots)
    return result


def _no_overlap(pf: PredictionsFile, truth: Truth, pairs: list[tuple[int, str]]) -> NoOverlapError:
    if pairs:
        return NoOverlapError(f"{pf.path}: every file that has a truth label in {truth.source} failed; nothing to evaluate")
    ours = pf.items[0].filepath if pf.items else "(no files)"
    theirs = next(iter(truth.labels))
    return NoOverlapError(f"{pf.path} and --truth {truth.source} share no file (e.g. {ours} vs {theirs}); relative "
                          "prediction paths start from the predictions file's folder: pass --image-root with the folder "
                          "classify read, or a truth made for these images")

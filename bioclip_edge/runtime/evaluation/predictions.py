"""A ``classify`` output, any format, as one prediction per file.

The file is read as the preview reads it (format sniffed from the content; records from
``jobs.previous_output``, no fingerprint needed to look). A whole-image or video record's
prediction is its top-k (a video's: the roll-up over its frames). A ``--detections`` record's
is the top-k of its most confident box among those classified with ``conf >= T``
(``--detection-threshold``; default: every box classify classified), or ``blank`` when there is
none; a blank has no score. Failed files (ours or MegaDetector's failure) are kept apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.jobs.previous_output import load_md_document, md_document_records, read_output_records
from bioclip_edge.runtime.jobs.records import RecordFields, failed, read_back
from bioclip_edge.runtime.preview.reading import WHAT_TO_GIVE, PredictionsFileError, sniff_format

BLANK = "blank"


class NotClassifyOutputError(UserError, ValueError):
    """A predictions file that holds no classifications (a detector's own file, another tool's CSV)."""


@dataclass(frozen=True)
class Predicted:
    filepath: str  # as the output wrote it
    labels: list[str]  # best first; [BLANK] for an image where no box passed
    scores: list[float]  # [] for a blank
    failure: str | None = None

    @property
    def score(self) -> float | None:
        return self.scores[0] if self.scores else None


@dataclass(frozen=True)
class PredictionsFile:
    path: Path
    fmt: str
    boxes: bool  # a --detections run
    items: list[Predicted]
    known: list[str]  # the labels the model can predict (see ``read_predictions``)
    descriptions: dict[str, str]  # MegaDetector: label -> taxonomy description


def read_predictions(path: str | Path, detection_threshold: float | None = None) -> PredictionsFile:
    """One ``Predicted`` per file of the output at ``path``. ``known`` is the label set when the file
    names it (MegaDetector's classification categories), else the labels it predicts."""
    path = Path(path)
    fmt = sniff_format(path)
    doc: dict[str, Any] = {}
    try:
        if fmt == "megadetector":
            doc = load_md_document(path)
            records = md_document_records(doc, path)
        elif fmt == "parquet":
            records = _parquet_records(path)
        else:
            records = read_output_records(path, fmt)
    except (UserError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).split("; pass --overwrite")[0].removeprefix(f"{path}: ")
        raise PredictionsFileError(f"{path}: cannot read it as a {fmt} output ({reason}); {WHAT_TO_GIVE}") from None
    boxes = any(r["kind"] == "boxes" for r in records)
    items = [_predicted(r, detection_threshold) for r in records]
    if records and not any(item.scores for item in items) and not all(item.failure for item in items):
        raise NotClassifyOutputError(f"{path}: holds no classifications (a detector's file, or not a classify output); "
                                     "run 'bioclip-edge classify' on the images (with --detections for a MegaDetector file) "
                                     "and evaluate its output")
    categories = {str(k): str(v) for k, v in (doc.get("classification_categories") or {}).items()}
    described = doc.get("classification_category_descriptions") or {}
    known = list(categories.values()) or sorted({label for item in items if item.scores for label in item.labels})
    return PredictionsFile(path, fmt, boxes, items, known + ([BLANK] if boxes else []),
                           {categories[k]: str(v) for k, v in described.items() if k in categories})


def _parquet_records(path: Path) -> list[Any]:
    from bioclip_edge.runtime.jobs.parquet_output import read_classify_records

    meta, rows = read_classify_records(path)
    mode = (meta.get("run_fingerprint") or {}).get("mode")
    boxes = mode == "detections" if mode else any("detections" in row for row in rows)
    return [read_back(row, boxes) for row in rows]


def _predicted(record: RecordFields, threshold: float | None) -> Predicted:
    if failed(record):
        reason = (record.get("failures") or [record.get("md_failure")])[0]
        return Predicted(record["filepath"], [], [], str(reason or "failed"))
    if record["kind"] != "boxes":
        preds = record.get("predictions") or []
        if not preds:
            return Predicted(record["filepath"], [], [], "no prediction in the output")
        return Predicted(record["filepath"], [p["label"] for p in preds], [float(p["score"]) for p in preds])
    boxes = [d for d in record.get("detections") or [] if d.get("predictions")
             and (threshold is None or float(d.get("conf", 0.0)) >= threshold)]
    if not boxes:
        return Predicted(record["filepath"], [BLANK], [])
    best = max(boxes, key=lambda d: float(d.get("conf", 0.0)))  # the first of equally confident boxes
    return Predicted(record["filepath"], [p["label"] for p in best["predictions"]], [float(p["score"]) for p in best["predictions"]])


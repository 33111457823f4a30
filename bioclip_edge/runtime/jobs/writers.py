"""Write classification results as MegaDetector batch-output JSON, CSV or JSON Lines.

MegaDetector format (https://lila.science/megadetector-output-format) is what Timelapse and
AddaxAI read. Version 1.6 is written, the version MegaDetector itself writes and its validator
(``validate_batch_results``) knows: ``format_version`` a string, category ids non-negative
string ints with non-blank names, ``classification_category_descriptions`` keyed exactly like
``classification_categories``, a failed image ``{"file", "failure": reason, "detections": null}``.
Two cases:

* ``--detections md.json``: the input file is written back unchanged except that each
  classified detection gains ``classifications`` (``[[category_id, score], ...]``, best first),
  ``classification_categories`` (and descriptions) are added, ``info`` gains the classifier
  fields and ``format_version`` is raised to 1.6 (a newer input version is kept).
* Whole-image classification (no detector): there is no box, so, like classifier-only runs
  converted to this format, each readable image gets ONE detection covering the whole frame:
  ``{"category": "1", "conf": 1.0, "bbox": [0, 0, 1, 1], "classifications": [...]}`` with
  ``detection_categories = {"1": "animal"}``. ``conf`` is 1.0 because the box is the frame by
  construction, not a detector's guess; read the species confidence from ``classifications``.
  The name "animal" is used because downstream tools key on it to show classifications; an
  "empty" label in the label set is how a blank frame shows up. ``info.classifier_metadata``
  says ``"whole_image": true``.

Classification category ids are the label's row in the label matrix, as a string. Descriptions
are the taxonomy strings MegaDetector's and SpeciesNet's tools parse
(``mammalia;carnivora;felidae;panthera;leo``, see ``taxonomy``) or, for labels without
taxonomy, the label text. EXIF ``datetime``, ``make`` and ``model`` ride along as extra
per-image fields (the format allows them; readers ignore what they do not know).

``info.classifier_metadata.typical_classification_threshold`` is set from the run's label
count N: five times the uniform share, ``5 / N``, clamped to [0.075, 0.5]. Why: these scores are
a softmax over all N labels, so with hundreds of labels even a clear winner may hold 0.1-0.3,
while Timelapse (which assumes 0.5 when the field is absent) discards every classification below
``max(0.03, threshold / 2.5)`` on import. 5 / N keeps what scores at least twice the uniform
share (2 / N) and marks five times it as typical; 0.5 caps small label sets at Timelapse's own
default, and 0.075 is where ``threshold / 2.5`` meets Timelapse's fixed 0.03 floor, below which
a lower threshold would keep nothing more.

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.jobs.media_fields import (classifications, csv_extra_cells, csv_extra_header, jsonl_rows,
                                                    md_sequence_fields, md_video_fields)
from bioclip_edge.runtime.jobs.records import RecordFields

FORMATS = ("megadetector", "csv", "jsonl", "parquet")
MD_FORMAT_VERSION = "1.6"  # MegaDetector's current_format_version (detection/run_detector_batch.py)
TYPICAL_THRESHOLD_CHANCE_MULTIPLE = 5.0  # typical threshold = this x the uniform share 1 / N ...
TYPICAL_THRESHOLD_BOUNDS = (0.075, 0.5)  # ... clamped: Timelapse's 0.03 floor x 2.5, Timelapse's default
WHOLE_IMAGE_CATEGORY = {"1": "animal"}
WHOLE_IMAGE_BBOX = [0.0, 0.0, 1.0, 1.0]
MAX_LISTED_CATEGORIES = 20_000  # larger label sets list only the categories that were predicted
RANDOM_WARNING = "RANDOM WEIGHTS: this bundle was exported from a randomly initialised model; its predictions mean nothing"
EXIF_FIELDS = ("datetime", "make", "model")


def format_for(path: str | os.PathLike, fmt: str | None) -> str:
    """The output format: as given, or guessed from the suffix (.json -> megadetector)."""
    if fmt:
        return fmt
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}.get(suffix, "megadetector")


def write_results(
    path: str | os.PathLike,
    records: Sequence[RecordFields],
    fmt: str,
    meta: dict[str, Any],
    label_names: Sequence[str],
    detections: dict[str, Any] | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """Render ``records`` (Classifier results) in ``fmt`` and write them atomically."""
    if fmt == "megadetector":
        doc = megadetector_document(records, meta, label_names, detections, descriptions)
        return write_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    if fmt == "csv":
        return write_atomic(path, csv_text(records, meta))
    if fmt == "jsonl":
        return write_atomic(path, jsonl_text(records, meta))
    if fmt == "parquet":  # one row per image; the schema metadata holds ``meta`` (runtime.jobs.parquet_output)
        from bioclip_edge.runtime.jobs.parquet_output import write_classify_parquet

        return write_classify_parquet(path, records, meta)
    raise ValueError(f"unknown output format {fmt!r}; choose one of {FORMATS}")


# --- MegaDetector ------------------------------------------------------------------------------
def typical_classification_threshold(n_labels: int) -> float:
    """The threshold downstream tools should start from for softmax scores over ``n_labels`` (module docstring)."""
    low, high = TYPICAL_THRESHOLD_BOUNDS
    return round(min(high, max(low, TYPICAL_THRESHOLD_CHANCE_MULTIPLE / max(int(n_labels), 1))), 4)


def megadetector_document(
    records: Sequence[RecordFields],
    meta: dict[str, Any],
    label_names: Sequence[str],
    detections: dict[str, Any] | None = None,
    descriptions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The MegaDetector 1.6 document; ``descriptions`` per label default to the label text."""
    used: set[int] = set()
    images = [md_image(r, used, detections is not None) for r in records]
    return {**megadetector_head(meta, label_names, detections, descriptions, used), "images": images}


def megadetector_head(meta: dict[str, Any], label_names: Sequence[str], detections: dict[str, Any] | None,
                      descriptions: Sequence[str] | None, used: set[int]) -> dict[str, Any]:
    """Everything of the document before ``images``; ``used``: the label rows the images name (only
    large label sets list no more than those)."""
    listed = range(len(label_names)) if len(label_names) <= MAX_LISTED_CATEGORIES else sorted(used)
    described = label_names if descriptions is None else descriptions
    return {
        "info": _md_info(meta, detections, len(label_names)),
        "detection_categories": dict(detections["detection_categories"]) if detections else dict(WHOLE_IMAGE_CATEGORY),
        "classification_categories": {str(i): _category_name(label_names, i) for i in listed},
        "classification_category_descriptions": {str(i): str(described[i]) for i in listed},
    }


def _md_info(meta: dict[str, Any], detections: dict[str, Any] | None, n_labels: int) -> dict[str, Any]:
    """The input's info (detections mode) plus ours: version, classifier, its metadata and threshold."""
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    classifier_meta = {**meta, "whole_image": detections is None,
                       "typical_classification_threshold": typical_classification_threshold(n_labels)}
    if meta.get("random_weights"):
        classifier_meta["warning"] = RANDOM_WARNING
    info = dict(detections.get("info") or {}) if detections else {}
    info.update(
        {
            "format_version": _format_version(info.get("format_version")),
            "classifier": f"bioclip-edge:{meta.get('model', '?')}:{meta.get('variant', '?')}",
            "classification_completion_time": now,
            "classifier_metadata": classifier_meta,
        }
    )
    if not detections:
        info.setdefault("detector", "none: whole-image classification (bioclip-edge)")
        info.setdefault("detection_completion_time", now)
    return info


def _format_version(theirs: Any) -> str:
    """Ours, or the input file's when it is newer; always a string, as 1.6 requires."""
    try:
        if theirs is not None and float(theirs) > float(MD_FORMAT_VERSION):
            return str(theirs)
    except (TypeError, ValueError):
        pass
    return MD_FORMAT_VERSION


def _category_name(label_names: Sequence[str], index: int) -> str:
    """1.6 forbids blank category names; a label without a name (possible in imported matrices) gets its row."""
    name = str(label_names[index])
    return name if name.strip() else f"label {index}"


def md_image(record: RecordFields, used: set[int], from_detector: bool) -> dict[str, Any]:
    image: dict[str, Any] = dict(record.get("extra") or {})
    image["file"] = record["filepath"]
    for key in EXIF_FIELDS:
        if key in record:
            image[key] = record[key]
    md_video_fields(record, image, used, whole=not from_detector)  # videos: runtime.jobs.media_fields
    md_sequence_fields(record, image, used)
    if record.get("md_failure"):  # MegaDetector's own failure, kept as it was
        image["failure"] = record["md_failure"]
        image["detections"] = None
        return image
    failures = record.get("failures") or []
    if not from_detector:
        if failures:
            image["failure"] = "; ".join(failures)
            image["detections"] = None
            return image
        if record["kind"] == "video":
            return image  # one whole-frame detection per sampled frame, added above
        det = {"category": "1", "conf": 1.0, "bbox": list(WHOLE_IMAGE_BBOX), "classifications": classifications(record["predictions"], used)}
        image["detections"] = [det]
        return image
    image["detections"] = [_md_detection(raw, used) for raw in record.get("detections") or []]
    if failures:  # we could not read an image MegaDetector had read: keep its boxes, say why
        image["classification_failure"] = "; ".join(failures)
    return image


def _md_detection(raw: dict[str, Any], used: set[int]) -> dict[str, Any]:
    """A detector's box as it came, with our classifications in place of any earlier ones."""
    det = {k: v for k, v in raw.items() if k not in ("predictions", "classifications")}
    if type(det.get("conf")) is int:  # the validator wants a float; 1 and 1.0 are the same confidence
        det["conf"] = float(det["conf"])
    if raw.get("predictions"):
        det["classifications"] = classifications(raw["predictions"], used)
    return det



# --- CSV ----------------------------------------------------------------------------------------
def csv_rows(records: Sequence[RecordFields], meta: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per image (whole-image mode) or per detection (detections mode)."""
    with_boxes = any(r["kind"] == "boxes" for r in records)
    header = csv_header(records, meta, with_boxes)
    return header, [row for r in records for row in csv_record_rows(r, meta, with_boxes)]


def csv_header(records: Sequence[RecordFields], meta: dict[str, Any], with_boxes: bool) -> list[str]:
    """The columns: ``records`` need only include one record showing each optional column (a video,
    a serial, a sequence, a run token ...), as ``stream_writers.Features`` keeps."""
    k = int(meta.get("top_k", 1))
    header = ["filepath"]
    if with_boxes:
        header += ["detection", "detection_category", "detection_conf", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    for i in range(1, k + 1):
        header += [f"label_{i}", f"score_{i}"]
    header += [*EXIF_FIELDS, "width", "height", "failure"]
    header += csv_extra_header(records, k)  # videos, sequences, serial, frame numbers: only when present
    if meta.get("random_weights"):
        header.append("warning")
    if any("run" in r for r in records):
        header.append("run")  # the run fingerprint's token, what --resume checks (runtime.jobs.fingerprint)
    return header


def csv_record_rows(r: RecordFields, meta: dict[str, Any], with_boxes: bool) -> list[dict[str, Any]]:
    """One record's rows: one, or one per detection."""
    base = {key: r.get(key, "") for key in (*EXIF_FIELDS, "width", "height", "run")}
    base["filepath"] = r["filepath"]
    base["failure"] = "; ".join(([r["md_failure"]] if r.get("md_failure") else []) + (r.get("failures") or []))
    base.update(csv_extra_cells(r, _label_cells))
    if meta.get("random_weights"):
        base["warning"] = RANDOM_WARNING
    if not with_boxes:
        return [{**base, **_label_cells(r.get("predictions") or [])}]
    dets = r.get("detections") or []
    rows = [] if dets else [base]
    for i, det in enumerate(dets):
        x, y, w, h = det.get("bbox", ["", "", "", ""])
        box = {"detection": i, "detection_category": det.get("category", ""), "detection_conf": det.get("conf", ""),
               "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h, "frame_number": det.get("frame_number", "")}
        rows.append({**base, **box, **_label_cells(det.get("predictions") or [])})
    return rows


def _label_cells(predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cells = {}
    for i, p in enumerate(predictions, start=1):
        cells[f"label_{i}"] = p["label"]
        cells[f"score_{i}"] = f"{float(p['score']):.6f}"
    return cells


def csv_text(records: Sequence[RecordFields], meta: dict[str, Any]) -> str:
    header, rows = csv_rows(records, meta)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --- JSON Lines ---------------------------------------------------------------------------------
def jsonl_text(records: Sequence[RecordFields], meta: dict[str, Any]) -> str:
    return "".join(jsonl_lines(r, meta) for r in records)


def jsonl_lines(record: RecordFields, meta: dict[str, Any]) -> str:
    """One record's lines: its row, then a video's frame rows."""
    extra = {"warning": RANDOM_WARNING} if meta.get("random_weights") else {}
    return "".join(json.dumps({**row, **extra}, ensure_ascii=False) + "\n" for row in jsonl_rows(record))

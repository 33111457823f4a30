"""Write classification results as MegaDetector batch-output JSON, CSV or JSON Lines.

MegaDetector format (https://lila.science/megadetector-output-format, version 1.4 written here)
is what Timelapse and AddaxAI read. Two cases:

* ``--detections md.json``: the input file is written back unchanged except that each
  classified detection gains ``classifications`` (``[[category_id, score], ...]``, best first),
  ``classification_categories`` is added and ``info`` gains the classifier fields.
* Whole-image classification (no detector): there is no box, so, like classifier-only runs
  converted to this format, each readable image gets ONE detection covering the whole frame:
  ``{"category": "1", "conf": 1.0, "bbox": [0, 0, 1, 1], "classifications": [...]}`` with
  ``detection_categories = {"1": "animal"}``. ``conf`` is 1.0 because the box is the frame by
  construction, not a detector's guess; read the species confidence from ``classifications``.
  The name "animal" is used because downstream tools key on it to show classifications; an
  "empty" label in the label set is how a blank frame shows up. ``info.classifier_metadata``
  says ``"whole_image": true``.

Classification category ids are the label's row in the label matrix, as a string. Failures are
``{"file", "failure": reason, "detections": null}`` as the format asks. EXIF ``datetime``,
``make`` and ``model`` ride along as extra per-image fields (the format allows them; readers
ignore what they do not know).

Every file is written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

FORMATS = ("megadetector", "csv", "jsonl")
MD_FORMAT_VERSION = "1.4"
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
    return {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "megadetector")


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def write_results(
    path: str | os.PathLike,
    records: Sequence[dict[str, Any]],
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
    raise ValueError(f"unknown output format {fmt!r}; choose one of {FORMATS}")


# --- MegaDetector ------------------------------------------------------------------------------
def megadetector_document(
    records: Sequence[dict[str, Any]],
    meta: dict[str, Any],
    label_names: Sequence[str],
    detections: dict[str, Any] | None = None,
    descriptions: Sequence[str] | None = None,
) -> dict[str, Any]:
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    classifier_meta = {**meta, "whole_image": detections is None}
    if meta.get("random_weights"):
        classifier_meta["warning"] = RANDOM_WARNING
    info = dict(detections.get("info") or {}) if detections else {}
    info.update(
        {
            "format_version": info.get("format_version", MD_FORMAT_VERSION) if detections else MD_FORMAT_VERSION,
            "classifier": f"bioclip-edge:{meta.get('model', '?')}:{meta.get('variant', '?')}",
            "classification_completion_time": now,
            "classifier_metadata": classifier_meta,
        }
    )
    if float(info["format_version"]) < 1.4:
        info["format_version"] = MD_FORMAT_VERSION  # we write 1.4 fields (string category ids, failures)
    if not detections:
        info.setdefault("detector", "none: whole-image classification (bioclip-edge)")
        info.setdefault("detection_completion_time", now)
    used: set[int] = set()
    images = [_md_image(r, used, detections is not None) for r in records]
    listed = range(len(label_names)) if len(label_names) <= MAX_LISTED_CATEGORIES else sorted(used)
    doc: dict[str, Any] = {"info": info}
    doc["detection_categories"] = dict(detections["detection_categories"]) if detections else dict(WHOLE_IMAGE_CATEGORY)
    doc["classification_categories"] = {str(i): label_names[i] for i in listed}
    if descriptions is not None:
        doc["classification_category_descriptions"] = {str(i): descriptions[i] for i in listed}
    doc["images"] = images
    return doc


def _md_image(record: dict[str, Any], used: set[int], from_detector: bool) -> dict[str, Any]:
    image: dict[str, Any] = dict(record.get("extra") or {})
    image["file"] = record["filepath"]
    for key in EXIF_FIELDS:
        if key in record:
            image[key] = record[key]
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
        det = {"category": "1", "conf": 1.0, "bbox": list(WHOLE_IMAGE_BBOX), "classifications": _classifications(record["predictions"], used)}
        image["detections"] = [det]
        return image
    dets = []
    for raw in record.get("detections") or []:
        # earlier classifications point into another classifier's categories: replace them all
        det = {k: v for k, v in raw.items() if k not in ("predictions", "classifications")}
        if raw.get("predictions"):
            det["classifications"] = _classifications(raw["predictions"], used)
        dets.append(det)
    image["detections"] = dets
    if failures:  # we could not read an image MegaDetector had read: keep its boxes, say why
        image["classification_failure"] = "; ".join(failures)
    return image


def _classifications(predictions: Iterable[dict[str, Any]], used: set[int]) -> list[list[Any]]:
    out = []
    for p in predictions:
        used.add(int(p["index"]))
        out.append([str(int(p["index"])), round(float(p["score"]), 4)])
    return out


# --- CSV ----------------------------------------------------------------------------------------
def csv_rows(records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per image (whole-image mode) or per detection (detections mode)."""
    k = int(meta.get("top_k", 1))
    with_boxes = any("detections" in r for r in records)
    header = ["filepath"]
    if with_boxes:
        header += ["detection", "detection_category", "detection_conf", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    for i in range(1, k + 1):
        header += [f"label_{i}", f"score_{i}"]
    header += [*EXIF_FIELDS, "width", "height", "failure"]
    if meta.get("random_weights"):
        header.append("warning")
    rows = []
    for r in records:
        base = {key: r.get(key, "") for key in (*EXIF_FIELDS, "width", "height")}
        base["filepath"] = r["filepath"]
        base["failure"] = "; ".join(([r["md_failure"]] if r.get("md_failure") else []) + (r.get("failures") or []))
        if meta.get("random_weights"):
            base["warning"] = RANDOM_WARNING
        if not with_boxes:
            rows.append({**base, **_label_cells(r.get("predictions") or [])})
            continue
        dets = r.get("detections") or []
        if not dets:
            rows.append(base)
        for i, det in enumerate(dets):
            x, y, w, h = det.get("bbox", ["", "", "", ""])
            box = {"detection": i, "detection_category": det.get("category", ""), "detection_conf": det.get("conf", ""),
                   "bbox_x": x, "bbox_y": y, "bbox_w": w, "bbox_h": h}
            rows.append({**base, **box, **_label_cells(det.get("predictions") or [])})
    return header, rows


def _label_cells(predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cells = {}
    for i, p in enumerate(predictions, start=1):
        cells[f"label_{i}"] = p["label"]
        cells[f"score_{i}"] = f"{float(p['score']):.6f}"
    return cells


def csv_text(records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    header, rows = csv_rows(records, meta)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --- JSON Lines ---------------------------------------------------------------------------------
def jsonl_text(records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    extra = {"warning": RANDOM_WARNING} if meta.get("random_weights") else {}
    return "".join(json.dumps({**r, **extra}, ensure_ascii=False) + "\n" for r in records)

"""Read a finished ``classify`` output back into result records, so ``--resume`` can extend it.

A run that finished wrote no checkpoint; its output is the only record of the work. Each format
is read back into the records ``Classifier`` yields, faithfully enough that writing them again in
the same format gives the same bytes for every kept image:

* MegaDetector JSON: ``info.classifier_metadata.run_fingerprint`` is checked; each image's
  fields before ``file`` are the MegaDetector entry's own (``extra``), ``classifications`` become
  predictions again (category id -> label row; scores as written, 4 decimals).
* CSV: every row's ``run`` token is checked; ``label_i``/``score_i`` become predictions (label
  name -> row), with ``--detections`` the rows of one image become its boxes again.
* JSON Lines: every line is a record already; its ``run`` token (and the random-weights
  ``warning``) is taken off.

The run's fingerprint is checked before any record is built (``run_fingerprint``). Failed images
come back as records with ``failures`` (the job retries them). Every record gets its kind from
``records.read_back``: box records when the run classified MegaDetector's boxes (its fingerprint's
mode; without a fingerprint, the format's box columns or fields). An output without a fingerprint
is refused, saying whether it has an earlier bioclip-edge's layout or another tool's; a damaged
one keeps every intact row (``jobs.salvage``). ``OutputReader`` reads for ``--resume`` by streaming,
one image at a time (a MegaDetector document through ``jobs.json_stream``), and collects what was
damaged in ``damage``.
``read_output_records`` reads the same formats without any fingerprint, for readers that only look
(the preview page); it never feeds ``--resume``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bioclip_edge.errors import PreviousOutputError
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint
from bioclip_edge.runtime.jobs.json_stream import Damaged, read_document
from bioclip_edge.runtime.jobs.salvage import Damage, Tokens, csv_rows, foreign, jsonl_rows, older
from bioclip_edge.runtime.jobs.media_fields import csv_read_back, jsonl_read_back, md_read_back, restore_own
from bioclip_edge.runtime.jobs.records import Record, read_back
from bioclip_edge.runtime.jobs.writers import EXIF_FIELDS

SIZE_FIELDS = ("width", "height")
BOX_COLUMNS = ("detection", "detection_category", "detection_conf", "bbox_x", "bbox_y", "bbox_w", "bbox_h")


class OutputReader:
    """A finished output's records for ``--resume``, streamed; ``damage``: what was lost, once read."""

    def __init__(self, path: str | os.PathLike, fmt: str, fingerprint: dict[str, Any], names: Sequence[str]):
        self.path, self.fmt, self.fingerprint, self.names = Path(path), fmt, fingerprint, list(names)
        self.damage: list[str] = []

    def records(self) -> Iterator[Record]:
        readers: dict[str, Callable[[], Iterator[Record]]] = {"megadetector": self._md, "csv": self._csv, "jsonl": self._jsonl,
                                                               "parquet": self._parquet}
        return readers[self.fmt]()

    def _md(self) -> Iterator[Record]:
        path, names = self.path, self.names
        try:
            head, images = read_document(path, "images", needed=("info",))
        except Damaged as exc:
            raise PreviousOutputError(f"{path}: damaged before its first image entry (byte {exc.offset}), so nothing proves how "
                                      "it was made; pass --overwrite to replace it") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PreviousOutputError(f"{path}: cannot read it back as MegaDetector JSON ({exc}); pass --overwrite to replace it") from None
        meta = (head.get("info") or {}).get("classifier_metadata") if isinstance(head.get("info"), dict) else None
        if not isinstance(meta, dict) or "run_fingerprint" not in meta:
            if str((head.get("info") or {}).get("classifier", "")).startswith("bioclip-edge:"):
                raise older(path)
            raise foreign(path, "a MegaDetector file without bioclip-edge's classifier record")
        check_fingerprint(meta["run_fingerprint"], self.fingerprint, str(path))
        whole = not _boxes(self.fingerprint)
        kept = 0
        try:
            for image in images:
                if isinstance(image, dict) and isinstance(image.get("file"), str):
                    kept += 1
                    yield read_back(_md_record(image, names, whole, path), boxes=not whole)
        except Damaged as exc:
            where = "cut short" if exc.cut else "damaged"
            self.damage.append(f"{path}: damaged: {where} at byte {exc.offset} of {path.stat().st_size}; the {kept} image "
                               "entries before it are kept, the images after it are done again")

    def _csv(self) -> Iterator[Record]:
        damage = Damage(self.path)
        header, rows = csv_rows(self.path, Tokens(self.path, self.fingerprint), damage)
        boxes = _boxes(self.fingerprint)
        index = {}
        for i, name in enumerate(self.names):
            index.setdefault(name, i)
        pending: dict[str, Any] | None = None
        for after_damage, row in rows:
            if pending is not None and pending["filepath"] == row["filepath"] and not after_damage:
                if boxes and row.get("detection", "") != "":
                    pending["detections"].append(_csv_detection(row, index))
                continue
            if pending is not None and not (boxes and after_damage):
                yield read_back(pending, boxes)
            elif pending is not None:
                damage.neighbours += 1
            pending = _csv_record(row, boxes, index)
            if boxes and row.get("detection", "") != "":
                pending["detections"].append(_csv_detection(row, index))
            if boxes and after_damage:
                damage.neighbours += 1
                pending = None
        if pending is not None and not (boxes and damage.cut):
            yield read_back(pending, boxes)
        elif pending is not None:
            damage.neighbours += 1
        self.damage += damage.describe()

    def _jsonl(self) -> Iterator[Record]:
        damage = Damage(self.path)
        self._jsonl_layout()
        boxes = _boxes(self.fingerprint)
        pending: dict[str, Any] | None = None
        for _, row in jsonl_rows(self.path, Tokens(self.path, self.fingerprint), damage):
            row.pop("run", None)
            row.pop("warning", None)
            if "frame_number" in row and "failures" not in row:  # a video's frame row
                if pending is not None and pending["filepath"] == row["filepath"]:
                    pending.setdefault("frames", []).append({k: v for k, v in row.items() if k != "filepath"})
                continue  # its video's row was lost: the video is done again
            if pending is not None:
                yield read_back(pending, boxes)
            pending = restore_own(row)
        if pending is not None:
            yield read_back(pending, boxes)
        self.damage += damage.describe()

    def _jsonl_layout(self) -> None:
        """Refuse, before any row is kept, a file whose first readable line carries no run token."""
        try:
            with open(self.path, "rb") as fh:
                for line, _ in zip(fh, range(20)):
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict) and "run" not in row:
                        if {"filepath", "predictions", "failures"} <= set(row):
                            raise older(self.path)
                        raise foreign(self.path, "its lines are not bioclip-edge result records")
                    return
        except OSError as exc:
            raise PreviousOutputError(f"{self.path}: cannot read it back ({exc}); pass --overwrite to replace it") from None

    def _parquet(self) -> Iterator[Record]:
        from bioclip_edge.runtime.jobs.parquet_output import stream_classify_records

        boxes = _boxes(self.fingerprint)
        for row in stream_classify_records(self.path, self.fingerprint, self.damage):
            row.pop("run", None)
            restore_own(row)  # sequence fields are computed again when the output is written
            yield read_back(row, boxes)


def read_output_records(path: str | os.PathLike, fmt: str) -> list[Record]:
    """Records of any output at ``path`` with NO fingerprint check: for readers that only look (the
    preview page), never for extending an output. Label rows are the document's own (MegaDetector),
    or unknown (-1, CSV)."""
    path = Path(path)
    if fmt == "megadetector":
        return md_document_records(load_md_document(path), path)
    return {"csv": _read_csv, "jsonl": _read_jsonl}[fmt](path)


# --- MegaDetector -------------------------------------------------------------------------------
def load_md_document(path: Path) -> dict[str, Any]:
    """The MegaDetector document at ``path``, refused unless it holds an ``images`` list of files."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PreviousOutputError(f"{path}: cannot read it back as MegaDetector JSON ({exc}); pass --overwrite to replace it") from None
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list) or not all(isinstance(im, dict) and isinstance(im.get("file"), str) for im in images):
        raise PreviousOutputError(f"{path}: not a MegaDetector output (no 'images' list of files); pass --overwrite to replace it")
    return doc


def md_document_records(doc: dict[str, Any], path: Path, names: list[str] | None = None, whole: bool | None = None) -> list[Record]:
    """Records of a loaded MegaDetector document, no fingerprint checked (readers that only look, such
    as the preview, use this too). ``names`` default to the document's own classification categories,
    ``whole`` to what its ``info.classifier_metadata.whole_image`` says (a detector's file: boxes)."""
    if names is None:
        names = _md_names(doc.get("classification_categories") or {})
    if whole is None:
        whole = bool(((doc.get("info") or {}).get("classifier_metadata") or {}).get("whole_image"))
    return [read_back(_md_record(image, names, whole, path), boxes=not whole) for image in doc["images"]]


def _md_names(categories: dict[str, Any]) -> list[str]:
    """Category id -> name as a list by row (ids missing from a large label set: ``label N``)."""
    ids = {int(k): str(v) for k, v in categories.items() if str(k).isdigit()}
    return [ids.get(i, f"label {i}") for i in range(max(ids, default=-1) + 1)]


def _md_record(image: dict[str, Any], names: list[str], whole: bool, path: Path) -> dict[str, Any]:
    """One MegaDetector image entry -> the record the writer made it from."""
    keys = list(image)
    extra = {k: image[k] for k in keys[: keys.index("file")]}
    record: dict[str, Any] = {"filepath": image["file"]}
    record.update({k: image[k] for k in EXIF_FIELDS if k in image and k not in extra})
    failure = image.get("failure") or image.get("classification_failure")
    record["failures"] = [str(failure)] if failure else []
    dets = image.get("detections")
    md_read_back(image, record, lambda pairs: _md_predictions(pairs, names, path), whole)  # videos, sequences
    if whole:
        first = dets[0] if isinstance(dets, list) and dets else {}
        record.setdefault("predictions", _md_predictions(first.get("classifications") or [], names, path))
        return record
    record["detections"] = None if dets is None else [_md_detection(d, names, path) for d in dets]
    record["extra"] = extra
    return record


def _md_detection(det: dict[str, Any], names: list[str], path: Path) -> dict[str, Any]:
    out = {k: v for k, v in det.items() if k != "classifications"}
    if det.get("classifications"):
        out["predictions"] = _md_predictions(det["classifications"], names, path)
    return out


def _md_predictions(pairs: list[Any], names: list[str], path: Path) -> list[dict[str, Any]]:
    out = []
    for category, score in pairs:
        index = int(category)
        if not 0 <= index < len(names):
            raise PreviousOutputError(f"{path}: classification category {category!r} is not a row of this label set; pass --overwrite")
        out.append({"label": names[index], "score": float(score), "index": index})
    return out


# --- CSV -----------------------------------------------------------------------------------------
def _read_csv(path: Path) -> list[Record]:
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            rows, header = list(reader), list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PreviousOutputError(f"{path}: cannot read it back as CSV ({exc}); pass --overwrite to replace it") from None
    if "filepath" not in header:
        raise PreviousOutputError(f"{path}: has no 'filepath' column; not a bioclip-edge CSV output: pass --overwrite to replace it")
    index: dict[str, int] = {}  # label -> row: a CSV names labels only, so predictions carry no index
    boxes = "detection" in header
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        record = records.get(row["filepath"]) or records.setdefault(row["filepath"], _csv_record(row, boxes, index))
        if boxes and row.get("detection", "") != "":
            record["detections"].append(_csv_detection(row, index))
    return [read_back(record, boxes) for record in records.values()]


def _csv_record(row: dict[str, str], boxes: bool, index: dict[str, int]) -> dict[str, Any]:
    record: dict[str, Any] = {"filepath": row["filepath"], "failures": [row["failure"]] if row.get("failure") else []}
    record.update({k: row[k] for k in EXIF_FIELDS if row.get(k)})
    record.update({k: _number(row[k]) for k in SIZE_FIELDS if row.get(k)})
    if boxes:
        record["detections"] = []
    else:
        record["predictions"] = _csv_predictions(row, index)
        csv_read_back(row, record, lambda r, prefix: _csv_predictions(r, index, prefix), _number)  # videos, sequences
    return record


def _csv_detection(row: dict[str, str], index: dict[str, int]) -> dict[str, Any]:
    det: dict[str, Any] = {"category": row.get("detection_category", "")}
    if row.get("detection_conf", "") != "":
        det["conf"] = _number(row["detection_conf"])
    det["bbox"] = [_number(row.get(f"bbox_{c}", "")) for c in "xywh"]
    if row.get("frame_number", "") != "":
        det["frame_number"] = int(row["frame_number"])
    predictions = _csv_predictions(row, index)
    if predictions:
        det["predictions"] = predictions
    return det


def _csv_predictions(row: dict[str, str], index: dict[str, int], prefix: str = "") -> list[dict[str, Any]]:
    """``label_i``/``score_i`` cells (``prefix``: ``image_`` for a smoothed row's own); the index is
    the label's first row (CSV does not write it)."""
    out = []
    k = 1
    while row.get(f"{prefix}label_{k}"):
        label = row[f"{prefix}label_{k}"]
        out.append({"label": label, "score": float(row[f"{prefix}score_{k}"]), "index": index.get(label, -1)})
        k += 1
    return out


def _number(text: str) -> Any:
    """A CSV cell written from a number (``str(value)``) back to that number; other text as is."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- JSON Lines ------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[Record]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PreviousOutputError(f"{path}: cannot read it back ({exc}); pass --overwrite to replace it") from None
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict) or "filepath" not in record:
            raise PreviousOutputError(f"{path}: line {number} is not a result record; pass --overwrite to replace it")
        records.append(record)
    for record in records:
        record.pop("run", None)
        record.pop("warning", None)
    rows = jsonl_read_back(records)  # a video's frame rows back into its record
    boxes = _boxes(None, rows)
    return [read_back(row, boxes) for row in rows]


# --- shared ----------------------------------------------------------------------------------------
def _boxes(fingerprint: dict[str, Any] | None, rows: Sequence[dict[str, Any]] = ()) -> bool:
    """Whether the records are box records: the run classified MegaDetector's boxes (its fingerprint's
    mode), or, read without a fingerprint, its rows carry the detections."""
    if fingerprint is not None:
        return fingerprint.get("mode") == "detections"
    return any("detections" in row for row in rows)

"""Read a predictions file of any format the project writes into what the preview shows.

The format is sniffed from the content, not the name (people rename files): Parquet's magic
bytes are Parquet (its schema metadata holds the whole run description); a first line that is a
JSON record with ``filepath`` is JSON Lines; other JSON is a MegaDetector document (ours, or a
detector's own output: boxes without classifications); a header with a ``filepath`` column is
CSV. Records are read by ``jobs.previous_output.read_output_records``, the same parser
``--resume`` uses, without its fingerprint check: looking at a file proves nothing about
extending it.

What the run was (model, variant, backend, random weights) is in a MegaDetector file's
``info.classifier_metadata``. CSV and JSON Lines carry only the random-weights ``warning`` per
row, so the rest shows as "not recorded" unless the caller knows it (``classify --preview``
passes the classifier's own description).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioclip_edge.errors import PreviousOutputError, UserError
from bioclip_edge.runtime.jobs.previous_output import load_md_document, md_document_records, read_output_records
from bioclip_edge.runtime.jobs.records import read_back
from bioclip_edge.runtime.preview.items import Item, items_from_records

SNIFF_BYTES = 1 << 16
WHAT_TO_GIVE = "give the file 'bioclip-edge classify --out' wrote (MegaDetector JSON, CSV, JSON Lines or Parquet) or a MegaDetector output"


class PredictionsFileError(UserError, ValueError):
    """A predictions file the preview cannot read (missing, a folder, or not an output of ours or MegaDetector's)."""


@dataclass
class Predictions:
    """A predictions file as the preview pages need it."""

    path: Path
    fmt: str  # megadetector, csv or jsonl
    meta: dict[str, Any]  # model, variant, backend, precision, random_weights, warning, detector, mode
    items: list[Item]


def read_predictions(path: str | Path) -> Predictions:
    """The items and the run's metadata of the output at ``path``; one-line errors for bad files."""
    path = Path(path)
    fmt = sniff_format(path)
    try:
        if fmt == "megadetector":
            doc = load_md_document(path)
            records = md_document_records(doc, path)
            return Predictions(path, fmt, md_metadata(doc), items_from_records(records, doc.get("detection_categories")))
        if fmt == "parquet":
            return _read_parquet(path)
        records = read_output_records(path, fmt)
    except (PreviousOutputError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).split("; pass --overwrite")[0].removeprefix(f"{path}: ")
        raise PredictionsFileError(f"{path}: cannot read it as a {fmt} output ({reason}); {WHAT_TO_GIVE}") from None
    return Predictions(path, fmt, row_metadata(path, fmt), items_from_records(records))


def _read_parquet(path: Path) -> Predictions:
    """A Parquet output holds the run's metadata whole in its schema, and each record whole."""
    from bioclip_edge.runtime.jobs.parquet_output import read_classify_records

    meta, rows = read_classify_records(path)
    mode = (meta.get("run_fingerprint") or {}).get("mode") or ("detections" if any("detections" in r for r in rows) else "whole-image")
    meta = {k: v for k, v in meta.items() if k != "run_fingerprint"}
    meta.setdefault("mode", mode)
    return Predictions(path, "parquet", meta, items_from_records([read_back(row, mode == "detections") for row in rows]))


def sniff_format(path: Path) -> str:
    """megadetector, csv, jsonl or parquet, from the first bytes; refuses what is none of them."""
    if not path.exists():
        raise PredictionsFileError(f"{path}: no such file; {WHAT_TO_GIVE}")
    if not path.is_file():
        raise PredictionsFileError(f"{path}: is a folder, not a predictions file; {WHAT_TO_GIVE}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(SNIFF_BYTES)
        if raw.startswith(b"PAR1"):  # Parquet's magic bytes (classify --out X.parquet)
            return "parquet"
        head = raw.decode("utf-8-sig", errors="strict" if len(raw) < SNIFF_BYTES else "ignore")
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionsFileError(f"{path}: cannot read it as text ({exc}); {WHAT_TO_GIVE}") from None
    text = head.lstrip()
    first = text.splitlines()[0] if text else ""
    if text.startswith("{"):
        return "jsonl" if _is_record_line(first) else "megadetector"
    if "filepath" in next(csv.reader(io.StringIO(first)), []):
        return "csv"
    raise PredictionsFileError(f"{path}: not a bioclip-edge or MegaDetector output (neither JSON nor a CSV with a "
                               f"'filepath' column); {WHAT_TO_GIVE}")


def _is_record_line(line: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and "filepath" in record


def md_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's facts from a MegaDetector document's info block (a detector's file has no classifier)."""
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    meta = dict(info.get("classifier_metadata") or {})
    meta.pop("run_fingerprint", None)
    meta["detector"] = info.get("detector")
    meta["classifier"] = info.get("classifier")
    meta["mode"] = "whole-image" if meta.get("whole_image") else "detections"
    return meta


def row_metadata(path: Path, fmt: str) -> dict[str, Any]:
    """What CSV and JSON Lines rows say about the run: random weights (each row's ``warning``) and the mode."""
    first = _first_row(path, fmt)
    warning = first.get("warning") or None
    mode = "detections" if ("detection" in first if fmt == "csv" else "detections" in first) else "whole-image"
    return {"random_weights": bool(warning), "warning": warning, "mode": mode}


def _first_row(path: Path, fmt: str) -> dict[str, Any]:
    with open(path, encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            return next(csv.DictReader(fh), None) or {}
        line = fh.readline()
    return json.loads(line) if line.strip() else {}

"""A ``classify`` output of any format, read for a Camtrap DP package.

Records come from the readers ``--resume`` and the preview use (``jobs.previous_output``, the
format sniffed from the content by ``preview.reading``), which drop the sequence fields
(computed again whenever an output is written); the sequence each file was written in
(``seq_id`` and the sequence's top-k) is read here, from the same file, format by format. What
the run was (model, variant, random weights, the detector and its threshold) comes from a
MegaDetector file's ``info`` or a Parquet file's metadata; CSV and JSON Lines rows carry only
the random-weights warning, so ``--classified-by`` says the rest for them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.jobs.previous_output import load_md_document, md_document_records, read_output_records
from bioclip_edge.runtime.jobs.records import Record, read_back
from bioclip_edge.runtime.preview.reading import WHAT_TO_GIVE, PredictionsFileError, row_metadata, sniff_format

DEFAULT_DETECTION_THRESHOLD = 0.2  # MegaDetector's typical threshold, when the output does not record the run's
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}  # MegaDetector's own, for CSV box rows

Top = list[tuple[str, float]]


@dataclass
class Source:
    path: Path
    fmt: str
    records: list[Record]
    sequences: dict[str, tuple[str, Top]]  # filepath -> (seq_id, the sequence's top-k)
    meta: dict[str, Any]  # the run's metadata, as recorded (empty for CSV and JSON Lines)
    descriptions: dict[str, str] = field(default_factory=dict)  # label -> MegaDetector taxonomy description
    detection_categories: dict[str, str] = field(default_factory=lambda: dict(MD_CATEGORIES))
    detector: str | None = None

    @property
    def random_weights(self) -> bool:
        return bool(self.meta.get("random_weights"))

    @property
    def detection_threshold(self) -> float:
        value = (self.meta.get("run_fingerprint") or {}).get("detection_threshold")
        return float(value) if value is not None else DEFAULT_DETECTION_THRESHOLD

    def classified_by(self) -> str | None:
        """The model and bundle variant that classified, as the output recorded them (None: not recorded)."""
        model, variant = self.meta.get("model"), self.meta.get("variant")
        if not model:
            return None
        version = self.meta.get("bioclip_edge_version")
        return f"bioclip-edge{' ' + version if version else ''}: {model}" + (f" ({variant})" if variant else "")


def read_source(path: Path) -> Source:
    """The records, sequences and run metadata of the classify output at ``path``."""
    fmt = sniff_format(path)
    try:
        if fmt == "megadetector":
            return _megadetector(path)
        if fmt == "parquet":
            return _parquet(path)
        records = read_output_records(path, fmt)
        sequences = _csv_sequences(path, records) if fmt == "csv" else _jsonl_sequences(path)
    except (UserError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc).split("; pass --overwrite")[0].removeprefix(f"{path}: ")
        raise PredictionsFileError(f"{path}: cannot read it as a {fmt} output ({reason}); {WHAT_TO_GIVE}") from None
    return Source(path, fmt, records, sequences, row_metadata(path, fmt))


def _megadetector(path: Path) -> Source:
    doc = load_md_document(path)
    records = md_document_records(doc, path)
    categories = {str(k): str(v) for k, v in (doc.get("classification_categories") or {}).items()}
    described = doc.get("classification_category_descriptions") or {}
    info: dict[str, Any] = doc["info"] if isinstance(doc.get("info"), dict) else {}
    sequences = {}
    for image in doc["images"]:
        if image.get("seq_id"):
            top = [(categories.get(str(c), f"label {c}"), float(s)) for c, s in image.get("seq_classifications") or []]
            sequences[image["file"]] = (str(image["seq_id"]), top)
    return Source(path, "megadetector", records, sequences, dict(info.get("classifier_metadata") or {}),
                  {categories[k]: str(v) for k, v in described.items() if k in categories},
                  {str(k): str(v) for k, v in (doc.get("detection_categories") or MD_CATEGORIES).items()},
                  str(info["detector"]) if info.get("detector") else None)


def _parquet(path: Path) -> Source:
    from bioclip_edge.runtime.jobs.media_fields import restore_own
    from bioclip_edge.runtime.jobs.parquet_output import read_classify_records

    meta, rows = read_classify_records(path)
    mode = (meta.get("run_fingerprint") or {}).get("mode")
    boxes = mode == "detections" if mode else any("detections" in row for row in rows)
    sequences = {row["filepath"]: (str(row["seq_id"]), _top(row.get("seq_predictions") or [])) for row in rows if row.get("seq_id")}
    records = [read_back(restore_own({k: v for k, v in row.items() if k != "run"}), boxes) for row in rows]
    return Source(path, "parquet", records, sequences, meta)


def _top(predictions: list[dict[str, Any]]) -> Top:
    return [(str(p["label"]), float(p["score"])) for p in predictions]


def _csv_sequences(path: Path, records: list[Record]) -> dict[str, tuple[str, Top]]:
    """Each file's sequence; and the camera serial that box rows carry but are read back without."""
    out: dict[str, tuple[str, Top]] = {}
    by_path = {r["filepath"]: r for r in records}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("serial") and row["filepath"] in by_path:
                by_path[row["filepath"]].setdefault("serial", row["serial"])  # type: ignore[typeddict-item]
            if row.get("seq_id") and row["filepath"] not in out:
                top, k = [], 1
                while row.get(f"seq_label_{k}"):
                    top.append((row[f"seq_label_{k}"], float(row[f"seq_score_{k}"])))
                    k += 1
                out[row["filepath"]] = (row["seq_id"], top)
    return out


def _jsonl_sequences(path: Path) -> dict[str, tuple[str, Top]]:
    out: dict[str, tuple[str, Top]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else {}
        if row.get("seq_id") and "frame_number" not in row:
            out[row["filepath"]] = (str(row["seq_id"]), _top(row.get("seq_predictions") or []))
    return out

"""Write a run's outputs by streaming its records, whatever their number: one record in memory at a
time (Parquet: one row group), into a temporary file renamed over the target at the end.

The bytes are those of ``writers``' whole-list renderers (the golden outputs hold them): a
MegaDetector document is ``json.dumps(doc, indent=1)`` written in pieces, its ``images`` array one
entry at a time after the head; CSV and JSON Lines rows are appended in order; Parquet gets one
row group per ``ROW_GROUP`` records. What the head needs to know of all records (CSV columns that
only some records fill, whether the output holds videos, a large label set's categories) is
gathered first by ``scan``, a pass that keeps a few flags, not the records.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TextIO

from bioclip_edge.runtime.common.files import atomic_writer
from bioclip_edge.runtime.jobs.faults import fault_point
from bioclip_edge.runtime.jobs.media_fields import classifications
from bioclip_edge.runtime.jobs.records import RecordFields, has_video_fields
from bioclip_edge.runtime.jobs.writers import (MAX_LISTED_CATEGORIES, csv_header, csv_record_rows, jsonl_lines,
                                               md_image, megadetector_head)

ROW_GROUP = 5_000
TEXT_BUFFER = 1 << 20


@dataclass
class Features:
    """What an output's head needs to know of all its records."""

    count: int = 0
    videos: bool = False  # some record has video fields (the info block describes the sampling)
    boxes: bool = False  # box records: CSV gets the detection columns
    predictions: bool = False  # some record has predictions (--smooth then keeps the image's own)
    used: set[int] | None = None  # label rows named (only gathered for label sets too large to list)
    witnesses: list[dict[str, Any]] = field(default_factory=list)  # one record per optional CSV column
    _seen: set[str] = field(default_factory=set)

    def add(self, record: RecordFields) -> None:
        self.count += 1
        self.videos = self.videos or has_video_fields(record)
        self.boxes = self.boxes or record["kind"] == "boxes"
        self.predictions = self.predictions or bool(record.get("predictions"))
        flags = {"serial" if "serial" in record else "", "video" if has_video_fields(record) else "",
                 "note" if record.get("note") else "",
                 "frame" if any(d.get("frame_number") is not None for d in record.get("detections") or []) else ""}
        if not flags <= self._seen | {""}:
            self._seen |= flags
            self.witnesses.append(dict(record))
        if self.used is not None:
            classifications(_all_predictions(record), self.used)


def _all_predictions(record: RecordFields) -> Iterator[dict[str, Any]]:
    yield from record.get("predictions") or []
    for frame in record.get("frames") or []:
        yield from frame.get("predictions") or []
    for det in record.get("detections") or []:
        yield from det.get("predictions") or []


def scan(records: Iterable[RecordFields], n_labels: int = 0, each: Callable[[int, RecordFields], None] | None = None) -> Features:
    """One pass over ``records``: their ``Features``; ``each(i, record)`` sees every one (sequences)."""
    features = Features(used=set() if n_labels > MAX_LISTED_CATEGORIES else None)
    for i, record in enumerate(records):
        features.add(record)
        if each is not None:
            each(i, record)
    return features


@contextlib.contextmanager
def text_output(path: str | Path) -> Iterator[TextIO]:
    """A text stream (UTF-8, newlines as written) whose content replaces ``path`` when the block ends."""
    with atomic_writer(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
        try:
            yield text
            text.flush()
            fault_point("output-rename")
        finally:
            text.detach()


def write_megadetector(path: str | Path, records: Iterable[RecordFields], meta: dict[str, Any], label_names: Sequence[str],
                       features: Features, detections: dict[str, Any] | None = None,
                       descriptions: Sequence[str] | None = None) -> Path:
    """``writers.megadetector_document`` as ``json.dumps(indent=1)`` writes it, one image at a time."""
    head = megadetector_head(meta, label_names, detections, descriptions, features.used or set())
    text = json.dumps({**head, "images": []}, indent=1, ensure_ascii=False)
    tail = "[]\n}"
    assert text.endswith(tail)
    with text_output(path) as out:
        out.write(text[: -len(tail)])
        used: set[int] = set()
        first = True
        for record in records:
            image = json.dumps(md_image(record, used, detections is not None), indent=1, ensure_ascii=False)
            out.write(("[\n  " if first else ",\n  ") + image.replace("\n", "\n  "))
            first = False
            fault_point("output-write")
        out.write("[]\n}\n" if first else "\n ]\n}\n")
    return Path(path)


def write_csv(path: str | Path, records: Iterable[RecordFields], meta: dict[str, Any], features: Features) -> Path:
    header = csv_header(features.witnesses, meta, features.boxes)
    with text_output(path) as out:
        writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerows(csv_record_rows(record, meta, features.boxes))
            fault_point("output-write")
    return Path(path)


def write_jsonl(path: str | Path, records: Iterable[RecordFields], meta: dict[str, Any]) -> Path:
    with text_output(path) as out:
        for record in records:
            out.write(jsonl_lines(record, meta))
            fault_point("output-write")
    return Path(path)


def write_parquet(path: str | Path, records: Iterable[RecordFields], meta: dict[str, Any]) -> Path:
    """One row group per ``ROW_GROUP`` records (``parquet_output.classify_table``'s columns)."""
    import pyarrow.parquet as pq

    from bioclip_edge.runtime.jobs.parquet_output import PARQUET_OPTIONS, classify_table

    with atomic_writer(path) as raw:
        writer = None
        for chunk in _chunks(records, ROW_GROUP):
            table = classify_table(chunk, meta)
            writer = writer or pq.ParquetWriter(raw, table.schema, **PARQUET_OPTIONS)
            writer.write_table(table)
            fault_point("output-write")
        if writer is None:
            table = classify_table([], meta)
            writer = pq.ParquetWriter(raw, table.schema, **PARQUET_OPTIONS)
            writer.write_table(table)
        writer.close()
        fault_point("output-rename")
    return Path(path)


def _chunks(records: Iterable[RecordFields], size: int) -> Iterator[list[RecordFields]]:
    chunk: list[RecordFields] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk

"""``labels adapt --suggest N --pool DIR``: the unlabelled frames worth labelling next.

The adapted matrix scores every pool image; the ones whose two best labels are closest (smallest
top-1 minus top-2 probability) are the ones it is least sure of, so their labels teach it most. A
burst or one camera often holds many such frames that look alike, so the list is spread out:

* frames are grouped into sequences (bursts) by ``runtime.jobs.sequences.group_sequences``, the
  rule of ``classify --sequence-gap``: one folder and camera (EXIF make, model, serial), each
  capture time within ``gap`` seconds of the previous frame's. The capture time is EXIF
  DateTimeOriginal, else the file's modification time (a card copy keeps it; most cameras write
  the EXIF time), so bursts are told apart even inside one folder;
* each next pick is the least certain frame among those whose sequence, then whose folder (a
  camera, a card dump), has been picked least so far: one burst gives a second frame only once
  every sequence has given one.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bioclip_edge.runtime.common.files import atomic_writer
from bioclip_edge.runtime.images.discover import discover, is_video_name

FIELDS = ("filepath", "group", "sequence", "captured", "top1", "top1_probability", "top2", "top2_probability", "margin")
DEFAULT_GAP = 60.0  # seconds between frames of one burst (camera traps fire bursts seconds apart)


@dataclass(frozen=True)
class Suggestion:
    filepath: str
    group: str
    top1: str
    top1_probability: float
    top2: str
    top2_probability: float
    sequence: str = ""  # the burst: frames of one sequence are near-duplicates
    captured: str = ""  # capture time, EXIF (or the file's modification time, marked "mtime")

    @property
    def margin(self) -> float:
        return self.top1_probability - self.top2_probability


def score_pool(embedder, pool: Path, labels, gap: float = DEFAULT_GAP) -> tuple[list[Suggestion], list[tuple[str, str]]]:
    """Every readable still image in ``pool`` with its two best labels and its sequence (frames
    within ``gap`` seconds, see the module docstring); unreadable ones listed apart."""
    from bioclip_edge.runtime.images.embedder import iter_embeddings

    items = [i for i in discover([pool], relative=True) if not is_video_name(i.path)]
    records, vectors, failures = [], [], []
    for prepared, vector in iter_embeddings(embedder, items):
        if vector is None:
            failures.append((prepared.item.filepath, str(prepared.failure)))
            continue
        records.append(_record(prepared.item.filepath, Path(prepared.item.path), prepared.info))
        vectors.append(vector)
    if not vectors:
        return [], failures
    idx, probs = labels.topk(np.stack(vectors), k=min(2, labels.n))
    label_names = labels.names
    out = []
    for record, i, p in zip(records, idx, probs):
        top2, top2_probability = (label_names[i[1]], float(p[1])) if len(i) > 1 else ("", 0.0)
        out.append(Suggestion(record["filepath"], os.path.dirname(record["filepath"]) or ".", label_names[i[0]],
                              float(p[0]), top2, top2_probability, captured=record["captured"]))
    return _with_sequences(out, records, gap), failures


def _record(filepath: str, path: Path, info: Any) -> dict[str, Any]:
    """What sequence grouping reads (``jobs.sequences``' record fields), the capture time falling back to mtime."""
    exif_time = str((info or {}).get("datetime") or "")
    record = {"filepath": filepath, "kind": "image", **{k: (info or {}).get(k) for k in ("make", "model", "serial")}}
    if exif_time:
        return {**record, "datetime": exif_time, "captured": exif_time}
    try:
        when = _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y:%m:%d %H:%M:%S")
    except OSError:
        return {**record, "datetime": "", "captured": ""}
    return {**record, "datetime": when, "captured": f"{when} (mtime)"}


def _with_sequences(scored: list[Suggestion], records: list[dict[str, Any]], gap: float) -> list[Suggestion]:
    from bioclip_edge.runtime.jobs.sequences import group_sequences

    out = list(scored)
    for members in group_sequences(records, gap):
        first = min(members, key=lambda i: (records[i]["datetime"], records[i]["filepath"]))
        name = f"{records[first]['filepath']} (+{len(members) - 1})" if len(members) > 1 else records[first]["filepath"]
        for i in members:
            out[i] = replace(out[i], sequence=name)
    return out


def pick(scored: list[Suggestion], n: int) -> list[Suggestion]:
    """The ``n`` frames picked as the module docstring says, least certain first."""
    remaining = sorted(scored, key=lambda s: (s.margin, s.filepath))
    per_sequence: dict[str, int] = {}
    per_group: dict[str, int] = {}
    chosen: list[Suggestion] = []
    while remaining and len(chosen) < n:
        best = min(range(len(remaining)), key=lambda i: (per_sequence.get(remaining[i].sequence or remaining[i].filepath, 0),
                                                         per_group.get(remaining[i].group, 0), i))
        s = remaining.pop(best)
        per_sequence[s.sequence or s.filepath] = per_sequence.get(s.sequence or s.filepath, 0) + 1
        per_group[s.group] = per_group.get(s.group, 0) + 1
        chosen.append(s)
    return sorted(chosen, key=lambda s: (s.margin, s.filepath))


def write_suggestions(path: Path, chosen: list[Suggestion]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(FIELDS)
    for s in chosen:
        writer.writerow([s.filepath, s.group, s.sequence, s.captured, s.top1, f"{s.top1_probability:.4f}", s.top2,
                         f"{s.top2_probability:.4f}", f"{s.margin:.4f}"])
    with atomic_writer(path) as fh:
        fh.write(text.getvalue().encode("utf-8"))
    return path

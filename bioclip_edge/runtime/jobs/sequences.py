"""Group a run's images into sequences (camera-trap bursts), with COCO Camera Traps' names.

``--sequence-gap SECONDS``: images of one sequence share a folder and a camera (EXIF make, model
and body serial, where present), and each capture time (EXIF DateTimeOriginal) is within the gap
of the previous image's. An image without a capture time (or one that failed, or a video) is a
sequence of its own: nothing says which burst it belongs to.

Computed over the run's *final* records at write time (``apply_sequences``), never while images
stream, so a resumed run, a run that extended a finished output and a cluster run give the same
grouping as one uninterrupted run. Each record gets:

* ``seq_id``: ``seq-`` + 12 hex digits of a sha256 of the first image's filepath (stable whatever
  order or engine produced the records, and unique per first image);
* ``seq_num_frames``: images in the sequence;
* ``frame_num``: the image's place in it, 0-based, by capture time (filepath breaks ties);
* ``seq_predictions``: the sequence's top-k by ``runtime.jobs.rollup`` (mean over its images of
  each label's probability, 0 where an image's top-k does not list it).

``smooth=True`` (``--smooth``): ``predictions`` becomes the sequence's top-k and the image's own
is kept as ``image_predictions``, as MegaDetector's sequence smoothing records what it replaced.
Writers render these fields (``runtime.jobs.media_fields``); readers drop them again.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import posixpath
from dataclasses import dataclass
from typing import Any, Sequence

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.jobs.records import RecordFields
from bioclip_edge.runtime.jobs.rollup import mean_topk

EXIF_TIME_FORMATS = ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class SequenceOptions:
    """``--sequence-gap`` (None: no sequences) and ``--smooth``."""

    gap: float | None = None
    smooth: bool = False

    def __post_init__(self) -> None:
        if self.gap is not None and self.gap < 0:
            raise OptionError(f"--sequence-gap must be 0 or more seconds (got {self.gap})")
        if self.smooth and self.gap is None:
            raise OptionError("--smooth replaces each image's labels with its sequence's: give --sequence-gap SECONDS too")

    def describe(self) -> dict[str, Any]:
        """For outputs' info blocks."""
        return {"sequence_gap_seconds": self.gap, "smoothed": self.smooth,
                "sequence_grouping": "same folder and camera (make, model, serial); capture times within the gap of the previous image"}


def capture_time(record: RecordFields) -> _dt.datetime | None:
    """The EXIF capture time as written in records (``YYYY:MM:DD HH:MM:SS``), or None."""
    text = str(record.get("datetime") or "").strip()
    for fmt in EXIF_TIME_FORMATS:
        try:
            return _dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def group_sequences(records: Sequence[RecordFields], gap: float) -> list[list[int]]:
    """Indices of ``records`` per sequence, each in capture order; singletons for untimed records."""
    cameras: dict[tuple[str, ...], list[tuple[_dt.datetime, str, int]]] = {}
    groups: list[list[int]] = []
    for i, record in enumerate(records):
        when = capture_time(record)
        if when is None or record.get("failures") or record["kind"] == "video":
            groups.append([i])
            continue
        key = (posixpath.dirname(record["filepath"]), *(str(record.get(k) or "") for k in ("make", "model", "serial")))
        cameras.setdefault(key, []).append((when, record["filepath"], i))
    for shots in cameras.values():
        shots.sort()
        current = [shots[0]]
        for shot in shots[1:]:
            if (shot[0] - current[-1][0]).total_seconds() <= gap:
                current.append(shot)
            else:
                groups.append([s[2] for s in current])
                current = [shot]
        groups.append([s[2] for s in current])
    return groups


def apply_sequences(records: Sequence[RecordFields], options: SequenceOptions, k: int) -> Sequence[RecordFields]:
    """``records`` (same order) with the sequence fields added; unchanged when no gap is given."""
    if options.gap is None:
        return list(records)
    out = [dict(r) for r in records]
    for members in group_sequences(records, options.gap):
        seq_id = "seq-" + hashlib.sha256(records[members[0]]["filepath"].encode("utf-8")).hexdigest()[:12]
        top = mean_topk((records[i].get("predictions") or [] for i in members), k)
        for frame_num, i in enumerate(members):
            record = out[i]
            record.update({"seq_id": seq_id, "seq_num_frames": len(members), "frame_num": frame_num, "seq_predictions": top})
            if options.smooth and record.get("predictions"):
                record["image_predictions"] = record["predictions"]
                record["predictions"] = top
    return out

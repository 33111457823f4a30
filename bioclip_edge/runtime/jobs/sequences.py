"""Group a run's images into sequences (camera-trap bursts), with COCO Camera Traps' names.

``--sequence-gap SECONDS``: images of one sequence share a folder and a camera (EXIF make, model
and body serial, where present), and each capture time (EXIF DateTimeOriginal) is within the gap
of the previous image's. An image without a capture time (or one that failed, or a video) is a
sequence of its own: nothing says which burst it belongs to.

Computed over the run's *final* records at write time (``SequencePlan``, or ``apply_sequences`` on a
list), never while images stream, so a resumed run, a run that extended a finished output and a
cluster run give the same grouping as one uninterrupted run. The records are read from disk in
passes and only what grouping needs is held: each timed image's capture time, camera, filepath
and place (``observe``), then each sequence's top-k once all its images were seen (``tally``).
Each record gets:

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
from typing import Any, Iterable, Sequence

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


def camera_key(record: RecordFields) -> tuple[str, ...] | None:
    """Which sequences a record may join (folder and camera), or None: a sequence of its own."""
    if record.get("failures") or record["kind"] == "video" or capture_time(record) is None:
        return None
    return (posixpath.dirname(record["filepath"]), *(str(record.get(k) or "") for k in ("make", "model", "serial")))


class SequencePlan:
    """Sequences over records read in passes: ``observe`` each (place i), ``group``, ``tally`` each,
    then ``fields`` adds a record's sequence fields. Holds per timed image only (time, filepath, place)
    and per sequence its id, size and top-k; an untimed image's fields come from itself."""

    def __init__(self, options: SequenceOptions, k: int):
        self.options, self.k = options, k
        self._cameras: dict[tuple[str, ...], list[tuple[_dt.datetime, str, int]]] = {}
        self._member: dict[int, tuple[int, int]] = {}  # place -> (sequence, frame_num)
        self._sequences: list[tuple[str, int]] = []  # (seq_id, size)
        self._tops: dict[int, tuple[tuple[str, float, int], ...]] = {}
        self._pending: dict[int, dict[int, Any]] = {}

    def observe(self, i: int, record: RecordFields) -> None:
        key = camera_key(record)
        if key is not None:
            self._cameras.setdefault(key, []).append((capture_time(record), record["filepath"], i))  # type: ignore[arg-type]

    def group(self) -> None:
        for shots in self._cameras.values():
            shots.sort()
            current = [shots[0]]
            for shot in shots[1:]:
                if (shot[0] - current[-1][0]).total_seconds() <= float(self.options.gap or 0):
                    current.append(shot)
                else:
                    self._add(current)
                    current = [shot]
            self._add(current)
        self._cameras.clear()

    def _add(self, shots: list[tuple[_dt.datetime, str, int]]) -> None:
        number = len(self._sequences)
        self._sequences.append((_seq_id(shots[0][1]), len(shots)))
        for frame_num, (_, _, i) in enumerate(shots):
            self._member[i] = (number, frame_num)

    def tally(self, i: int, record: RecordFields) -> None:
        """Note a grouped record's predictions; a sequence's top-k is made once all its images came."""
        if i not in self._member:
            return
        number, frame_num = self._member[i]
        pending = self._pending.setdefault(number, {})
        pending[frame_num] = record.get("predictions") or []
        size = self._sequences[number][1]
        if len(pending) == size:
            top = mean_topk((pending[f] for f in range(size)), self.k)
            self._tops[number] = tuple((p["label"], p["score"], p["index"]) for p in top)
            del self._pending[number]

    def fields(self, i: int, record: RecordFields) -> dict[str, Any]:
        """``record`` with its sequence fields."""
        if i in self._member:
            number, frame_num = self._member[i]
            seq_id, size = self._sequences[number]
            top = [{"label": label, "score": score, "index": index} for label, score, index in self._tops[number]]
        else:
            seq_id, size, frame_num = _seq_id(record["filepath"]), 1, 0
            top = mean_topk([record.get("predictions") or []], self.k)
        out = dict(record)
        out.update({"seq_id": seq_id, "seq_num_frames": size, "frame_num": frame_num, "seq_predictions": top})
        if self.options.smooth and out.get("predictions"):
            out["image_predictions"] = out["predictions"]
            out["predictions"] = top
        return out


def _seq_id(first: str) -> str:
    return "seq-" + hashlib.sha256(first.encode("utf-8")).hexdigest()[:12]


def plan_sequences(records: Iterable[RecordFields], options: SequenceOptions, k: int) -> SequencePlan:
    """A ``SequencePlan`` over ``records`` (iterated twice: re-iterable, such as a run's stored results)."""
    plan = SequencePlan(options, k)
    for i, record in enumerate(records):
        plan.observe(i, record)
    plan.group()
    for i, record in enumerate(records):
        plan.tally(i, record)
    return plan


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
    plan = plan_sequences(records, options, k)
    return [plan.fields(i, r) for i, r in enumerate(records)]

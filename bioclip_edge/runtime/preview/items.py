"""Result records (whatever format they were read from) -> what a preview page shows of each file.

An ``Item`` is one image or video: its top-1 label and score (what it is filed under), its top-3,
its boxes, its video frames, or its failure. Why one shape: the pages then never look at the
output format. The rules:

* whole image: the record's own predictions;
* ``--detections``: the box whose best label scores highest decides the image's label (an image
  with several animals is filed once, under its most confident box); an image without a classified
  box is filed under ``NO_BOX``;
* video (``video_frames``: MegaDetector's video convention, frames numbered by ``frame_number``):
  frames are kept in order; the video's label is its roll-up ``predictions`` as written
  (``jobs.rollup``: the mean probability over the sampled frames), or the same mean computed
  here from the frames' top-k when the output holds none (a detector's video file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from bioclip_edge.runtime.jobs.records import RecordFields

NO_BOX = "(no classified box)"
NO_LABEL = "(no label)"
# MegaDetector's own detection categories: what a CSV (which writes only the id) most likely means
MD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
EXTRA_FIELDS = ("datetime", "make", "model", "seq_id", "frame_num", "seq_num_frames")  # shown under the picture
Scored = tuple[str, float]


@dataclass(frozen=True)
class Box:
    """A detector box (normalised x, y, w, h) and, when classified, its best labels."""

    bbox: tuple[float, float, float, float]
    category: str
    conf: float | None
    top: tuple[Scored, ...] = ()


@dataclass(frozen=True)
class Frame:
    """One sampled frame of a video: its number in the stream, its best labels and boxes."""

    number: int
    top: tuple[Scored, ...] = ()
    boxes: tuple[Box, ...] = ()


@dataclass
class Item:
    """One file of the output, as the pages show it."""

    filepath: str
    label: str | None = None  # None: failed
    score: float = 0.0
    top: tuple[Scored, ...] = ()
    boxes: tuple[Box, ...] = ()
    frames: tuple[Frame, ...] = ()
    failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return bool(self.frames)


def items_from_records(records: Iterable[RecordFields], categories: dict[str, str] | None = None) -> list[Item]:
    """``Item``s of ``records``; ``categories``: detection category id -> name (MegaDetector's by default)."""
    names = {**MD_CATEGORIES, **(categories or {})}
    return [item_from_record(r, names) for r in group_frame_rows(records)]


def item_from_record(record: RecordFields, categories: dict[str, str]) -> Item:
    """One record -> one ``Item`` (failure, video, boxes or whole image)."""
    failures = [str(f) for f in record.get("failures") or [] if f]
    if record.get("md_failure"):
        failures.insert(0, f"megadetector: {record['md_failure']}")
    item = Item(filepath=str(record["filepath"]), extra={k: record[k] for k in EXTRA_FIELDS if record.get(k) not in (None, "")})
    if failures:  # with --detections, a detector's boxes may remain on an image we could not read
        item.failure = "; ".join(failures)
        return item
    frames = video_frames(record)
    if frames is not None:
        return _video_item(item, record, frames, categories)
    if record.get("kind") == "boxes":
        return _boxes_item(item, record.get("detections") or [], categories)
    item.top = _top(record.get("predictions"))
    item.label, item.score = item.top[0] if item.top else (NO_LABEL, 0.0)
    return item


def _boxes_item(item: Item, detections: Sequence[dict[str, Any]], categories: dict[str, str]) -> Item:
    item.boxes = tuple(_box(d, categories) for d in detections if _has_bbox(d))
    classified = [b for b in item.boxes if b.top]
    if classified:
        best = max(classified, key=lambda b: b.top[0][1])
        item.top, (item.label, item.score) = best.top, best.top[0]
    else:
        item.label = NO_BOX
    return item


def video_frames(record: RecordFields) -> list[dict[str, Any]] | None:
    """A video record's frames as ``{"frame_number", "predictions"?, "detections"?}`` dicts, or None
    for a still. Three shapes reach here (``jobs.media_fields``): ``frames`` (MegaDetector JSON and
    JSON Lines read back), boxes carrying ``frame_number`` (``--detections`` on a detector's video
    file), and a CSV video row (``frame_rate``, ``frames_processed``: frame numbers, no labels)."""
    if record.get("frames"):
        return list(record["frames"])
    dets = record.get("detections") or []
    if any(isinstance(d, dict) and d.get("frame_number") is not None for d in dets):
        by_frame: dict[int, list[dict[str, Any]]] = {}
        for det in dets:
            by_frame.setdefault(int(det.get("frame_number") or 0), []).append(det)
        return [{"frame_number": n, "detections": d} for n, d in sorted(by_frame.items())]
    if record.get("kind") == "video" and record.get("frames_processed"):
        return [{"frame_number": int(n)} for n in record["frames_processed"]]
    return None


def _video_item(item: Item, record: RecordFields, frames: list[dict[str, Any]], categories: dict[str, str]) -> Item:
    item.frames = tuple(_frame(f, categories) for f in sorted(frames, key=lambda f: int(f.get("frame_number") or 0)))
    item.top = _top(record.get("predictions")) or roll_up(item.frames)
    item.label, item.score = item.top[0] if item.top else (NO_BOX, 0.0)
    return item


def roll_up(frames: Sequence[Frame], k: int = 3) -> tuple[Scored, ...]:
    """A video's best labels: mean probability over its sampled frames (0 where a label is not listed)."""
    totals: dict[str, float] = {}
    for frame in frames:
        for label, score in frame.top:
            totals[label] = totals.get(label, 0.0) + score
    n = max(len(frames), 1)
    return tuple(sorted(((label, s / n) for label, s in totals.items()), key=lambda p: -p[1])[:k])


def _frame(raw: dict[str, Any], categories: dict[str, str]) -> Frame:
    boxes = tuple(_box(d, categories) for d in raw.get("detections") or [] if _has_bbox(d) and not _is_whole(d))
    top = _top(raw.get("predictions"))
    if not top:
        classified = [b for b in boxes if b.top] or [_box(d, categories) for d in raw.get("detections") or []]
        top = max((b.top for b in classified if b.top), key=lambda t: t[0][1], default=())
    return Frame(number=int(raw.get("frame_number", 0)), top=top, boxes=boxes)


def group_frame_rows(records: Iterable[RecordFields]) -> list[RecordFields]:
    """Per-frame rows of one video (JSON Lines: a ``frame_number`` on each row) -> one record with
    ``frames``; every other record passes through unchanged, in order."""
    out: list[RecordFields] = []
    videos: dict[str, dict[str, Any]] = {}
    for record in records:
        if "frame_number" not in record or record.get("frames"):
            out.append(record)
            continue
        video = videos.get(record["filepath"])
        if video is None:
            video = videos[record["filepath"]] = {"filepath": record["filepath"], "frames": [], "failures": []}
            out.append(video)
        video["frames"].append(record)
    return out


def _box(det: dict[str, Any], categories: dict[str, str]) -> Box:
    x, y, w, h = (float(v) for v in det["bbox"])
    conf = det.get("conf")
    category = str(det.get("category", ""))
    return Box(bbox=(x, y, w, h), category=categories.get(category, category),
               conf=float(conf) if isinstance(conf, (int, float)) else None, top=_top(det.get("predictions")))


def _has_bbox(det: dict[str, Any]) -> bool:
    bbox = det.get("bbox")
    return isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)


def _is_whole(det: dict[str, Any]) -> bool:
    """The whole-frame box a classifier-only run writes: not worth drawing."""
    return [float(v) for v in det.get("bbox") or []] == [0.0, 0.0, 1.0, 1.0]


def _top(predictions: Any, k: int = 3) -> tuple[Scored, ...]:
    """The first ``k`` (label, score) pairs, best first as written."""
    if not isinstance(predictions, list):
        return ()
    return tuple((str(p["label"]), float(p["score"])) for p in predictions[:k] if isinstance(p, dict) and "label" in p)

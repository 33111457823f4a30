"""The records ``classify`` makes, checkpoints, sends over Ray, writes and reads back: one per input.

Each record says what it is in ``kind``, decided where it is made:

* ``image``: a still classified whole (``ImageRecord``);
* ``video``: a video classified whole, its top-k the roll-up over its sampled frames
  (``runtime.jobs.rollup``), each frame a ``frame`` (``FrameRecord``) in ``frames``;
* ``boxes``: an image (or video) of a MegaDetector file, with every detection of its entry and
  the top-k of the ones classified (``BoxesRecord``). A box record carries the detector's entry
  whatever happened, so an image that could not be read is a box record with ``failures``;
* ``failure``: an input classified whole that could not be read (``FailureRecord``); a video's
  carries MegaDetector's failed-video fields (``frame_rate`` -1, no ``frames_processed``).

Sequence fields (``SequenceFields``) are added to any of them at write time
(``runtime.jobs.sequences``). Records are plain dicts, so the writers and the Ray wire read them
as they are; the kind is the one key no format writes (``stored`` takes it off), and a record read
back from a format is given its kind again in one place (``read_back``), from the marks the
formats do write. The layout (key order) is ``ORDER``: JSON Lines and Parquet write records in it.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Required, TypedDict, Union

from bioclip_edge.runtime.images.pipeline import MediaInfo

Kind = Literal["image", "video", "frame", "boxes", "failure"]
FAILED_VIDEO_RATE = -1.0  # MegaDetector's frame_rate for a video it could not read
ORDER = ("kind", "filepath", "predictions", "detections", "failures", "datetime", "make", "model", "serial", "width",
         "height", "frame_rate", "frames_processed", "frames", "note", "extra", "md_failure")
INFO_FIELDS = ("datetime", "make", "model", "serial", "width", "height", "frame_rate", "frames_processed", "note")


class Prediction(TypedDict):
    label: str
    score: float
    index: int  # the label's row in the label matrix (-1: read back from a CSV, which does not write it)


Predictions = list[Prediction]  # one vector's top-k, best first


class CameraFields(TypedDict, total=False):
    """EXIF fields and the upright picture's size, when known."""

    datetime: str
    make: str
    model: str
    serial: str
    width: int
    height: int


class SequenceFields(TypedDict, total=False):
    """``--sequence-gap`` (and ``--smooth``): computed over the finished records when writing."""

    seq_id: str
    seq_num_frames: int
    frame_num: int
    seq_predictions: Predictions
    image_predictions: Predictions  # --smooth: the image's own top-k, while predictions holds the sequence's


class _Record(CameraFields, SequenceFields, total=False):
    filepath: Required[str]
    failures: Required[list[str]]  # reasons; empty when the input was read
    note: str  # a damaged video that kept some frames, or boxes in frames a video lacks
    run: str  # CSV and JSON Lines: the run's fingerprint token, added when writing


class ImageRecord(_Record, total=False):
    kind: Required[Literal["image"]]
    predictions: Required[Predictions]


class FrameRecord(TypedDict):
    kind: Literal["frame"]
    frame_number: int  # the frame's index in the stream, as MegaDetector counts frames
    predictions: Predictions


class VideoRecord(_Record, total=False):
    kind: Required[Literal["video"]]
    predictions: Required[Predictions]  # the roll-up over the frames
    frame_rate: Required[float]
    frames_processed: Required[list[int]]  # the sampled frames' numbers, in order
    frames: list[FrameRecord]  # absent when read back from a CSV (which keeps only the roll-up)


class Detection(TypedDict, total=False):
    """A MegaDetector box as the detector wrote it (other keys kept as they came), plus our top-k."""

    category: str
    conf: float
    bbox: list[float]  # normalised x, y, width, height
    frame_number: int  # a video's box: the frame it is in
    predictions: Predictions  # only on the boxes that were classified


class BoxesRecord(_Record, total=False):
    kind: Required[Literal["boxes"]]
    detections: Required[list[Detection] | None]  # None: MegaDetector could not read the image either
    extra: Required[dict[str, Any]]  # the entry's other fields, written back before ``file``
    md_failure: str  # MegaDetector's own failure, kept as it was


class FailureRecord(_Record, total=False):
    kind: Required[Literal["failure"]]
    predictions: Required[Predictions]  # empty
    frame_rate: float  # a video: FAILED_VIDEO_RATE
    frames_processed: list[int]  # a video: empty


Record = Union[ImageRecord, VideoRecord, BoxesRecord, FailureRecord]
RecordFields = Mapping[str, Any]  # any record read field by field, whatever its kind: what the format renderers take


def ordered(record: dict[str, Any]) -> Any:
    """``record``'s keys in the layout's order (``ORDER``)."""
    return {k: record[k] for k in ORDER if k in record}


def info_fields(info: MediaInfo) -> dict[str, Any]:
    """What a prepared input's ``info`` puts into its record (EXIF, size, a video's fields)."""
    return {k: info[k] for k in INFO_FIELDS if k in info}  # type: ignore[literal-required]


def image_record(filepath: str, info: MediaInfo, predictions: Predictions) -> ImageRecord:
    return ordered({"kind": "image", "filepath": filepath, "predictions": predictions, "failures": [], **info_fields(info)})


def frame_record(number: int, predictions: Predictions) -> FrameRecord:
    return {"kind": "frame", "frame_number": number, "predictions": predictions}


def video_record(filepath: str, info: MediaInfo, frames: list[FrameRecord], rollup: Predictions) -> VideoRecord:
    """``info`` carries ``frame_rate`` and ``frames_processed`` (``runtime.images.media.video_info``)."""
    return ordered({"kind": "video", "filepath": filepath, "predictions": rollup, "failures": [], **info_fields(info),
                    "frames": frames})


def failure_record(filepath: str, reason: str, video: bool) -> FailureRecord:
    record: dict[str, Any] = {"kind": "failure", "filepath": filepath, "predictions": [], "failures": [reason]}
    if video:  # MegaDetector's convention for a failed video
        record.update({"frame_rate": FAILED_VIDEO_RATE, "frames_processed": []})
    return ordered(record)


def boxes_record(filepath: str, info: MediaInfo, entry: dict[str, Any], failure: str | None) -> BoxesRecord:
    """An entry of a MegaDetector file with copies of its detections (``predictions`` go on them)."""
    detections = entry.get("detections")
    record: dict[str, Any] = {"kind": "boxes", "filepath": filepath, "failures": [failure] if failure else [],
                              **info_fields(info),
                              "detections": None if detections is None else [dict(d) for d in detections],
                              "extra": {k: v for k, v in entry.items() if k not in ("file", "detections", "failure")}}
    if entry.get("failure"):  # MegaDetector could not read it either: its reason, as it wrote it
        record["md_failure"] = str(entry["failure"])
    return ordered(record)


def failed(record: RecordFields) -> bool:
    """Whether the input could not be classified (ours or MegaDetector's failure)."""
    return bool(record.get("failures")) or bool(record.get("md_failure"))


def has_video_fields(record: RecordFields) -> bool:
    """A video's record, or a failed video's (whose MegaDetector fields are written too)."""
    return record["kind"] == "video" or (record["kind"] == "failure" and "frame_rate" in record)


def stored(record: RecordFields) -> dict[str, Any]:
    """The record as every output format, checkpoint and the Ray wire hold it: without its kind (and
    its frames' kinds), which ``read_back`` gives back."""
    out = {k: v for k, v in record.items() if k != "kind"}
    if "frames" in out:
        out["frames"] = [{k: v for k, v in frame.items() if k != "kind"} for frame in out["frames"]]
    return out


def read_back(row: dict[str, Any], boxes: bool) -> Record:
    """A record from its stored form (an output read back, a checkpoint line, a Ray worker's JSON).

    No format writes the kind, so it is decided here from what they do write: ``boxes`` (the run's
    mode, from its fingerprint, or the format's box columns) makes a box record; otherwise a failure
    reason makes a failure, MegaDetector's video mark (``frame_rate``) a video, anything else an image."""
    if boxes:
        kind = "boxes"
    elif row.get("failures"):
        kind = "failure"
    else:
        kind = "video" if "frame_rate" in row else "image"
    record: dict[str, Any] = {"kind": kind, **{k: v for k, v in row.items() if k != "kind"}}
    if "frames" in record:
        record["frames"] = [{"kind": "frame", **{k: v for k, v in frame.items() if k != "kind"}} for frame in record["frames"]]
    return record  # type: ignore[return-value]

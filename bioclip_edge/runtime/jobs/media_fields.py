"""How video and sequence fields appear in each output format, and how they are read back.

Kept apart from ``writers`` and ``previous_output`` so both stay about the still-image layout and
each format's handling of these fields is in one place (writing and reading side by side).

Videos (a ``video`` record, and a ``failure`` record of a video; MegaDetector's video convention, format 1.5+):

* MegaDetector JSON: one entry per video, ``file``, ``frame_rate``, ``frames_processed`` (the
  sampled frame numbers), then one whole-frame detection per sampled frame carrying its
  ``frame_number`` and ``classifications`` (what Timelapse and MegaDetector's video tools read),
  and the per-video roll-up (``runtime.jobs.rollup``) as ``video_classifications`` at the entry's
  level, ``[[category_id, score], ...]`` like a detection's. A failed video has ``frame_rate`` -1,
  ``frames_processed`` [] and ``detections`` null, as MegaDetector writes failed videos.
* CSV: one row per video, its roll-up in ``label_i``/``score_i``, plus ``frame_rate`` and
  ``frames_processed`` (numbers joined by ``;``).
* JSON Lines: the video's row (roll-up in ``predictions``), then one row per sampled frame:
  ``{"filepath", "frame_number", "predictions"}``.

Sequences (``runtime.jobs.sequences``): ``seq_id``, ``seq_num_frames``, ``frame_num`` and the
sequence's top-k (``seq_predictions``; MegaDetector ``seq_classifications``; CSV
``seq_label_i``/``seq_score_i``). With ``--smooth`` the image's own top-k is kept as
``image_predictions`` (MegaDetector ``pre_smoothing_classifications`` plus MegaDetector's own
``pre_smoothing_description``; CSV ``image_label_i``/``image_score_i``) and ``predictions`` holds
the sequence's. Sequence fields are computed at write time, so readers drop them and restore the
image's own predictions.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from bioclip_edge.runtime.jobs.records import RecordFields, has_video_fields, stored

SEQ_FIELDS = ("seq_id", "seq_num_frames", "frame_num")
COMPUTED = (*SEQ_FIELDS, "seq_predictions", "image_predictions")
VIDEO_FIELDS = ("frame_rate", "frames_processed")
WHOLE_FRAME = {"category": "1", "conf": 1.0, "bbox": [0.0, 0.0, 1.0, 1.0]}


def classifications(predictions: Iterable[dict[str, Any]], used: set[int]) -> list[list[Any]]:
    """MegaDetector's ``[[category_id, score], ...]`` (4 decimals), noting the categories used."""
    out = []
    for p in predictions:
        used.add(int(p["index"]))
        out.append([str(int(p["index"])), round(float(p["score"]), 4)])
    return out


# --- MegaDetector -------------------------------------------------------------------------------
def md_video_fields(record: RecordFields, image: dict[str, Any], used: set[int], whole: bool) -> None:
    """Add a video record's fields to its MegaDetector entry (whole-frame detections in whole mode),
    and the ``note`` a damaged video (or boxes in frames a video lacks) leaves."""
    if record.get("note"):
        image["note"] = record["note"]
    if not has_video_fields(record):
        return
    image["frame_rate"] = float(record["frame_rate"])
    image["frames_processed"] = list(record.get("frames_processed") or [])
    if not whole or record.get("failures"):
        return
    image["detections"] = [{**WHOLE_FRAME, "bbox": list(WHOLE_FRAME["bbox"]), "frame_number": int(f["frame_number"]),
                            "classifications": classifications(f["predictions"], used)} for f in record.get("frames") or []]
    image["video_classifications"] = classifications(record.get("predictions") or [], used)


def md_sequence_fields(record: RecordFields, image: dict[str, Any], used: set[int]) -> None:
    """The camera's ``serial`` (sequences group by it), ``seq_id``, ``seq_num_frames``, ``frame_num``,
    ``seq_classifications``; smoothing's record."""
    for key in ("serial", *SEQ_FIELDS):
        if key in record:
            image[key] = record[key]
    if "seq_predictions" in record:
        image["seq_classifications"] = classifications(record["seq_predictions"], used)
    if "image_predictions" in record:
        own = record["image_predictions"]
        image["pre_smoothing_classifications"] = classifications(own, used)
        image["pre_smoothing_description"] = own[0]["label"] if own else ""


def md_read_back(image: dict[str, Any], record: dict[str, Any], predictions: Callable[[list[Any]], list[dict[str, Any]]],
                 whole: bool = True) -> None:
    """The serial, video fields and the image's own predictions of an entry written as above (with
    ``--detections`` a video's fields are the detector file's own, kept before ``file``)."""
    for key in ("serial", "note"):
        if image.get(key):
            record[key] = image[key]
    if not whole:
        return
    if "frame_rate" in image:
        record["frame_rate"] = image["frame_rate"]
        record["frames_processed"] = list(image.get("frames_processed") or [])
        if image.get("detections") and not image.get("failure") and "video_classifications" in image:
            record["predictions"] = predictions(image["video_classifications"])
            record["frames"] = [{"frame_number": d.get("frame_number"), "predictions": predictions(d.get("classifications") or [])}
                                for d in image["detections"]]
    if "pre_smoothing_classifications" in image:
        record["predictions"] = predictions(image["pre_smoothing_classifications"])


# --- CSV ------------------------------------------------------------------------------------------
def csv_extra_header(records: Sequence[RecordFields], k: int) -> list[str]:
    """Columns for video and sequence fields, only when some record has them (still-image outputs
    keep their columns)."""
    header: list[str] = ["serial"] if any("serial" in r for r in records) else []
    if any(d.get("frame_number") is not None for r in records for d in r.get("detections") or []):
        header.append("frame_number")  # --detections on videos: each box's frame
    if any(has_video_fields(r) for r in records):
        header += [*VIDEO_FIELDS]
    if any(r.get("note") for r in records):
        header.append("note")
    if any("seq_id" in r for r in records):
        header += [*SEQ_FIELDS] + [f"seq_{c}_{i}" for i in range(1, k + 1) for c in ("label", "score")]
    if any("image_predictions" in r for r in records):
        header += [f"image_{c}_{i}" for i in range(1, k + 1) for c in ("label", "score")]
    return header


def csv_extra_cells(record: RecordFields, label_cells: Callable[[Sequence[dict[str, Any]]], dict[str, Any]]) -> dict[str, Any]:
    cells: dict[str, Any] = {key: record[key] for key in ("serial", "frame_rate", "note", *SEQ_FIELDS) if key in record}
    if "frames_processed" in record:
        cells["frames_processed"] = ";".join(str(n) for n in record["frames_processed"])
    for prefix, key in (("seq_", "seq_predictions"), ("image_", "image_predictions")):
        cells.update({prefix + name: value for name, value in label_cells(record.get(key) or []).items()})
    return cells


def csv_read_back(row: dict[str, str], record: dict[str, Any], predictions: Callable[[dict[str, str], str], list[dict[str, Any]]],
                  number: Callable[[str], Any]) -> None:
    """A CSV row's video fields, and the image's own predictions when the row was smoothed."""
    if row.get("serial"):
        record["serial"] = row["serial"]
    if row.get("frame_rate", "") != "":
        record["frame_rate"] = number(row["frame_rate"])
        record["frames_processed"] = [int(n) for n in (row.get("frames_processed") or "").split(";") if n]
    if row.get("note"):
        record["note"] = row["note"]
    if row.get("image_label_1"):
        record["predictions"] = predictions(row, "image_")


# --- JSON Lines -----------------------------------------------------------------------------------
def jsonl_rows(record: RecordFields) -> list[dict[str, Any]]:
    """The record's row (its frames left out), then one row per sampled frame of a video."""
    record = stored(record)  # type: ignore[assignment]
    if "frames" not in record:
        return [record]
    row = {k: v for k, v in record.items() if k != "frames"}
    tail = {k: record[k] for k in ("run", "warning") if k in record}  # type: ignore[literal-required]
    return [row] + [{"filepath": record["filepath"], **f, **tail} for f in record["frames"]]


def jsonl_read_back(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold frame rows into the record they follow (their video's); drop computed sequence fields,
    restoring the image's own predictions (``run``/``warning`` are taken off by the caller)."""
    records: list[dict[str, Any]] = []
    for row in rows:
        if "frame_number" in row and records and records[-1]["filepath"] == row["filepath"]:
            frame = {k: v for k, v in row.items() if k not in ("filepath", "run", "warning")}
            records[-1].setdefault("frames", []).append(frame)
            continue
        records.append(restore_own(row))
    return records


def restore_own(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the classifier made it: computed sequence fields off, own predictions back."""
    if "image_predictions" in record:
        record["predictions"] = record["image_predictions"]
    for key in COMPUTED:
        record.pop(key, None)
    return record


def video_complete(record: RecordFields) -> bool:
    """A video counts as done only when every sampled frame has its predictions (formats that keep
    frames); a still image, or a CSV row (no frames kept), passes."""
    if record["kind"] != "video" or "frames" not in record:
        return True
    have = {f.get("frame_number") for f in record["frames"] if f.get("predictions")}
    return set(record.get("frames_processed") or []) <= have and len(have) == len(record.get("frames_processed") or [])

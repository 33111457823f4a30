"""Each readable file of the output as a Camtrap DP media row: its deployment, timestamp and path.

* Deployment: the most specific row of the deployments CSV that claims the file (``deployments``);
  rows still tied are told apart by their start and end times.
* Timestamp: the EXIF capture time (DateTimeOriginal, else DateTime) in the deployment's zone, as
  the output recorded it, or read from the file when the run never opened it (a ``--detections``
  image with no box to classify; its camera serial is read with it, for ``cameraID`` rows).
  A file without one (videos, stripped images) gets its modification time, read from the file
  (found through ``image_root``); its deployment is marked ``timestampIssues`` and the media row
  says so in ``mediaComments``. A file with neither is an error naming it.
* ``filePath``: Camtrap DP allows a URL or a relative path with no ``..`` in it. A relative path as
  the output wrote it stays; an absolute one is written relative to ``image_root`` (when given),
  else to the files' common folder. ``--media-base-url`` puts a URL in front (``filePublic`` true).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import mimetypes
import os
import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.camtrap.columns import FILE_PATH_PATTERN
from bioclip_edge.runtime.camtrap.deployments import Deployment, candidates, path_forms
from bioclip_edge.runtime.camtrap.source import Top
from bioclip_edge.runtime.camtrap.times import file_time, iso, localize
from bioclip_edge.runtime.jobs.records import RecordFields, has_video_fields
from bioclip_edge.runtime.jobs.sequences import capture_time


class MediaMatchError(UserError, ValueError):
    """Files that no deployment, or more than one, claims; or that have no time and no zone."""


@dataclass
class MediaItem:
    record: RecordFields
    deployment: Deployment
    timestamp: _dt.datetime  # aware
    from_file_time: bool  # no EXIF capture time: the file's modification time
    seq: tuple[str, Top] | None = None
    file_path: str = ""  # set by ``assign_paths``, with the ID
    media_id: str = ""

    @property
    def video(self) -> bool:
        return has_video_fields(self.record) or "frame_rate" in (self.record.get("extra") or {})

    def end(self) -> _dt.datetime:
        """When the media ends: a video's last sampled frame, else its timestamp."""
        frames = self.record.get("frames_processed") or []
        rate = float(self.record.get("frame_rate") or 0)
        if frames and rate > 0:
            return self.timestamp + _dt.timedelta(seconds=round(max(frames) / rate))
        return self.timestamp


def media_id(path: str) -> str:
    """From the file's path in the package: the same file gets the same ID in every package of it."""
    return "m" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:15]


def file_exif(record: RecordFields, root: Path) -> RecordFields:
    """``record`` with the EXIF fields read from its file when the output has none (the run never opened it)."""
    if record.get("datetime") or record.get("serial"):
        return record
    path = Path(record["filepath"]) if Path(record["filepath"]).is_absolute() else root / record["filepath"]
    try:
        from PIL import Image

        from bioclip_edge.runtime.images.decode import read_exif

        with Image.open(path) as image:
            found = read_exif(image)
    except Exception:  # noqa: BLE001  a video, a missing or unreadable file: no EXIF to add
        return record
    return {**found, **record}


def place(record: RecordFields, deployments: list[Deployment], root: Path) -> tuple[Deployment, _dt.datetime, bool] | None:
    """The file's deployment, timestamp and whether it came from the file's mtime (None: no row claims it)."""
    filepath = record["filepath"]
    found = candidates(deployments, path_forms(filepath, root), record.get("serial"))
    if not found:
        return None
    naive = capture_time(record)
    mtime = None if naive is not None else _mtime(filepath, root)
    if len(found) > 1:
        found = [d for d in found if _within(d, naive, mtime)]
        if len(found) != 1:
            claims = ", ".join(d.id for d in candidates(deployments, path_forms(filepath, root), record.get("serial")))
            raise MediaMatchError(f"{filepath}: deployments {claims} all claim it and their start and end times do not tell "
                                  "them apart; give each its deploymentStart and deploymentEnd, or a more specific folder")
    deployment = found[0]
    if deployment.zone is None:
        raise MediaMatchError(f"deployment {deployment.id}: no time zone for its cameras' clocks; pass --timezone (e.g. "
                              "+03:00 or Africa/Nairobi), add a timezone column, or write deploymentStart with its offset")
    when = localize(naive, deployment.zone) if naive is not None else file_time(mtime, deployment.zone)  # type: ignore[arg-type]
    return deployment, when, naive is None


def _within(d: Deployment, naive: _dt.datetime | None, mtime: float | None) -> bool:
    if d.zone is None or (d.start is None and d.end is None):
        return d.start is None and d.end is None
    when = localize(naive, d.zone) if naive is not None else file_time(mtime, d.zone)  # type: ignore[arg-type]
    return (d.start is None or when >= localize(d.start, d.zone)) and (d.end is None or when <= localize(d.end, d.zone))


def _mtime(filepath: str, root: Path) -> float:
    path = Path(filepath) if Path(filepath).is_absolute() else root / filepath
    try:
        return os.stat(path).st_mtime
    except OSError:
        raise MediaMatchError(f"{filepath}: has no EXIF capture time and cannot be found at {path} to read its file time; "
                              "pass --image-root with the folder the images are in") from None


def assign_paths(items: list[MediaItem], image_root: Path | None, base_url: str | None) -> None:
    """Fill each item's ``file_path`` (see the module docstring) and its ``media_id``."""
    absolute = [Path(i.record["filepath"]) for i in items if not _clean_relative(i.record["filepath"])]
    base = image_root.absolute() if image_root is not None else None
    if absolute and (base is None or not all(_under(p, base) for p in absolute)):
        base = Path(os.path.commonpath([str(p.absolute().parent) for p in absolute]))
    for item in items:
        written = item.record["filepath"].replace("\\", "/")
        rel = written if _clean_relative(written) else Path(written).absolute().relative_to(base).as_posix()  # type: ignore[arg-type]
        item.file_path = f"{base_url.rstrip('/')}/{urllib.parse.quote(rel)}" if base_url else rel
        item.media_id = media_id(rel)


def _clean_relative(filepath: str) -> bool:
    posix = filepath.replace("\\", "/")
    return not Path(posix).is_absolute() and re.match(FILE_PATH_PATTERN, posix) is not None and posixpath.normpath(posix) == posix


def _under(path: Path, base: Path) -> bool:
    try:
        path.absolute().relative_to(base)
        return True
    except ValueError:
        return False


def media_type(item: MediaItem) -> str:
    guessed = mimetypes.guess_type(item.record["filepath"])[0]
    if guessed and re.match(r"^(image|video|audio)/", guessed):
        return guessed
    ext = Path(item.record["filepath"]).suffix.lstrip(".").lower() or "unknown"
    return f"{'video' if item.video else 'image'}/{ext}"


def media_row(item: MediaItem, capture_method: str, public: bool) -> dict[str, str]:
    record = item.record
    exif = {key: str(record[field]) for key, field in (("DateTimeOriginal", "datetime"), ("Make", "make"), ("Model", "model"),
                                                      ("BodySerialNumber", "serial")) if record.get(field)}
    comments = [str(record["note"])] if record.get("note") else []
    if item.from_file_time:
        comments.insert(0, "timestamp is the file's modification time: the file has no EXIF capture time")
    return {"mediaID": item.media_id, "deploymentID": item.deployment.id, "captureMethod": capture_method,
            "timestamp": iso(item.timestamp), "filePath": item.file_path, "filePublic": "true" if public else "false",
            "fileName": posixpath.basename(record["filepath"].replace("\\", "/")), "fileMediatype": media_type(item),
            "exifData": json.dumps(exif, ensure_ascii=False) if exif else "", "favorite": "",
            "mediaComments": "; ".join(comments)}


"""Small JPEG thumbnails for the preview pages: made once, in parallel, reused on rerun.

Why so: a camera-trap card holds thousands of 12-MP JPEGs and a browser showing them full size
is unusable. Each image is decoded with Pillow's draft mode (the JPEG decoder scales by 1/2, 1/4
or 1/8 while decoding, several times faster than a full decode), EXIF orientation applied (the
boxes MegaDetector writes are on the upright image), shrunk to ``size`` on its longest side and
saved as a JPEG of a few kB. Threads overlap the file reads and the decoding (Pillow releases the
GIL while it decodes).

A thumbnail's name is a hash of the source path, the frame and the size settings, so a rerun with
the same settings finds it and skips it when it is newer than its source; other settings make
other files. A source that is missing or unreadable gets a placeholder picture (one file per kind,
drawn once), never a crash.
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.preview.frames import VideoDecoderMissing, for_each_frame

MISSING, UNREADABLE, NO_DECODER = "_missing.png", "_unreadable.png", "_no-video-decoder.png"
PLACEHOLDER_TEXT = {MISSING: "image not found", UNREADABLE: "cannot be read", NO_DECODER: "video: no decoder"}
Key = tuple[str, "int | None"]  # (source path, frame number or None for a still)


@dataclass(frozen=True)
class ThumbConfig:
    """How thumbnails are made; the size and quality are part of each file's name."""

    size: int = 256  # longest side, pixels
    quality: int = 80  # JPEG quality
    threads: int = min(4, os.cpu_count() or 1)
    progress: bool | None = None  # None: a bar when stderr is a terminal


def thumb_name(path: Path, frame: int | None, config: ThumbConfig) -> str:
    """The file name of ``path``'s (frame's) thumbnail under ``config``: a hash, so any path is a safe name."""
    key = f"{os.path.abspath(path)}|{frame}|{config.size}|{config.quality}"
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".jpg"


def make_thumbnails(wanted: dict[Path, set[int | None]], folder: Path, config: ThumbConfig) -> dict[Key, str]:
    """Thumbnails of ``wanted`` (source -> frame numbers, None for a still) in ``folder``; returns each
    key's file name there: its thumbnail, or a placeholder when the source could not be read."""
    folder.mkdir(parents=True, exist_ok=True)
    write_placeholders(folder, config.size)
    names: dict[Key, str] = {}
    bar = progress_bar(len(wanted), "file", "thumbnails", config.progress)
    try:
        with ThreadPoolExecutor(max_workers=max(1, config.threads)) as pool:
            for result in pool.map(lambda item: _thumbs_of(item[0], item[1], folder, config), wanted.items()):
                names.update(result)
                bar.update(1)
    finally:
        bar.close()
    return names


def _thumbs_of(path: Path, frames: set[int | None], folder: Path, config: ThumbConfig) -> dict[Key, str]:
    """One source's thumbnails (a still, or the wanted frames of a video), each name or a placeholder."""
    keys = {f: (str(path), f) for f in frames}
    if not path.is_file():
        return {key: MISSING for key in keys.values()}
    todo = {f for f in frames if not _is_fresh(folder / thumb_name(path, f, config), path)}
    out = {key: thumb_name(path, f, config) for f, key in keys.items()}
    try:
        if todo == {None}:
            _save(_open_still(path, config.size), folder / thumb_name(path, None, config), config)
        elif todo:
            for_each_frame(path, {f for f in todo if f is not None},
                           lambda n, image: _save(image, folder / thumb_name(path, n, config), config))
    except VideoDecoderMissing:
        return {key: NO_DECODER for key in keys.values()}
    except Exception:  # noqa: BLE001 - any undecodable file is a placeholder, never a crash
        pass
    return {key: (name if (folder / name).is_file() else UNREADABLE) for key, name in out.items()}


def _is_fresh(thumb: Path, source: Path) -> bool:
    try:
        return thumb.stat().st_mtime >= source.stat().st_mtime
    except OSError:
        return False


def _open_still(path: Path, size: int):
    """The upright picture at about ``size``: draft decoding first (JPEG), then the exact shrink."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.draft("RGB", (size, size))
        upright = ImageOps.exif_transpose(image)
    return upright


def _save(image, target: Path, config: ThumbConfig) -> None:
    image = image.convert("RGB")
    image.thumbnail((config.size, config.size))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=config.quality, optimize=True)
    write_atomic(target, buffer.getvalue())


def write_placeholders(folder: Path, size: int) -> None:
    """The pictures shown in place of a missing or unreadable source (drawn once per folder)."""
    from PIL import Image, ImageDraw

    for name, text in PLACEHOLDER_TEXT.items():
        target = folder / name
        if target.is_file():
            continue
        image = Image.new("RGB", (size, size * 3 // 4), (225, 225, 225))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, image.width - 1, image.height - 1), outline=(160, 160, 160), width=2)
        draw.line((0, 0, image.width, image.height), fill=(190, 190, 190), width=2)
        draw.line((0, image.height, image.width, 0), fill=(190, 190, 190), width=2)
        box = draw.textbbox((0, 0), text)
        draw.text(((image.width - box[2]) / 2, (image.height - box[3]) / 2), text, fill=(90, 90, 90))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        write_atomic(target, buffer.getvalue())

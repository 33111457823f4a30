"""Decode one image file into an upright RGB picture plus its EXIF facts, or say why not.

Camera-trap cards hold every kind of damage: truncated JPEGs from a dying battery, zero-byte
files, thumbnails the camera never finished, links to drives that are not mounted. A file that
cannot be used raises ``ImageDecodeError`` with a reason a person can act on; the callers turn
it into a failure row and carry on (input discovery lives in ``runtime.images.discover``).

What "correct RGB" means here:

* EXIF orientation is applied (``ImageOps.exif_transpose``), as MegaDetector and viewers do.
* 16-bit grayscale (``I;16*``, or ``I`` holding values above 255) is scaled to 8 bits by
  v * 255 / 65535 instead of Pillow's ``convert`` which clips everything above 255 to white.
* Transparent images (RGBA, LA, PA, palette with a transparent index) are flattened onto a
  white background, as a viewer shows them: the colour stored under fully transparent pixels is
  arbitrary (often black or leftovers), so dropping alpha would show the model garbage.
  open_clip's ``convert("RGB")`` drops alpha; RGB inputs (every camera-trap JPEG) are unaffected.
* CMYK (including Adobe's inverted JPEG CMYK, which Pillow decodes), palette, 1-bit, L, YCbCr:
  Pillow's ``convert("RGB")``.
* A decompression-bomb guard: images over ``max_pixels`` are refused from the header alone,
  before any pixel is decoded.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: above any camera-trap sensor, far below a bomb
WHITE = (255, 255, 255)

# EXIF tags (TIFF/EXIF 2.3 numbers)
_TAG_MAKE, _TAG_MODEL, _TAG_DATETIME = 0x010F, 0x0110, 0x0132
_IFD_EXIF, _TAG_DATETIME_ORIGINAL = 0x8769, 0x9003
_TAG_ORIENTATION = 0x0112
_TAG_BODY_SERIAL, _TAG_CAMERA_SERIAL = 0xA431, 0xC62F  # EXIF BodySerialNumber; DNG CameraSerialNumber (IFD0)


class ImageDecodeError(Exception):
    """A per-image problem; ``reason`` goes into the output's failure field."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int = DEFAULT_MAX_PIXELS
    background: tuple[int, int, int] = WHITE  # for flattening transparent images
    # Draft (fast, inexact) JPEG decoding: ``--decode draft``, or ``auto`` on a bundle whose decode
    # check passed (``runtime.images.decode_mode``). ``(w, h)``: a JPEG may decode at 1/2, 1/4 or 1/8
    # scale as long as both sides stay >= these; None (default): exact, full size. Whole images ask
    # ``ImageTransform.draft_size``; detection crops ``decode_mode.crop_draft_size`` (smaller boxes
    # need more of the frame's pixels).
    draft_size: tuple[int, int] | None = None


@dataclass
class DecodedImage:
    image: Any  # PIL.Image.Image in RGB, upright; smaller than width x height when draft-decoded
    width: int  # the picture's full size after orientation (what goes into the output)
    height: int
    exif: dict[str, str] = field(default_factory=dict)  # datetime, make, model when present
    scale: int = 1  # JPEG draft reduction used (1: full-size, exact decode)


def load_image(path: str | os.PathLike | bytes, options: DecodeOptions = DecodeOptions()) -> DecodedImage:
    """Open, check, decode, orient and convert one file (or the bytes of one, as Ray Data's
    ``read_binary_files`` gives them); raise ImageDecodeError with a reason.

    Speed notes (a 1920x1080 JPEG, per image): the file is opened by us, not by Pillow, so the
    decoded picture can be oriented in place and handed on without the full-size copy that
    ``exif_transpose`` makes when there is nothing to rotate (that copy cost a third of the
    decode). With ``options.draft_size`` a JPEG decodes at 1/2, 1/4 or 1/8 scale (see
    ``DecodeOptions``); ``width``/``height`` still report the picture's full upright size.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    data = path if isinstance(path, (bytes, bytearray, memoryview)) else None
    path = Path("<bytes>") if data is not None else Path(path)
    if data is None:
        check_file(path)
    elif not len(data):
        raise ImageDecodeError("empty file (0 bytes)")
    try:
        with (io.BytesIO(data) if data is not None else open(path, "rb")) as fh:
            raw = Image.open(fh)
            _check_pixels(raw.size, options.max_pixels)
            full_size = raw.size
            scale = _apply_draft(raw, options.draft_size)
            raw.load()
        exif = read_exif(raw)
        if _orientation(raw) in (5, 6, 7, 8):  # a quarter turn: the upright picture is portrait
            full_size = (full_size[1], full_size[0])
        ImageOps.exif_transpose(raw, in_place=True)
        rgb = to_rgb(raw, options.background)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(f"decompression-bomb guard: {exc}") from None
    except UnidentifiedImageError:
        raise ImageDecodeError("not an image Pillow can read (unknown format or corrupt header)") from None
    except OSError as exc:
        if exc.errno is not None:
            raise ImageDecodeError(_os_reason(path, exc)) from None
        raise ImageDecodeError(f"truncated or corrupt image data ({exc})") from None
    except MemoryError:
        raise ImageDecodeError("out of memory while decoding; lower --decode-threads or --max-pixels") from None
    except Exception as exc:  # noqa: BLE001  a bad file is data, never a crash (Pillow raises many types)
        raise ImageDecodeError(f"cannot decode image ({type(exc).__name__}: {exc})") from None
    return DecodedImage(image=rgb, width=full_size[0], height=full_size[1], exif=exif, scale=scale)


def _apply_draft(raw: Any, draft_size: tuple[int, int] | None) -> int:
    """Ask a JPEG to decode at reduced scale (DCT scaling in libjpeg); other formats ignore it.
    Returns the reduction factor actually used (1, 2, 4 or 8)."""
    if draft_size is None or raw.format != "JPEG":
        return 1
    before = raw.size[0]
    raw.draft("RGB", (max(1, int(draft_size[0])), max(1, int(draft_size[1]))))
    return max(1, round(before / raw.size[0]))


def upright_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """The picture's full size after EXIF orientation, from its header alone (no pixels decoded);
    None when it cannot be read (``load_image`` then says why). Crops use it to choose a draft."""
    from PIL import Image

    try:
        with Image.open(path) as raw:
            width, height = raw.size
            return (height, width) if _orientation(raw) in (5, 6, 7, 8) else (width, height)
    except Exception:  # noqa: BLE001  any unreadable file: the decode that follows reports it
        return None


def _orientation(image: Any) -> int:
    try:
        return int(image.getexif().get(_TAG_ORIENTATION, 1))
    except Exception:  # noqa: BLE001  malformed EXIF: exif_transpose will treat it as upright too
        return 1


def check_file(path: Path) -> None:
    """Stat the file first so links, folders and empty files get a precise reason."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ImageDecodeError(_os_reason(path, exc)) from None
    if path.is_dir():
        raise ImageDecodeError("is a directory, not an image file")
    if st.st_size == 0:
        raise ImageDecodeError("empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise ImageDecodeError("permission denied: cannot read the file")


def _os_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop: the chain of links never reaches a file"
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return f"dangling symbolic link: target {os.readlink(path)!r} does not exist"
        return "file not found (moved or deleted during the run?)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied: cannot read the file"
    if exc.errno == errno.EISDIR:
        return "is a directory, not an image file"
    return f"cannot read the file ({exc.strerror or exc})"


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    pixels = size[0] * size[1]
    if pixels > max_pixels:
        raise ImageDecodeError(
            f"decompression-bomb guard: {size[0]}x{size[1]} = {pixels:,} pixels is over the cap of "
            f"{max_pixels:,}; raise --max-pixels if this is a genuine image"
        )


def to_rgb(image: Any, background: tuple[int, int, int] = WHITE) -> Any:
    """Any Pillow mode -> 8-bit RGB, scaling 16-bit data and flattening transparency."""
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I;16") or mode in ("I", "F"):
        return Image.fromarray(_to_uint8(image), "L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, background + (255,))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


def _to_uint8(image: Any) -> Any:
    """16-bit / 32-bit integer or float grayscale -> uint8 array, scaled, not clipped."""
    import numpy as np

    data = np.asarray(image)
    if image.mode == "F":
        data = data.astype(np.float64)
        top = 1.0 if np.nanmax(data) <= 1.0 else (255.0 if np.nanmax(data) <= 255.0 else 65535.0)
        return np.clip(np.nan_to_num(data) * (255.0 / top), 0, 255).round().astype(np.uint8)
    data = data.astype(np.int64)
    if image.mode == "I" and data.max(initial=0) <= 255:
        return np.clip(data, 0, 255).astype(np.uint8)
    return ((np.clip(data, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)


def read_exif(image: Any) -> dict[str, str]:
    """DateTimeOriginal (or DateTime), Make, Model and the body serial number (sequences tell cameras
    apart by it) as clean strings; absent tags are left out."""
    try:
        exif = image.getexif()
        sub = exif.get_ifd(_IFD_EXIF)
    except Exception:  # malformed EXIF must never fail an otherwise good image
        return {}
    found = {
        "datetime": sub.get(_TAG_DATETIME_ORIGINAL) or exif.get(_TAG_DATETIME),
        "make": exif.get(_TAG_MAKE),
        "model": exif.get(_TAG_MODEL),
        "serial": sub.get(_TAG_BODY_SERIAL) or exif.get(_TAG_CAMERA_SERIAL),
    }
    out = {}
    for key, value in found.items():
        text = _clean(value)
        if text:
            out[key] = text
    return out


def _clean(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).replace("\x00", "").strip()


def quiet_pillow_warnings() -> None:
    """Mute two Pillow warnings that say nothing to a user of the command line.

    Our own cap (``max_pixels``) replaces Pillow's DecompressionBombWarning, which would otherwise
    print once per large-but-legal image; damaged EXIF in an otherwise readable image is common on
    camera-trap cards and harmless here (``read_exif`` tolerates it). Called by the CLI entry
    point, never at import: a library must not change its host program's warning filters.
    """
    warnings.filterwarnings("ignore", message=".*could be decompression bomb")
    warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning)

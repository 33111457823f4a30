"""Real image files for runtime tests: scikit-image sample photos saved in many formats and
modes, a camera-trap-sized JPEG with EXIF, and malformed files of every kind we must survive.

Imported by the test modules (not a conftest: fixtures stay next to the tests that use them).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # 512x512, 451x300, 600x400, 427x640

EXIF_DATETIME = "2024:03:17 05:42:09"
EXIF_MAKE = "Reconyx"
EXIF_MODEL = "HyperFire 2"


def photo(name: str) -> Image.Image:
    from bioclip_edge.export.reference import sample_photo

    return sample_photo(name).copy()


def camera_trap_jpeg(path: Path, orientation: int = 6, size: tuple[int, int] = (1920, 1080)) -> Path:
    """A 1920x1080 JPEG like a trail camera writes, with EXIF orientation, date, make, model."""
    image = photo("coffee").resize(size, Image.Resampling.BICUBIC)
    exif = Image.Exif()
    exif[0x010F] = EXIF_MAKE
    exif[0x0110] = EXIF_MODEL
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = EXIF_DATETIME
    image.save(path, "JPEG", quality=90, exif=exif)
    return path


def good_images(folder: Path) -> dict[str, Path]:
    """One file per format/mode the runtime must read; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    chelsea, coffee, rocket = photo("chelsea"), photo("coffee"), photo("rocket")
    out = {}

    def save(name: str, image: Image.Image, **kw) -> None:
        path = folder / name
        image.save(path, **kw)
        out[name] = path

    save("chelsea.jpg", chelsea, quality=92)
    save("coffee.PNG", coffee)
    save("rocket.tif", rocket)
    save("astronaut.webp", photo("astronaut"), lossless=True)
    save("chelsea.bmp", chelsea)
    save("gray.jpeg", coffee.convert("L"))
    save("palette.png", coffee.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    rgba = coffee.convert("RGBA")
    alpha = np.full((coffee.height, coffee.width), 255, np.uint8)
    alpha[:, : coffee.width // 2] = 0  # left half fully transparent
    rgba.putalpha(Image.fromarray(alpha))
    save("alpha.png", rgba)
    save("cmyk.jpg", coffee.convert("CMYK"))
    gray16 = (np.asarray(coffee.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    save("gray16.png", Image.fromarray(gray16))
    save("gray16.tiff", Image.fromarray(gray16))
    save("bilevel.png", coffee.convert("1"))
    out["trailcam.JPG"] = camera_trap_jpeg(folder / "trailcam.JPG")
    return out


def bad_images(folder: Path) -> dict[str, tuple[Path, str]]:
    """Malformed inputs; name -> (path, a word the failure reason must contain)."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, str]] = {}
    good = folder / "_source.jpg"
    photo("chelsea").save(good, quality=90)
    data = good.read_bytes()
    good.unlink()

    def write(name: str, payload: bytes, word: str) -> None:
        path = folder / name
        path.write_bytes(payload)
        out[name] = (path, word)

    write("truncated.jpg", data[: len(data) // 2], "truncated")
    write("empty.jpg", b"", "empty")
    write("garbage.png", np.random.default_rng(0).bytes(3000), "not an image")
    write("text.jpeg", b"this is a note, not a photo\n" * 20, "not an image")
    write("corrupt_header.tif", b"II*\x00" + np.random.default_rng(1).bytes(500), "not an image")
    (folder / "folder.jpg").mkdir()
    out["folder.jpg"] = (folder / "folder.jpg", "directory")
    os.symlink(folder / "missing-target.jpg", folder / "dangling.jpg")
    out["dangling.jpg"] = (folder / "dangling.jpg", "dangling")
    os.symlink(folder / "loop_b.jpg", folder / "loop_a.jpg")
    os.symlink(folder / "loop_a.jpg", folder / "loop_b.jpg")
    out["loop_a.jpg"] = (folder / "loop_a.jpg", "loop")
    out["loop_b.jpg"] = (folder / "loop_b.jpg", "loop")
    return out


def bomb_png(path: Path, width: int = 12000, height: int = 10000) -> Path:
    """A small file that claims a huge image (a 1-bit PNG of 120 MP compresses to a few KB)."""
    Image.new("1", (width, height)).save(path, optimize=True)
    return path

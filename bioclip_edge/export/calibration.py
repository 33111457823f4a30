"""Which images calibrate the int8 vision variants: the user's own folder, or built-in sample photos.

Why built-in photos: OpenVINO's fastest path is the NNCF int8 graph, and NNCF needs images to set
its activation ranges. Without them an export without ``--calibration`` would have no such graph,
and ``export`` then ``classify`` with their defaults would run OpenVINO bf16. So such exports
calibrate on scikit-image's sample photos (no download) plus seeded augmented crops of them for variety of scale and framing,
and the preset gate and parity decide as for any calibration. They are daylight pictures, not a
camera's frames (night IR frames differ), so the export and ``info`` recommend ``--calibration DIR``
with the user's own frames, and the manifest records which images were used.

The crops use another seed than the parity crops (``reference.CROP_SEED``), so parity and the preset
gate also see crops the quantizer did not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from bioclip_edge.runtime.inference.summary import BUILTIN_CALIBRATION_ADVICE
from bioclip_edge.runtime.images.discover import IMAGE_SUFFIXES
from bioclip_edge.export.reference import SKIMAGE_PHOTOS, photo_crops, sample_photos

# 16 whole photos + 16 crops. Measured on a random-weight ViT-B/16 (performance preset, 2 busy cores;
# on the 64 parity photos): 16 / 32 / 64 images gave min cosine 0.9989 / 0.9991 / 0.9992 and top-1
# 56/56 each; NNCF took 37 s with 32 and 46 s with 64. 64 instead of 8 user photos gave no gain either.
BUILTIN_CALIBRATION_IMAGES = 32
FOLDER_CALIBRATION_IMAGES = 64  # at most this many of the user's images (--calibration-images)
BUILTIN_CROP_SEED = 1  # the parity crops use seed 0


@dataclass(frozen=True)
class CalibrationSet:
    """The images int8 calibration sees, and how the manifest and console describe them. Described
    without decoding them: the exporting process needs only the counts, and the PyTorch stage, in
    its own process, decodes them (``images``); 64 of a user's 12 MP frames are 2.3 GB decoded."""

    count: int
    folder: Path | None  # the user's folder; None: built-in sample photos
    crops: int = 0  # built-in only: how many of the images are augmented crops
    files: tuple[Path, ...] = ()  # the user's files

    @property
    def builtin(self) -> bool:
        return self.folder is None

    def images(self) -> list[Image.Image]:
        """The decoded images: the user's (unreadable ones replaced by sample photos, as parity
        does), or the whole sample photos then seeded augmented crops of them."""
        if not self.builtin:
            return sample_photos(len(self.files), self.files)
        return sample_photos(self.count - self.crops) + photo_crops(self.crops, seed=BUILTIN_CROP_SEED)

    def source(self) -> str:
        """One phrase for people, stored in the manifest as ``calibration.source``."""
        if self.builtin:
            return f"built-in sample photos ({self.count - self.crops} photos + {self.crops} augmented crops)"
        return f"user folder {self.folder} ({self.count} images)"

    def record(self, method: str) -> dict:
        """The manifest's ``quantization.calibration`` block (``folder``/``images``/``method`` as before)."""
        out: dict = {"source": self.source(), "kind": "builtin" if self.builtin else "folder",
                     "folder": None if self.builtin else str(self.folder), "images": self.count,
                     "method": method}
        if self.builtin:
            out["crop_seed"] = BUILTIN_CROP_SEED
        return out

    def announcement(self) -> tuple[str, ...]:
        """What the export prints before calibrating on built-in photos: which ones, and the advice."""
        names = ", ".join(SKIMAGE_PHOTOS[: self.count - self.crops])
        return (f"no --calibration folder: calibrating the NNCF int8 variant on {self.source()}: "
                f"scikit-image's {names}", f"note: {BUILTIN_CALIBRATION_ADVICE}")


def calibration_files(folder: Path) -> list[Path]:
    """The images under ``folder`` (recursive), sorted; [] when it is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def user_calibration(folder: Path, files: Sequence[Path]) -> CalibrationSet:
    """The user's images."""
    return CalibrationSet(len(files), Path(folder), files=tuple(files))


def builtin_calibration(n: int = BUILTIN_CALIBRATION_IMAGES) -> CalibrationSet:
    """The whole sample photos, then seeded augmented crops of them up to ``n`` images."""
    whole = min(n, len(SKIMAGE_PHOTOS))
    return CalibrationSet(n, None, n - whole)


def calibration_set(folder: Path | None, files: Sequence[Path], n: int | None = None) -> CalibrationSet:
    """The user's ``files`` from ``folder`` when there are any, else ``n`` built-in images (default 32)."""
    if files:
        return user_calibration(Path(folder), files)
    return builtin_calibration(n or BUILTIN_CALIBRATION_IMAGES)

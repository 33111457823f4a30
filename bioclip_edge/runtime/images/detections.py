"""Read a MegaDetector batch-output file and cut the detections we are asked to classify.

MegaDetector boxes are ``[x_min, y_min, width, height]`` as fractions of the image after EXIF
orientation (MegaDetector rotates images upright before detecting), with the origin at the top
left. A crop covers every pixel the box touches (floor of the start, ceil of the end), clamped to
the image and at least one pixel wide, so a thin box never becomes an empty crop.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError

DEFAULT_THRESHOLD = 0.2  # MegaDetector's typical_detection_threshold for MDv5
DEFAULT_CATEGORIES = ("animal",)  # classifying people and vehicles with species labels helps no one


class DetectionsFileError(UserError, ValueError):
    """A --detections file that is not MegaDetector batch output."""


@dataclass(frozen=True)
class DetectionsFile:
    path: Path
    data: dict[str, Any]  # the whole file, kept so every field we do not touch is written back

    @property
    def images(self) -> list[dict[str, Any]]:
        return self.data["images"]

    @property
    def categories(self) -> dict[str, str]:
        return self.data["detection_categories"]

    def category_ids(self, names: tuple[str, ...] | None) -> set[str]:
        """Detection category ids whose names are in ``names`` (None: all of them)."""
        if names is None:
            return set(self.categories)
        wanted = {n.lower() for n in names}
        return {cid for cid, name in self.categories.items() if str(name).lower() in wanted}


def read_detections(path: str | os.PathLike) -> DetectionsFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DetectionsFileError(f"{path}: no such MegaDetector output file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectionsFileError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise DetectionsFileError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); pass MegaDetector's batch output file") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DetectionsFileError(f"{path}: no 'images' list; this is not MegaDetector batch output (https://lila.science/megadetector-output-format)")
    if not isinstance(data.get("detection_categories"), dict):
        raise DetectionsFileError(f"{path}: no 'detection_categories'; this is not MegaDetector batch output")
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("file"), str):
            raise DetectionsFileError(f"{path}: images[{i}] has no 'file' name")
        for det in image.get("detections") or []:
            bbox = det.get("bbox") if isinstance(det, dict) else None
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
                raise DetectionsFileError(f"{path}: {image['file']}: a detection's bbox is not [x, y, width, height]")
    return DetectionsFile(path=path, data=data)


def crop_box(width: int, height: int, bbox: list[float]) -> tuple[int, int, int, int]:
    """Normalised [x, y, w, h] -> pixel (left, top, right, bottom) inside the image."""
    x, y, w, h = (float(v) for v in bbox)
    eps = 1e-6  # (0.2 + 0.4) * 500 is 300.00000000000006 in floating point: not pixel 301
    left = min(max(int(math.floor(x * width + eps)), 0), width - 1)
    top = min(max(int(math.floor(y * height + eps)), 0), height - 1)
    right = min(max(int(math.ceil((x + w) * width - eps)), left + 1), width)
    bottom = min(max(int(math.ceil((y + h) * height - eps)), top + 1), height)
    return left, top, right, bottom

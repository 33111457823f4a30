"""Labelled "camera sites" made from the trained tiny model's sample photos, for adaptation.

The tiny model (``trained_tiny``) was trained on clean colour crops, where its zero-shot top-1 is
near perfect, so there is nothing for adaptation to fix there. A camera site is another look at the
same subjects, as a camera trap's own conditions give it; here a *site* is a fixed image
degradation applied to random crops of the sample photos:

- ``night``: an infrared night frame: grey, dark, low contrast, sensor noise, slightly soft;
- ``dusk``: a warm colour cast, underexposed, soft, with a faint vignette-free haze;
- ``day``: the clean crops the model was trained on (its home ground).

Crops come from ``export.reference.random_crop`` with their own seed per stream, so a training
stream and a test stream of one site never share a crop. Each site uses the same source photos
(one or two per subject: scikit-image has no more), so "site" here means imaging conditions and
framing, not new individuals; the benchmark says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SITES = ("night", "dusk", "day")


def site_look(image, site: str, rng: np.random.Generator):
    """``image`` as camera ``site`` would see it (see the module docstring)."""
    from PIL import Image, ImageEnhance, ImageFilter

    if site == "day":
        return image
    if site == "night":
        grey = ImageEnhance.Contrast(image.convert("L")).enhance(0.45)
        grey = ImageEnhance.Brightness(grey).enhance(0.55).filter(ImageFilter.GaussianBlur(1.2))
        pixels = np.asarray(grey, dtype=np.float32) + rng.normal(0.0, 14.0, (grey.height, grey.width))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")
    if site == "dusk":
        pixels = np.asarray(image, dtype=np.float32) * np.array([1.0, 0.72, 0.45]) * 0.7 + np.array([30.0, 12.0, 0.0])
        warm = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        return warm.filter(ImageFilter.GaussianBlur(1.5))
    raise ValueError(f"unknown site {site!r}; choose one of {', '.join(SITES)}")


def site_crops(per_class: int, site: str, seed: int) -> tuple[list, list[int]]:
    """``per_class`` crops of every subject at ``site``, and each crop's index in ``zero_shot_labels()``."""
    from bioclip_edge.export.reference import SKIMAGE_PHOTOS, random_crop, sample_photo
    from tests.helpers.trained_tiny import CLASSES, subjects

    order = subjects()
    photos: dict[int, list] = {}
    for name in SKIMAGE_PHOTOS:
        photos.setdefault(order.index(CLASSES[name]), []).append(sample_photo(name))
    rng = np.random.default_rng(seed)
    crops, truth = [], []
    for i in range(per_class):
        for c in range(len(order)):
            photo = photos[c][i % len(photos[c])]
            crop = random_crop(photo, rng, min_area=0.15)
            crops.append(site_look(crop.resize((224, round(224 * crop.height / crop.width))), site, rng))
            truth.append(c)
    return crops, truth


def write_train_folder(root: Path, crops: list, truth: list[int], labels: list[str]) -> Path:
    """``root/<label>/NNN.jpg``: what ``labels adapt --examples`` reads."""
    counts: dict[int, int] = {}
    for crop, c in zip(crops, truth):
        folder = root / labels[c]
        folder.mkdir(parents=True, exist_ok=True)
        crop.save(folder / f"{counts.get(c, 0):03d}.jpg", quality=90)
        counts[c] = counts.get(c, 0) + 1
    return root

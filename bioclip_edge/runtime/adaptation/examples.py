"""Labelled examples for ``labels adapt``: read them (a folder per label or a ``filepath,label`` CSV),
then embed each with the bundle's vision tower, with flipped and cropped views of it.

A camera-trap user's labelled frames are few, so each example is embedded several times (the whole
frame, its mirror, a central crop and that crop's mirror): the views cost one model call each and
give the optimiser variation that one embedding per frame does not have. An example with a box (a
CSV row's box, or ``labels.example_boxes`` from a MegaDetector file) is first cut to that box by
``classify --detections``' own rule (``images.detections.crop_box`` on the upright frame), and the
views are taken of the crop. Unreadable files are listed and skipped, never fatal; a label left
with no readable example is an error naming it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.images.decode import ImageDecodeError, load_image
from bioclip_edge.runtime.images.detections import crop_box
from bioclip_edge.runtime.images.discover import is_image_name, is_video_name
from bioclip_edge.runtime.images.labelled import read_labelled

VIEWS = ("whole", "mirror", "crop", "crop-mirror")
CROP_SIDE = 0.8  # the central crop keeps 80% of each side: the subject stays, the border changes
EMBED_CHUNK = 256  # views preprocessed before each model call batch


class ExamplesError(UserError, ValueError):
    """Labelled examples that cannot be used (no labels, a label with no readable image, a bad CSV)."""


@dataclass(frozen=True)
class Example:
    path: Path
    label: str
    filepath: str  # how messages name it
    group: str = ""  # camera or sequence: cross-validation never splits one (default: the file itself)
    bbox: tuple[float, float, float, float] | None = None  # normalised [x, y, w, h]: the example is this crop


@dataclass(frozen=True)
class EmbeddedExamples:
    labels: list[str]  # in first-seen order; ``label_index`` indexes this list
    features: np.ndarray  # [M, dim] unit rows: every view of every readable example
    label_index: np.ndarray  # [M]
    example_index: np.ndarray  # [M]: which example each view came from (its group)
    shots: np.ndarray  # [len(labels)] readable examples per label
    failures: list[tuple[str, str]] = field(default_factory=list)  # (filepath, reason), skipped
    digest: str = ""  # sha256 over each readable example's label, name and bytes
    groups: list[str] = field(default_factory=list)  # per readable example (``example_index`` indexes it)


def read_examples(source: str | os.PathLike) -> list[Example]:
    """The stills of a folder with one subfolder per label (``train/<label>/*.jpg``; folders below a
    label's folder are groups, e.g. cameras) or of a ``filepath,label`` CSV (an optional ``group``,
    ``sequence`` or ``camera`` column): ``runtime.images.labelled``, the reader ``evaluate
    --truth`` uses too. A group (a camera, a sequence) may hold several labels."""
    labelled = read_labelled(source, "--examples", ExamplesError, boxes=True)
    return [Example(f.path, f.label, f.name, f.group, f.bbox) for f in labelled.files if not is_video_name(f.path)]


def views(image) -> list:
    """The whole image, its mirror, a central crop and the crop's mirror (see ``VIEWS``)."""
    from PIL import Image

    w, h = image.size
    cw, ch = max(1, round(w * CROP_SIDE)), max(1, round(h * CROP_SIDE))
    left, top = (w - cw) // 2, (h - ch) // 2
    crop = image.crop((left, top, left + cw, top + ch))
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    return [image, image.transpose(flip), crop, crop.transpose(flip)]


def embed_examples(embedder, examples: list[Example], n_views: int = len(VIEWS),
                   skipped: list[tuple[str, str]] | None = None) -> EmbeddedExamples:
    """Embed every readable example's first ``n_views`` views; unreadable ones go to ``failures``,
    after ``skipped`` (examples dropped earlier, e.g. frames without a detection)."""
    labels = list(dict.fromkeys(e.label for e in examples))
    digest = hashlib.sha256()
    pixels: list[np.ndarray] = []
    features: list[np.ndarray] = []
    label_index, example_index, groups = [], [], []
    failures = list(skipped or [])
    shots = np.zeros(len(labels), dtype=np.int64)
    for example in examples:
        try:
            data = example.path.read_bytes() if is_image_name(example.path.name) else None
            if data is None:
                raise ImageDecodeError("not an image file name (.jpg, .png, ...)")
            image = load_image(data, embedder.crop_decode).image
            if example.bbox is not None:  # the same cut as classify --detections
                image = image.crop(crop_box(image.width, image.height, list(example.bbox)))
        except (OSError, ImageDecodeError) as exc:
            failures.append((example.filepath, getattr(exc, "reason", None) or str(exc)))
            continue
        c = labels.index(example.label)
        box = "" if example.bbox is None else ",".join(f"{v:.6g}" for v in example.bbox) + "\0"
        digest.update(f"{example.label}\0{example.filepath}\0{box}".encode() + hashlib.sha256(data).digest())
        for view in views(image)[: max(1, n_views)]:
            pixels.append(embedder.transform(view))
            label_index.append(c)
            example_index.append(int(shots.sum()))
        shots[c] += 1
        groups.append(example.group or example.filepath)
        if len(pixels) >= EMBED_CHUNK:  # bounded memory: a few hundred preprocessed views at a time
            features.append(embedder.embed(np.stack(pixels)))
            pixels.clear()
    empty = [label for label, n in zip(labels, shots) if n == 0]
    if empty:
        raise ExamplesError(f"label {empty[0]!r} has no readable example" + _failure_hint(failures))
    if pixels:
        features.append(embedder.embed(np.stack(pixels)))
    return EmbeddedExamples(labels, np.concatenate(features), np.asarray(label_index), np.asarray(example_index), shots,
                            failures, digest.hexdigest(), groups)


def _failure_hint(failures: list[tuple[str, str]]) -> str:
    if not failures:
        return ""
    shown = "; ".join(f"{name}: {reason}" for name, reason in failures[:3])
    return f" (unreadable: {shown}{' ...' if len(failures) > 3 else ''})"

"""Labelled examples for ``labels adapt``: read them (a folder per label or a ``filepath,label`` CSV),
then embed each with the bundle's vision tower, with flipped and cropped views of it.

A camera-trap user's labelled frames are few, so each example is embedded several times (the whole
frame, its mirror, a central crop and that crop's mirror): the views cost one model call each and
give the optimiser variation that one embedding per frame does not have. Unreadable files are
listed and skipped, never fatal; a label left with no readable example is an error naming it.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.images.decode import ImageDecodeError, load_image
from bioclip_edge.runtime.images.discover import discover, is_image_name, is_video_name

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
    """A folder with one subfolder per label (``train/<label>/*.jpg``; images in folders below a label's
    folder are that label's, each such folder one group, e.g. a camera) or a CSV with ``filepath``
    and ``label`` columns (paths relative to the CSV's folder; an optional ``group``, ``sequence`` or
    ``camera`` column groups rows). A group (a camera, a sequence) may hold several labels."""
    source = Path(source)
    if source.is_dir():
        examples = _read_folder(source)
    elif source.is_file():
        examples = _read_csv(source)
    else:
        raise ExamplesError(f"{source}: no such folder or CSV; --examples takes train/<label>/*.jpg or a filepath,label CSV")
    if not examples:
        raise ExamplesError(f"{source}: no labelled images found (expected one subfolder of images per label)")
    return examples


def _read_folder(root: Path) -> list[Example]:
    subfolders = sorted(p for p in root.iterdir() if p.is_dir())
    if not subfolders:
        raise ExamplesError(f"{root}: no label subfolders; put each label's images in {root}/<label>/")
    out = []
    for folder in subfolders:
        for item in discover([folder]):
            if not is_video_name(item.path):
                rel = item.path.relative_to(root)
                group = "/".join(rel.parts[1:-1]) or str(rel)  # train/<label>/<camera>/x.jpg: the camera
                out.append(Example(item.path, folder.name, str(rel), group))
    return out


def _read_csv(path: Path) -> list[Example]:
    try:
        rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExamplesError(f"{path}: cannot read the examples CSV ({exc})") from None
    fields = {(k or "").strip().lower(): k for k in (rows[0].keys() if rows else [])}
    if "filepath" not in fields or "label" not in fields:
        raise ExamplesError(f"{path}: the examples CSV needs 'filepath' and 'label' columns")
    out = []
    for i, row in enumerate(rows):
        name, label = (row[fields["filepath"]] or "").strip(), (row[fields["label"]] or "").strip()
        if not name and not label:
            continue
        if not name or not label:
            raise ExamplesError(f"{path}: row {i + 2} needs both a filepath and a label")
        group = next((row[fields[k]] for k in ("group", "sequence", "camera") if k in fields and row[fields[k]]), name)
        out.append(Example(path.parent / name, label, name, group.strip()))
    return out


def views(image) -> list:
    """The whole image, its mirror, a central crop and the crop's mirror (see ``VIEWS``)."""
    from PIL import Image

    w, h = image.size
    cw, ch = max(1, round(w * CROP_SIDE)), max(1, round(h * CROP_SIDE))
    left, top = (w - cw) // 2, (h - ch) // 2
    crop = image.crop((left, top, left + cw, top + ch))
    flip = Image.Transpose.FLIP_LEFT_RIGHT
    return [image, image.transpose(flip), crop, crop.transpose(flip)]


def embed_examples(embedder, examples: list[Example], n_views: int = len(VIEWS)) -> EmbeddedExamples:
    """Embed every readable example's first ``n_views`` views; unreadable ones go to ``failures``."""
    labels = list(dict.fromkeys(e.label for e in examples))
    digest = hashlib.sha256()
    pixels: list[np.ndarray] = []
    features: list[np.ndarray] = []
    label_index, example_index, failures, groups = [], [], [], []
    shots = np.zeros(len(labels), dtype=np.int64)
    for example in examples:
        try:
            data = example.path.read_bytes() if is_image_name(example.path.name) else None
            if data is None:
                raise ImageDecodeError("not an image file name (.jpg, .png, ...)")
            image = load_image(data, embedder.crop_decode).image
        except (OSError, ImageDecodeError) as exc:
            failures.append((example.filepath, getattr(exc, "reason", None) or str(exc)))
            continue
        c = labels.index(example.label)
        digest.update(f"{example.label}\0{example.filepath}\0".encode() + hashlib.sha256(data).digest())
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

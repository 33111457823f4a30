"""Boxes for ``labels adapt --detections MD.json``: each labelled frame becomes a crop of its animal.

Camera-trap users label what MegaDetector found, so an example is the box, not the whole frame,
and it is cut by the same rule as ``classify --detections`` (``images.detections.crop_box`` on the
upright frame). Each labelled frame takes its **most confident** box of the chosen categories
(default ``animal``) at or above the threshold (default 0.2, as ``classify``): one label per frame
names one subject, and the most confident box is the likeliest to be it; a second animal in the
same frame is labelled with its own CSV row and box. A frame whose entry has no such box, or that
the file does not list, is listed and skipped, never guessed.

Entries are matched to examples by path, by ``evaluate``'s rule (``evaluation.matching``): a relative
``file`` starts from the detections file's folder, else the longest ending of folders and name that
exactly one entry and one example share (``IMG_0001.JPG`` from two cameras matches nothing). Run
MegaDetector on the examples folder, or on a folder above it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from bioclip_edge.runtime.adaptation.examples import Example
from bioclip_edge.runtime.evaluation.matching import match
from bioclip_edge.runtime.evaluation.truth import absolute
from bioclip_edge.runtime.images.detections import (DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile,
                                                    read_detections)


def boxes_from_detections(examples: list[Example], detections: str | os.PathLike,
                          threshold: float = DEFAULT_THRESHOLD,
                          categories: tuple[str, ...] | None = DEFAULT_CATEGORIES
                          ) -> tuple[list[Example], list[tuple[str, str]]]:
    """``examples`` with each frame's box from ``detections`` (a row's own CSV box is kept), and the
    frames skipped: ``(filepath, reason)`` for those with no entry or no box at ``threshold``."""
    md = read_detections(detections)
    wanted = md.category_ids(categories)
    entries = _entries_by_example(md, examples)
    kept: list[Example] = []
    skipped: list[tuple[str, str]] = []
    for example in examples:
        if example.bbox is not None:
            kept.append(example)
            continue
        entry = entries.get(absolute(example.path, Path(".")))
        if entry is None:
            skipped.append((example.filepath, f"not in --detections {md.path}"))
            continue
        if entry.get("failure"):  # MegaDetector could not read the frame: no threshold would help
            skipped.append((example.filepath, f"megadetector: {entry['failure']} (in --detections {md.path})"))
            continue
        box = best_box(entry, wanted, threshold)
        if box is None:
            what = "any" if categories is None else "/".join(categories)
            skipped.append((example.filepath, f"no {what} box with conf >= {threshold:g} in --detections {md.path}"))
            continue
        kept.append(replace(example, bbox=box))
    return kept, skipped


def best_box(entry: dict[str, Any], wanted: set[str], threshold: float) -> tuple[float, float, float, float] | None:
    """The entry's most confident detection of a ``wanted`` category with conf >= ``threshold``."""
    boxes = [d for d in entry.get("detections") or []
             if str(d.get("category")) in wanted and float(d.get("conf", 0.0)) >= threshold]
    if not boxes:
        return None
    best = max(boxes, key=lambda d: float(d.get("conf", 0.0)))
    return tuple(float(v) for v in best["bbox"])  # type: ignore[return-value]


def _entries_by_example(md: DetectionsFile, examples: list[Example]) -> dict[str, dict[str, Any]]:
    """Each unboxed example's entry, keyed by the example's absolute path."""
    unboxed = {absolute(e.path, Path(".")) for e in examples if e.bbox is None}
    pairs = match([str(entry["file"]) for entry in md.images], unboxed, Path(md.path).parent)
    return {path: md.images[i] for i, path in pairs.pairs}

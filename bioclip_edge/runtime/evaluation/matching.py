"""Pair each prediction with its truth label by file path.

Outputs write absolute paths, or paths relative to the input folder (``--relative-paths``, and a
MegaDetector file's own paths with ``--detections``), and the truth may sit elsewhere. The rule:

1. a relative prediction path starts from ``image_root`` (default: the predictions file's folder);
   a prediction matches the truth file with the same absolute, normalised path;
2. the rest match by their longest shared tail of folders and file name
   (``lion/IMG_1.JPG`` matches ``/data/truth/lion/IMG_1.JPG``), when that tail belongs to exactly
   one truth file and one prediction of all: a tail shared by several files on either
   side (``IMG_0001.JPG`` from two cameras) matches nothing, rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bioclip_edge.runtime.evaluation.truth import absolute


@dataclass(frozen=True)
class Pairs:
    pairs: list[tuple[int, str]]  # (prediction index, truth path)
    unmatched_predictions: list[int]
    unmatched_truth: list[str]


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _tail(path: str, depth: int) -> tuple[str, ...] | None:
    parts = _parts(path)
    return tuple(parts[-depth:]) if len(parts) >= depth else None


def _unique_tails(paths: Iterable[tuple[object, str]], depth: int) -> dict[tuple[str, ...], object]:
    """tail -> owner, for tails only one owner has (others are left out as ambiguous)."""
    seen: dict[tuple[str, ...], list[object]] = {}
    for owner, path in paths:
        tail = _tail(path, depth)
        if tail is not None:
            seen.setdefault(tail, []).append(owner)
    return {tail: owners[0] for tail, owners in seen.items() if len(owners) == 1}


def match(filepaths: Sequence[str], truth: Iterable[str], image_root: Path) -> Pairs:
    """Pair predictions (``filepaths``, as written) with truth paths (absolute; see the module docstring)."""
    everyone = {i: absolute(p, image_root) for i, p in enumerate(filepaths)}
    truths = set(truth)
    pairs = [(i, path) for i, path in everyone.items() if path in truths]
    left = {i: p for i, p in everyone.items() if p not in truths}
    remaining = truths - {path for _, path in pairs}
    depth = max((len(_parts(p)) for p in list(left.values()) + list(remaining)), default=0)
    while depth > 0 and left and remaining:
        # uniqueness over every file, not only the unpaired: a name two truth files share never pairs
        ours = _unique_tails(everyone.items(), depth)
        theirs = _unique_tails(((p, p) for p in truths), depth)
        for tail in ours.keys() & theirs.keys():
            i, path = int(ours[tail]), str(theirs[tail])  # type: ignore[call-overload]
            if i in left and path in remaining:
                pairs.append((i, path))
                del left[i]
                remaining.discard(path)
        depth -= 1
    return Pairs(sorted(pairs), sorted(left), sorted(remaining))

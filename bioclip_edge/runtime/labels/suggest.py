"""``labels adapt --suggest N --pool DIR``: the unlabelled frames worth labelling next.

The adapted matrix scores every pool image; the ones whose two best labels are closest (smallest
top-1 minus top-2 probability) are the ones it is least sure of, so their labels teach it most. A
burst or one camera often holds many such frames that look alike, so the list is spread out: each
group (the image's folder below the pool, as cameras and card dumps are laid out) gives at most one
frame per round until N are picked.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioclip_edge.runtime.common.files import atomic_writer
from bioclip_edge.runtime.images.discover import discover, is_video_name

FIELDS = ("filepath", "group", "top1", "top1_probability", "top2", "top2_probability", "margin")


@dataclass(frozen=True)
class Suggestion:
    filepath: str
    group: str
    top1: str
    top1_probability: float
    top2: str
    top2_probability: float

    @property
    def margin(self) -> float:
        return self.top1_probability - self.top2_probability


def score_pool(embedder, pool: Path, labels) -> tuple[list[Suggestion], list[tuple[str, str]]]:
    """Every readable still image in ``pool`` with its two best labels; unreadable ones listed apart."""
    from bioclip_edge.runtime.images.embedder import iter_embeddings

    items = [i for i in discover([pool], relative=True) if not is_video_name(i.path)]
    names, vectors, groups, failures = [], [], [], []
    for prepared, vector in iter_embeddings(embedder, items):
        if vector is None:
            failures.append((prepared.item.filepath, str(prepared.failure)))
            continue
        names.append(prepared.item.filepath)
        groups.append(os.path.dirname(prepared.item.filepath) or ".")
        vectors.append(vector)
    if not vectors:
        return [], failures
    idx, probs = labels.topk(np.stack(vectors), k=min(2, labels.n))
    label_names = labels.names
    out = []
    for name, group, i, p in zip(names, groups, idx, probs):
        second = (label_names[i[1]], float(p[1])) if len(i) > 1 else ("", 0.0)
        out.append(Suggestion(name, group, label_names[i[0]], float(p[0]), *second))
    return out, failures


def pick(scored: list[Suggestion], n: int) -> list[Suggestion]:
    """The ``n`` smallest margins, at most one per group per round (see the module docstring)."""
    ranked = sorted(scored, key=lambda s: (s.margin, s.filepath))
    chosen: list[Suggestion] = []
    taken: set[str] = set()
    while len(chosen) < min(n, len(ranked)):
        seen: set[str] = set()
        for s in ranked:
            if len(chosen) >= n:
                break
            if s.filepath in taken or s.group in seen:
                continue
            seen.add(s.group)
            taken.add(s.filepath)
            chosen.append(s)
    return sorted(chosen, key=lambda s: (s.margin, s.filepath))


def write_suggestions(path: Path, chosen: list[Suggestion]) -> Path:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(FIELDS)
    for s in chosen:
        writer.writerow([s.filepath, s.group, s.top1, f"{s.top1_probability:.4f}", s.top2,
                         f"{s.top2_probability:.4f}", f"{s.margin:.4f}"])
    with atomic_writer(path) as fh:
        fh.write(text.getvalue().encode("utf-8"))
    return path

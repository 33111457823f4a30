"""Score the vectors of several consecutive records in one label-matrix pass, then finish them in order.

Why: each ``LabelMatrix.topk`` call reads the whole matrix once, and on BioCLIP 2's 867k-label
matrix that pass (1.33 GB of fp16 rows) costs about as much for one image as for sixteen. So a
job does not score each record as it is embedded: it keeps the record, with its vectors (a still's
one, a video's frames, an image's boxes), until ``window`` vectors are waiting or the input ends,
scores them all in one call and yields the records in input order, each with exactly the
predictions a call of its own would give (same rows, same ranking; scores equal to float
rounding). The window is chosen once per matrix (``LabelMatrix.scoring_window``): 1 for small
matrices, so their records still stream one by one.

A kill loses nothing finished: records are yielded (and so checkpointed by ``jobs.runner``) only
once scored, and the ones still waiting were never yielded, so ``--resume`` simply does them again.
Waiting records hold no pixels (``media_records`` and ``box_records`` free them), only their vectors and fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.jobs.records import Predictions, Record

NO_VECTORS = np.zeros((0, 0), np.float32)


@dataclass
class Waiting:
    """A record that needs its vectors scored: ``finish(predictions)`` gets one top-k per row of
    ``vectors`` (none when it has no rows) and returns the finished record."""

    vectors: np.ndarray
    finish: Callable[[list[Predictions]], Record]


def scored_in_windows(waiting: Iterable[Waiting], score: Callable[[np.ndarray], list[Predictions]],
                      window: int) -> Iterator[Record]:
    """Finished records in input order, scoring ``window`` or more vectors per ``score`` call.

    The first record is scored alone: a run shows its first prediction as soon as one image is
    embedded (the first-prediction target), and only later records wait for a full window."""
    held: list[Waiting] = []
    count, limit = 0, 1
    for item in waiting:
        held.append(item)
        count += len(item.vectors)
        if count >= limit:
            yield from _finish(held, score)
            held, count, limit = [], 0, max(1, window)
    if held:
        yield from _finish(held, score)


def _finish(held: list[Waiting], score: Callable[[np.ndarray], list[Predictions]]) -> Iterator[Record]:
    rows = [w.vectors for w in held if len(w.vectors)]
    predictions = score(np.concatenate(rows)) if rows else []
    start = 0
    for item in held:
        n = len(item.vectors)
        yield item.finish(predictions[start : start + n])
        start += n

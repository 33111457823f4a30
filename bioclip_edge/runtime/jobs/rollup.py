"""One top-k for a group of frames: a video's sampled frames, or a burst's images (a sequence).

Rule: the mean over the group's frames of each label's probability, where a frame that did not
list the label in its top-k counts 0 for it; the k best means are kept, best first. Why this rule:

* it is what readers of the outputs can recompute: every output keeps only each frame's top-k
  scores, and sequences are formed at write time from those records (so ``--resume`` and other
  engines group the same way), so the exact mean over all labels is not available there;
* it is a lower bound of the exact mean probability, and equals it for a label in every frame's
  top-k. A label missing from a frame scored there below that frame's k-th score, so the bound
  is off by less than the k-th score per missing frame (about 1/N for N labels on a confident
  frame), and only labels that a frame ranked outside its top k can move;
* a label seen strongly in one frame of ten is not promoted over one seen in every frame, which
  a max rule would do (a false positive in one frame would name the whole burst).

Failed frames (no predictions) are left out of the mean. Scores are rounded to 6 decimals.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from bioclip_edge.runtime.jobs.records import Prediction, Predictions

RULE = "mean over frames of each label's probability, 0 where a frame's top-k does not list it; top-k of those means"


def mean_topk(frames: Iterable[Sequence[Prediction]], k: int) -> Predictions:
    """``frames``: each frame's predictions (label, score, index); returns the group's top-k."""
    totals: dict[tuple[Any, str], float] = {}
    n = 0
    for predictions in frames:
        if not predictions:
            continue
        n += 1
        for p in predictions:
            key = (p.get("index", -1), p["label"])
            totals[key] = totals.get(key, 0.0) + float(p["score"])
    if not n:
        return []
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0][1])))[: max(1, int(k))]
    return [{"label": label, "score": round(total / n, 6), "index": index} for (index, label), total in ranked]

"""Accuracy and coverage against the score threshold, and the threshold that reaches a precision.

A user who keeps a label only when its top-1 score is at least ``t`` wants to know two things:
how many images keep a label (coverage) and how often the kept labels are right (their
precision, the accuracy among the kept). Images without a score (``--detections``: blank, no box
passed the detection threshold) are left out of the curve: the score threshold does not decide them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

GRID = tuple(round(0.05 * i, 2) for i in range(20))  # 0.00 .. 0.95: the curve the report and the plot show


@dataclass(frozen=True)
class ThresholdPoint:
    threshold: float
    coverage: float  # share of scored images whose top-1 score >= threshold
    precision: float  # accuracy among those (0 when none is kept)
    kept: int

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "coverage": self.coverage, "precision": self.precision, "kept": self.kept}


@dataclass(frozen=True)
class Thresholds:
    images: int  # images with a score
    curve: list[ThresholdPoint]
    target_precision: float | None
    suggested: ThresholdPoint | None  # the lowest threshold reaching the target; None: none does (or no target)

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "curve": [p.to_dict() for p in self.curve], "target_precision": self.target_precision,
                "suggested": self.suggested.to_dict() if self.suggested else None}

    def sentence(self) -> str:
        if self.target_precision is None:
            return "no --target-precision given"
        if self.suggested is None:
            return f"no score threshold reaches precision {self.target_precision:g} on these images"
        s = self.suggested
        return (f"threshold {s.threshold:.4f} reaches precision {s.precision:.3f} (target {self.target_precision:g}), "
                f"keeping {s.coverage:.1%} of the images")


def point(scores: np.ndarray, right: np.ndarray, threshold: float) -> ThresholdPoint:
    kept = scores >= threshold
    n = int(kept.sum())
    return ThresholdPoint(float(threshold), float(n / len(scores)) if len(scores) else 0.0,
                          float(right[kept].mean()) if n else 0.0, n)


def thresholds(scores: Sequence[float], right: Sequence[bool], target: float | None = None) -> Thresholds:
    """The curve on ``GRID`` and, for ``target``, the lowest threshold whose kept images are at least
    that precise. Candidates are the scores themselves (a threshold between two scores keeps the same
    images as the higher one), so the answer is exact, not a grid step."""
    s, r = np.asarray(scores, dtype=np.float64), np.asarray(right, dtype=bool)
    curve = [point(s, r, t) for t in GRID]
    suggested = None
    if target is not None and len(s):
        order = np.argsort(-s, kind="stable")
        ranked_s, ranked_r = s[order], r[order]
        last = np.r_[ranked_s[1:] != ranked_s[:-1], True]  # the last of each run of equal scores
        precision = np.cumsum(ranked_r) / np.arange(1, len(s) + 1)
        reach = np.flatnonzero(last & (precision >= target - 1e-12))
        if len(reach):
            suggested = point(s, r, float(ranked_s[reach[-1]]))
    return Thresholds(len(s), curve, target, suggested)

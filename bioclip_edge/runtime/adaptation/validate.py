"""``labels adapt --cross-validate K``: does adapting help on these examples? Measured on held-out folds.

Folds are made of whole groups (a camera or sequence folder, a CSV's ``group``/``sequence``/``camera``
column, else each file), so burst neighbours never sit on both sides of a split. Each fold refits the
rows on the other folds' examples (views included) and scores the held-out examples' whole-image
embeddings among the labelled classes, against the zero-shot rows on the same examples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Callable

import numpy as np

from bioclip_edge.runtime.adaptation.examples import EmbeddedExamples
from bioclip_edge.runtime.labels.matrix import LabelMatrixError


@dataclass(frozen=True)
class CrossValidation:
    folds: int
    groups: int
    examples: int  # held-out examples scored, over all folds
    zero_shot_accuracy: float
    adapted_accuracy: float
    zero_shot_balanced: float  # mean per-class recall
    adapted_balanced: float

    @property
    def helps(self) -> bool:
        return self.adapted_balanced > self.zero_shot_balanced

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "helps": self.helps}

    def lines(self) -> list[str]:
        head = f"cross-validation, {self.folds} folds over {self.groups} groups, {self.examples} held-out examples:"
        rows = [f"  zero-shot  accuracy {self.zero_shot_accuracy:.3f}  balanced {self.zero_shot_balanced:.3f}",
                f"  adapted    accuracy {self.adapted_accuracy:.3f}  balanced {self.adapted_balanced:.3f}"]
        verdict = ("adapted is better than zero-shot on held-out examples" if self.helps else
                   "adapted is NO better than zero-shot on held-out examples: label more, or keep the zero-shot matrix")
        return [head, *rows, verdict]


def fold_of_examples(groups: list[str], k: int) -> np.ndarray:
    """Each example's fold: whole groups, dealt round-robin in first-seen order (examples come label by
    label, so every label's groups spread over the folds)."""
    order = list(dict.fromkeys(groups))
    if k < 2 or k > len(order):
        raise LabelMatrixError(f"--cross-validate {k}: needs 2 to {len(order)} folds (the examples form {len(order)} groups)")
    fold = {g: i % k for i, g in enumerate(order)}
    return np.array([fold[g] for g in groups])


def cross_validate(embedded: EmbeddedExamples, start: np.ndarray, k: int,
                   fit: Callable[[EmbeddedExamples], np.ndarray]) -> CrossValidation:
    """``fit(train_examples) -> rows`` (one per label) is refitted per fold; see the module docstring."""
    folds = fold_of_examples(embedded.groups, k)
    first = np.unique(embedded.example_index, return_index=True)[1]  # each example's whole-image view
    truth = embedded.label_index[first]
    zero_shot = (embedded.features[first] @ np.asarray(start, np.float64).T).argmax(axis=1)
    adapted = np.empty_like(truth)
    for f in range(k):
        train = folds[embedded.example_index] != f
        kept = np.flatnonzero(folds != f)
        renumber = np.full(len(folds), -1)
        renumber[kept] = np.arange(len(kept))
        shots = np.bincount(embedded.label_index[first][kept], minlength=len(embedded.labels))
        part = replace(embedded, features=embedded.features[train], label_index=embedded.label_index[train],
                       example_index=renumber[embedded.example_index[train]], shots=shots,
                       groups=[embedded.groups[i] for i in kept])
        rows = fit(part)
        held = folds == f
        adapted[held] = (embedded.features[first][held] @ np.asarray(rows, np.float64).T).argmax(axis=1)
    return CrossValidation(k, len(set(embedded.groups)), len(truth), _accuracy(zero_shot, truth),
                           _accuracy(adapted, truth), _balanced(zero_shot, truth), _balanced(adapted, truth))


def _accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    return round(float((pred == truth).mean()), 4)


def _balanced(pred: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([(pred[truth == c] == c).mean() for c in np.unique(truth)])), 4)

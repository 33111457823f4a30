"""Classification metrics in numpy, defined exactly as scikit-learn defines them.

scikit-learn is not a runtime dependency, so the definitions are written out here and the tests
compare every number with ``sklearn.metrics`` on the same labels:

* the classes are the sorted union of truth and predicted labels (``unique_labels``), so a
  predicted label absent from the truth is a class too (precision 0 when all its predictions are
  wrong, recall 0/0);
* a 0/0 ratio is 0 (``zero_division=0``: scikit-learn's default value, without its warning);
* F1 is ``2·tp / (2·tp + fp + fn)``; macro-F1 the unweighted mean over every class of the union;
* balanced accuracy is the mean recall over the classes that occur in the truth
  (``balanced_accuracy_score``, ``adjusted=False``: predicted-only classes have no recall and are
  left out, as scikit-learn leaves them out);
* the confusion matrix has truth in rows and predictions in columns, classes in the order above;
* top-k accuracy counts an image right when its truth is among its first k predicted labels
  (``top_k_accuracy_score`` on the scores the output kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # images whose truth is this label
    predicted: int  # images predicted as this label

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support, "predicted": self.predicted}


@dataclass(frozen=True)
class Metrics:
    images: int
    top1: float
    topk: float
    k: int  # the k of ``topk``: 5, or the output's top-k when it kept fewer
    balanced_accuracy: float
    macro_f1: float
    classes: list[ClassMetrics]
    confusion: np.ndarray  # [truth class, predicted class], classes in ``labels`` order

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.classes]

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "top1_accuracy": self.top1, f"top{self.k}_accuracy": self.topk, "k": self.k,
                "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1,
                "per_class": [c.to_dict() for c in self.classes],
                "confusion_matrix": {"labels": self.labels, "rows_truth_columns_predicted": self.confusion.tolist()}}


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num/den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    num, den = num.astype(np.float64), den.astype(np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def confusion(truth: Sequence[str], predicted: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The sorted union of labels and the confusion matrix (rows truth, columns predicted)."""
    labels = sorted(set(truth) | set(predicted))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[t] for t in truth], [index[p] for p in predicted]), 1)
    return labels, matrix


def topk_accuracy(truth: Sequence[str], ranked: Sequence[Sequence[str]], k: int) -> float:
    if not truth:
        return 0.0
    return float(np.mean([t in list(r)[:k] for t, r in zip(truth, ranked)]))


def compute(truth: Sequence[str], ranked: Sequence[Sequence[str]], k: int = 5) -> Metrics:
    """Metrics of ``ranked`` (each image's predicted labels, best first; the first is its prediction)
    against ``truth``; ``k`` is cut to the most labels any image kept (the output's top-k)."""
    predicted = [r[0] for r in ranked]
    labels, matrix = confusion(truth, predicted)
    tp = np.diag(matrix)
    support, called = matrix.sum(axis=1), matrix.sum(axis=0)
    precision, recall = _ratio(tp, called), _ratio(tp, support)
    f1 = _ratio(2 * tp, 2 * tp + (called - tp) + (support - tp))
    k = max(1, min(k, max((len(r) for r in ranked), default=1)))
    classes = [ClassMetrics(label, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]), int(called[i]))
               for i, label in enumerate(labels)]
    return Metrics(images=len(truth), top1=float(tp.sum() / max(1, len(truth))), topk=topk_accuracy(truth, ranked, k), k=k,
                   balanced_accuracy=float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
                   macro_f1=float(f1.mean()) if len(f1) else 0.0, classes=classes, confusion=matrix)

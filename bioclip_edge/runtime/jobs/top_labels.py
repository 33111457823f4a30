"""A label set as a classification run uses it: its names, the top-k it keeps, and vectors -> top-k.

``labels`` is anything ``--labels`` takes (a label file, a text file, label texts, a ``LabelMatrix``);
``labels.spec.resolve_labels`` turns it into a matrix. What the outputs need of the labels beside
the predictions is here too: the digest ``--resume`` compares (the embeddings, not only the
names) and the MegaDetector category descriptions.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import numpy as np

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.jobs.records import Predictions
from bioclip_edge.runtime.labels.digest import label_matrix_sha256
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.labels.spec import resolve_labels


class TopLabels:
    """``TopLabels(matrix, k).predictions(vectors)``: one top-k per row, best first."""

    def __init__(self, matrix: LabelMatrix, k: int):
        self.matrix = matrix
        self.names: list[str] = list(matrix.names)
        self.k = min(k, len(self.names))

    @classmethod
    def resolve(cls, bundle: Bundle, labels: Any, k: int, recipe: str = "plain",
                cache_dir: str | os.PathLike | None = None) -> "TopLabels":
        """The label set ``labels`` names, checked against ``bundle`` (raises before any image is read)."""
        return cls(resolve_labels(bundle, labels, recipe, cache_dir), k)

    @property
    def scoring_window(self) -> int:
        """Vectors scored per label-matrix pass (``runtime.jobs.scoring_window``)."""
        return self.matrix.scoring_window

    def predictions(self, vectors: np.ndarray) -> list[Predictions]:
        indices, probs = self.matrix.topk(vectors, self.k)
        return [
            [{"label": self.names[int(i)], "score": float(p), "index": int(i)} for i, p in zip(row_i, row_p)]
            for row_i, row_p in zip(np.asarray(indices), np.asarray(probs))
        ]

    @cached_property
    def sha256(self) -> str:
        """sha256 of the label embeddings (not just their names): what ``--resume`` compares,
        so a run never extends an output made with other vectors (another ``--recipe``)."""
        return label_matrix_sha256(self.matrix, self.names)

    def category_descriptions(self) -> Any:
        """MegaDetector ``classification_category_descriptions``, one per label: the taxonomy
        string MegaDetector's and SpeciesNet's tools parse, or the label text (``LabelMatrix``)."""
        return self.matrix.category_descriptions()

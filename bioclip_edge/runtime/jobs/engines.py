"""Where a job's records come from: this process (``LocalEngine``) or a cluster (``runtime.cluster``).

The jobs own everything else (checkpoint, resume, fingerprint, order, writers), so an engine is
small: three producers and a description for the outputs' info block. ``RayEngine`` in
``runtime.cluster.engine`` has the same methods; the jobs never import it (a Python caller or the
command line passes one in), so the local engine never loads Ray.
"""

from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.records import Record

Embedding = tuple[str, "np.ndarray | None", dict[str, Any], "str | None"]  # filepath, vector, info, failure


class Engine(Protocol):
    name: str

    def classify(self, clf: Any, items: Sequence[ImageItem]) -> Iterator[Record]: ...

    def classify_boxes(self, clf: Any, detections: Any, root: Any, threshold: float, categories: Any,
                       skip: set[str]) -> Iterator[Record]: ...

    def embed(self, embedder: Any, items: Sequence[ImageItem]) -> Iterator[Embedding]: ...

    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalEngine:
    """This process: decode threads beside one inference session (``runtime.images.pipeline``)."""

    name = "local"

    def classify(self, clf: Any, items: Sequence[ImageItem]) -> Iterator[Record]:
        return clf.iter_items(items)

    def classify_boxes(self, clf: Any, detections: Any, root: Any, threshold: float, categories: Any,
                       skip: set[str]) -> Iterator[Record]:
        return clf.iter_detections(detections, root, threshold, categories, skip)

    def embed(self, embedder: Any, items: Sequence[ImageItem]) -> Iterator[Embedding]:
        from bioclip_edge.runtime.images.media import iter_media_embeddings

        yield from iter_media_embeddings(embedder, items)  # stills, and each sampled frame of a video

    def describe(self) -> dict[str, Any]:
        return {"engine": "local"}

    def close(self) -> None:
        pass

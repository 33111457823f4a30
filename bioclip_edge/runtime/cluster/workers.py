"""The actors Ray Data runs: each opens the bundle once and runs the driver's plan on batches.

A worker receives a ``WorkerSpec``: plain data made once on the driver (the bundle path, the
``InferencePlan`` as a dict, the request, the labels). It never decides again which graph or
backend to use; it checks that *this node* runs the plan as the driver does (same graph hash,
same backend and arithmetic, e.g. bf16 needs AMX / AVX-512 BF16 on every node) and refuses to
start otherwise, so one output never mixes precisions silently. Batches carry paths (or bytes);
images are read on the worker, never sent through the driver.

Workers return their results as columns: classify records as JSON text (what the local engine
yields, in the stored form every output holds, ``runtime.jobs.records.stored``: the driver gives
them their kind back), embeddings as a float32 tensor column.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.engines import LocalEngine
from bioclip_edge.runtime.jobs.records import Record, stored

RECORD = "record"  # classify: one JSON record per image


class WorkerPlanError(UserError):
    """A node that cannot run the driver's plan exactly (missing backend, other arithmetic)."""


@dataclass(frozen=True)
class WorkerSpec:
    """What every actor needs, decided on the driver."""

    bundle: str  # absolute path, the same on every node
    plan: dict[str, Any]  # InferencePlan.to_dict()
    provider: str  # what the driver's session runs ("OpenVINO CPU (bfloat16)", ...): every worker must match
    request: Any  # ClassifyRequest (classify) or ImageRequest (embed)
    labels: Any = None  # classify: a label file path (memory-mapped on each node) or an ObjectRef to a LabelMatrix
    detections: dict[str, Any] | None = None  # classify boxes: root, threshold, categories, detection_categories
    output: str = "records"  # records: what the jobs read back; table: Parquet-shaped columns (runtime.jobs.parquet_output)


def items_from_batch(batch: dict[str, Any]) -> list[ImageItem]:
    """ImageItems from a batch's ``path`` (and optional ``filepath``, ``problem``, ``bytes``) columns."""
    paths = [str(p) for p in batch["path"]]
    names = [str(n) for n in batch["filepath"]] if "filepath" in batch else paths
    problems = [str(p) or None if p is not None else None for p in batch["problem"]] if "problem" in batch else [None] * len(paths)
    data = list(batch["bytes"]) if "bytes" in batch else [None] * len(paths)
    return [ImageItem(Path(p), n, problem, None if d is None else bytes(d)) for p, n, problem, d in zip(paths, names, problems, data)]


def _open_bundle(spec: WorkerSpec) -> tuple[Any, Any]:
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.inference.plan import InferencePlan

    return Bundle.open(spec.bundle, defer_hashing=True), InferencePlan.from_dict(spec.plan)


def _check_same_provider(spec: WorkerSpec, provider: str) -> None:
    if provider != spec.provider:
        import socket

        raise WorkerPlanError(
            f"node {socket.gethostname()} runs {spec.plan['variant']} on {provider}, but the driver runs it on "
            f"{spec.provider}; one output must not mix arithmetic: pass --backend onnxruntime (or openvino-f32) "
            "so every node computes the same, or run on nodes of one kind")


def _labels(spec: WorkerSpec, bundle: Any) -> Any:
    from bioclip_edge.runtime.labels.spec import resolve_labels

    labels = spec.labels
    if not isinstance(labels, (str, bytes)) and type(labels).__name__ == "ObjectRef":
        import ray

        labels = ray.get(labels)
    return resolve_labels(bundle, labels)  # a path is opened memory-mapped on this node


class ClassifyWorker:
    """Ray Data callable class: a batch of images (or of MegaDetector entries) -> JSON records."""

    def __init__(self, spec: WorkerSpec):
        from bioclip_edge.runtime.jobs.classifier import Classifier

        bundle, plan = _open_bundle(spec)
        self.spec = spec
        self.clf = Classifier(bundle, _labels(spec, bundle), spec.request, plan=plan)
        _check_same_provider(spec, self.clf.embedder.provider)

    def __call__(self, batch: dict[str, Any]) -> Any:
        records = list(self.records(batch))
        if self.spec.output == "table":
            from bioclip_edge.runtime.jobs.parquet_output import classify_table

            return classify_table(records)
        return {RECORD: np.array([json.dumps(stored(r), ensure_ascii=False) for r in records], dtype=object)}

    def records(self, batch: dict[str, Any]) -> Iterator[Record]:
        """The local engine's records for this batch: images and videos, or MegaDetector entries."""
        if self.spec.detections is None:
            return LocalEngine().classify(self.clf, items_from_batch(batch))
        return self._boxes([json.loads(str(e)) for e in batch["entry"]])

    def _boxes(self, entries: list[dict[str, Any]]) -> Iterator[Record]:
        from bioclip_edge.runtime.images.detections import DetectionsFile

        d = self.spec.detections or {}
        part = DetectionsFile(Path("<cluster batch>"), {"images": entries, "detection_categories": d["detection_categories"]})
        categories = None if d["categories"] is None else tuple(d["categories"])
        return LocalEngine().classify_boxes(self.clf, part, d["root"], d["threshold"], categories, set())


class EmbedWorker:
    """Ray Data callable class: a batch of images -> filepath, vector (zeros on failure), failure, info."""

    def __init__(self, spec: WorkerSpec):
        from bioclip_edge.runtime.images.embedder import ImageEmbedder

        bundle, plan = _open_bundle(spec)
        self.spec = spec
        self.embedder = ImageEmbedder(bundle, spec.request, plan=plan)
        _check_same_provider(spec, self.embedder.provider)

    def __call__(self, batch: dict[str, Any]) -> Any:
        """The local engine's embeddings for this batch: one row per still and per sampled video frame."""
        dim = int(self.embedder.dim)
        names, vectors, failures, infos = [], [], [], []
        for name, vector, info, failure in LocalEngine().embed(self.embedder, items_from_batch(batch)):
            names.append(name)
            failures.append(failure or "")
            vectors.append(np.zeros(dim, np.float32) if vector is None else np.asarray(vector, np.float32))
            infos.append(info)
        matrix = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
        if self.spec.output == "table":
            from bioclip_edge.runtime.jobs.parquet_output import embed_table

            return embed_table(names, matrix, failures, infos, dim)
        return {"filepath": np.array(names, dtype=object), "embedding": matrix, "failure": np.array(failures, dtype=object),
                "info": np.array([json.dumps(i, ensure_ascii=False) for i in infos], dtype=object)}

"""For people who build their own Ray pipelines: a Ray Dataset of images in, a Dataset of rows out.

Ray's readers give images as paths or as bytes (``ray.data.read_binary_files(..., include_paths=True)``
yields ``bytes`` and ``path`` columns, from local disks, S3 or GCS); these functions add the
model, and the rows come out in the Parquet outputs' shape (``runtime.jobs.parquet_output``), so
``.write_parquet(...)`` or any lakehouse writer takes them as they are::

    import ray
    from bioclip_edge.runtime.cluster import datasets

    images = ray.data.read_binary_files("s3://bucket/cards/", include_paths=True)
    rows = datasets.classify_dataset(images, "/shared/bundles/bioclip", "/shared/labels/kenya.npz")
    rows.write_parquet("s3://bucket/predictions/")

The plan (graph, backend) is made once here, on the driver, as ``--engine ray`` does; bundles and
label files must be on paths every node sees. Per-image failures are rows with ``failure`` set.
The actors reserve one CPU less than a node has (half of a one-CPU node), so Ray's reader tasks
can run beside them; on one-CPU nodes give the reader ``ray_remote_args={"num_cpus": 0.5}``, or
pass ``RayOptions(cpus_per_actor=...)`` to choose yourself.
"""

from __future__ import annotations

from typing import Any

from bioclip_edge.runtime.cluster.engine import RayEngine
from bioclip_edge.runtime.cluster.options import RayOptions
from bioclip_edge.runtime.cluster.workers import ClassifyWorker, EmbedWorker


def classify_dataset(ds: Any, bundle: Any, labels: Any, request: Any = None, options: RayOptions | None = None) -> Any:
    """Rows with ``path`` (and optional ``bytes``, ``filepath``) -> classify rows: filepath, labels,
    scores, indices (top-k lists), failure, EXIF fields, width, height, record (JSON)."""
    from bioclip_edge.runtime.jobs.classifier import Classifier

    engine = RayEngine(options)
    clf = Classifier(bundle, labels, request)
    spec = engine.worker_spec(clf.bundle, clf.embedder, clf.request, labels=engine.ship_labels(clf), first=None, output="table")
    return engine.map_dataset(ds, ClassifyWorker, spec, upstream_tasks=True)


def embed_dataset(ds: Any, bundle: Any, request: Any = None, options: RayOptions | None = None) -> Any:
    """Rows with ``path`` (and optional ``bytes``, ``filepath``) -> filepath, embedding (float32
    [dim], null on failure), failure, EXIF fields, width, height, info (JSON)."""
    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.images.request import ImageRequest

    engine = RayEngine(options)
    embedder = ImageEmbedder(bundle, request or ImageRequest())
    spec = engine.worker_spec(embedder.bundle, embedder, embedder.request, labels=None, first=None, output="table")
    return engine.map_dataset(ds, EmbedWorker, spec, upstream_tasks=True)

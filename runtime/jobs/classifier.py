"""Zero-shot classification of images (or of MegaDetector's boxes) against a label matrix.

The Python API, in a few lines::

    from bioclip_edge.runtime import Bundle
    from bioclip_edge.runtime.jobs.classifier import Classifier

    clf = Classifier(Bundle.open("bundles/bioclip"), labels=["lion", "leopard", "empty savanna"])
    for result in clf.predict(["photos/"]):
        print(result["filepath"], result["predictions"][:1] or result["failures"])

Results follow SpeciesNet's shape: one dict per image with ``filepath``, ``predictions`` (top-k,
best first: label, score, index into the label matrix) and ``failures`` (reasons; empty when
the image was read), plus the EXIF ``datetime``/``make``/``model`` and the upright ``width`` and
``height`` when known. An unreadable image is a result with a failure, never an exception.
Everything that can be wrong with the bundle or the labels is raised from ``__init__``, before
any image is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.engine.bundle import Bundle
from bioclip_edge.runtime.images.detections import DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile, crop_box
from bioclip_edge.runtime.images.embedder import EmbedOptions, ImageEmbedder
from bioclip_edge.runtime.images.decode import DecodeOptions, load_image
from bioclip_edge.runtime.images.discover import ImageItem, discover
from bioclip_edge.runtime.labels.digest import label_matrix_sha256
from bioclip_edge.runtime.labels.spec import resolve_labels
from bioclip_edge.runtime.images.pipeline import Prepared, embed_stream, prepare_stream
from bioclip_edge.runtime.engine.session import SessionOptions


def default_threads() -> int:
    """Decode threads: enough to keep one inference stream fed on small and large machines."""
    return max(1, min(4, (os.cpu_count() or 2)))


@dataclass(frozen=True)
class ClassifyOptions:
    precision: str = "auto"  # see runtime.engine.selection
    top_k: int = 5
    batch_size: int = 16
    threads: int | None = None  # decode threads; None: default_threads(); 0: decode inline
    decode: DecodeOptions = DecodeOptions()
    session: SessionOptions = SessionOptions(backend="auto")  # as the CLI: see runtime.engine.selection
    recipe: str = "plain"  # text recipe for labels given as text
    label_cache_dir: str | None = None


class Classifier:
    """Load once, then ``predict(paths)`` / ``iter_predict(paths)`` / ``iter_detections(...)``."""

    def __init__(self, bundle: Bundle | str | os.PathLike, labels: Any, options: ClassifyOptions | None = None, **overrides: Any):
        options = options or ClassifyOptions()
        if overrides:
            options = ClassifyOptions(**{**options.__dict__, **overrides})
        if options.top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {options.top_k}")
        self.options = options
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        self.labels = resolve_labels(self.bundle, labels, options.recipe, options.label_cache_dir)
        self.embedder = ImageEmbedder(self.bundle, options.precision, EmbedOptions(options.batch_size, options.session))
        self.transform = self.embedder.transform
        self.names: list[str] = list(self.labels.names)
        self.top_k = min(options.top_k, len(self.names))
        self.threads = default_threads() if options.threads is None else options.threads

    # --- whole images -------------------------------------------------------------------
    def predict(self, inputs: Iterable[str | os.PathLike], relative: bool = False) -> list[dict[str, Any]]:
        return list(self.iter_predict(inputs, relative=relative))

    def iter_predict(self, inputs: Iterable[str | os.PathLike], relative: bool = False, skip: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
        """Stream results in input order; ``skip`` holds filepaths already done (resume)."""
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]  # one folder or file, not a string of characters
        done = set(skip)
        items = [item for item in discover(inputs, relative=relative) if item.filepath not in done]
        return self.iter_items(items)

    def iter_items(self, items: Iterable[ImageItem]) -> Iterator[dict[str, Any]]:
        stream = prepare_stream(items, self._prepare_whole, self.threads, self._window())
        for prepared, vectors in embed_stream(stream, self.embedder.embed, self.options.batch_size):
            record = _base_record(prepared)
            if vectors is not None:
                record["predictions"] = self.top_predictions(vectors)[0]
            yield _order(record)

    def _prepare_whole(self, item: ImageItem) -> Prepared:
        decoded = load_image(item.path, self.options.decode)
        pixels = self.transform(decoded.image, approximate=decoded.scale > 1)[None]
        return Prepared(item, pixels=pixels, info={**decoded.exif, "width": decoded.width, "height": decoded.height})

    # --- MegaDetector boxes ---------------------------------------------------------------
    def iter_detections(
        self,
        detections: DetectionsFile,
        image_root: str | os.PathLike,
        threshold: float = DEFAULT_THRESHOLD,
        categories: tuple[str, ...] | None = DEFAULT_CATEGORIES,
        skip: Iterable[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Classify each detection of ``categories`` with conf >= threshold; one record per image,
        in the file's order, carrying every detection (classified ones get ``predictions``)."""
        wanted = detections.category_ids(categories)
        done = set(skip)
        root = Path(image_root)
        entries = {}
        items = []
        for entry in detections.images:
            if entry["file"] in done:
                continue
            path = Path(entry["file"]) if os.path.isabs(entry["file"]) else root / entry["file"]
            problem = f"megadetector: {entry['failure']}" if entry.get("failure") else None
            item = ImageItem(path, entry["file"], problem)
            entries[id(item)] = (entry, _targets(entry, wanted, threshold))
            items.append(item)

        def prepare(item: ImageItem) -> Prepared:
            entry, targets = entries[id(item)]
            if not targets:  # nothing to classify: no need to decode the image
                return Prepared(item, pixels=np.zeros((0, 3, *self.transform.size), np.float32), info={"targets": []})
            decoded = load_image(item.path, self.options.decode)
            crops = []
            for index in targets:
                box = crop_box(decoded.image.width, decoded.image.height,  # decoded size: a draft decode is smaller
                                entry["detections"][index]["bbox"])
                crops.append(self.transform(decoded.image.crop(box)))
            info = {**decoded.exif, "width": decoded.width, "height": decoded.height, "targets": targets}
            return Prepared(item, pixels=np.stack(crops), info=info)

        stream = prepare_stream(items, prepare, self.threads, self._window())
        for prepared, vectors in embed_stream(stream, self.embedder.embed, self.options.batch_size):
            entry, targets = entries.pop(id(prepared.item))
            record = _base_record(prepared)
            record.pop("predictions", None)
            dets = [dict(d) for d in entry.get("detections") or []]
            if vectors is not None and len(targets):
                for index, predictions in zip(targets, self.top_predictions(vectors)):
                    dets[index]["predictions"] = predictions
            record["detections"] = dets if entry.get("detections") is not None else None
            record["extra"] = {k: v for k, v in entry.items() if k not in ("file", "detections", "failure")}
            if entry.get("failure"):  # MegaDetector could not read it either: keep its reason as is
                record["md_failure"] = str(entry["failure"])
            yield _order(record)

    # --- shared ---------------------------------------------------------------------------
    def top_predictions(self, vectors: np.ndarray) -> list[list[dict[str, Any]]]:
        indices, probs = self.labels.topk(vectors, self.top_k)
        return [
            [{"label": self.names[int(i)], "score": float(p), "index": int(i)} for i, p in zip(row_i, row_p)]
            for row_i, row_p in zip(np.asarray(indices), np.asarray(probs))
        ]

    @cached_property
    def labels_sha256(self) -> str:
        """sha256 of the label embeddings (not just their names): what ``--resume`` compares,
        so a run never extends an output made with other vectors (another ``--recipe``)."""
        return label_matrix_sha256(self.labels, self.names)

    def category_descriptions(self) -> Any:
        """MegaDetector ``classification_category_descriptions``, one per label: the taxonomy
        string MegaDetector's and SpeciesNet's tools parse, or the label text (``LabelMatrix``)."""
        return self.labels.category_descriptions()

    def describe(self) -> dict[str, Any]:
        """Facts about this classifier for output files' info blocks."""
        from bioclip_edge import __version__

        model = self.bundle.manifest.model
        return {
            "model": model.id,
            "architecture": model.architecture,
            "variant": self.embedder.variant.name,
            "precision": self.embedder.variant.precision,
            "backend": self.embedder.backend,
            "chosen_because": self.embedder.selection.reason,
            "labels": len(self.names),
            "top_k": self.top_k,
            "random_weights": bool(model.source.random_weights),
            "bioclip_edge_version": __version__,
        }

    def _window(self) -> int:
        return max(2 * self.options.batch_size, 4 * max(self.threads, 1))


def _targets(entry: dict[str, Any], wanted: set[str], threshold: float) -> list[int]:
    return [
        i
        for i, det in enumerate(entry.get("detections") or [])
        if str(det.get("category")) in wanted and float(det.get("conf", 0.0)) >= threshold
    ]


def _base_record(prepared: Prepared) -> dict[str, Any]:
    record: dict[str, Any] = {"filepath": prepared.item.filepath, "predictions": [], "failures": []}
    if prepared.failure:
        record["failures"] = [prepared.failure]
    for key in ("datetime", "make", "model", "width", "height"):
        if key in prepared.info:
            record[key] = prepared.info[key]
    prepared.pixels = None  # free the pixels as soon as they are used
    return record


_ORDER = ("filepath", "predictions", "detections", "failures", "datetime", "make", "model", "width", "height", "extra", "md_failure")


def _order(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in _ORDER if k in record}

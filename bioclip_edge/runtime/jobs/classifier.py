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
A video (``runtime.images.video``) is one result: ``frame_rate``, ``frames_processed``, ``frames``
(each sampled frame's number and top-k) and, as ``predictions``, the roll-up over its frames
(``runtime.jobs.rollup``); a damaged one that kept some frames says so in ``note``.
Everything that can be wrong with the bundle or the labels is raised from ``__init__``, before
any image is read.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.plan import InferencePlan
from bioclip_edge.runtime.images.detections import DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile, crop_box
from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.decode import load_image
from bioclip_edge.runtime.images.discover import ImageItem, discover
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.labels.digest import label_matrix_sha256
from bioclip_edge.runtime.labels.spec import resolve_labels
from bioclip_edge.runtime.images.pipeline import Prepared, embedded, whole_image_preparer
from bioclip_edge.runtime.images.discover import is_video_name
from bioclip_edge.runtime.images.media import frame_cost, media_preparer, video_crops, video_preparer
from bioclip_edge.runtime.images.video import VideoSampling
from bioclip_edge.runtime.jobs.rollup import mean_topk
from bioclip_edge.runtime.jobs.scoring_window import NO_VECTORS, Waiting, scored_in_windows


@dataclass(frozen=True)
class ClassifyRequest(ImageRequest):
    """What the user asked of a classification: the image request plus scoring and label text."""

    top_k: int = 5  # labels kept per image or box
    recipe: str = "plain"  # text recipe for labels given as text
    label_cache_dir: str | os.PathLike | None = None  # None: text labels' embeddings are not cached

    def check(self) -> None:
        super().check()
        if self.top_k < 1:
            raise OptionError(f"--top-k must be at least 1 (got {self.top_k})")


class Classifier:
    """Load once, then ``predict(paths)`` / ``iter_predict(paths)`` / ``iter_detections(...)``."""

    def __init__(self, bundle: Bundle | str | os.PathLike, labels: Any, request: ClassifyRequest | None = None, *,
                 plan: InferencePlan | None = None, **fields: Any):
        """``request`` as built by the command line, or its fields as keywords (``top_k=3,
        precision="fp32"``); keywords given with a request replace its fields. ``plan``:
        run this plan (made on a cluster's driver) instead of planning here."""
        request = request or ClassifyRequest()
        if fields:
            request = dataclasses.replace(request, **fields)
        self.request = request
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
        # The vision graph compiles (OpenVINO: ~0.9 s for ViT-B/16 int8 on first use) while the
        # labels are embedded on the text graph: a run's first prediction comes that much sooner.
        with ThreadPoolExecutor(1, thread_name_prefix="vision-open") as pool:
            embedder = pool.submit(ImageEmbedder, self.bundle, request, plan=plan)
            self.labels = resolve_labels(self.bundle, labels, request.recipe, request.label_cache_dir)
            self.embedder = embedder.result()
        self.transform = self.embedder.transform
        self.names: list[str] = list(self.labels.names)
        self.top_k = min(request.top_k, len(self.names))
        self.sampling = VideoSampling(request.frame_interval, request.max_frames)
        self.score_window = self.labels.scoring_window  # vectors per topk call (``jobs.scoring_window``)

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
        """Records in input order, scored ``score_window`` vectors at a time (``jobs.scoring_window``)."""
        prepare = media_preparer(whole_image_preparer(self.transform, self.embedder.decode),
                                 video_preparer(self.transform, self.sampling))
        stream = embedded(items, prepare, self.embedder.embed, self.embedder.flow, frame_cost(self.sampling))
        waiting = (self._waiting_item(prepared, vectors) for prepared, vectors in stream)
        yield from scored_in_windows(waiting, self.top_predictions, self.score_window)

    def _waiting_item(self, prepared: Prepared, vectors: Any) -> Waiting:
        """A still's or a video's record, finished once its vectors are scored."""
        video = is_video_name(prepared.item.path)
        numbers = prepared.info.get("frames_processed", [])
        record = _base_record(prepared)
        if video and vectors is None:  # MegaDetector's convention for a failed video
            record.update({"frame_rate": -1.0, "frames_processed": []})
        if vectors is None:
            return Waiting(NO_VECTORS, lambda _: _order(record))
        if video:
            return Waiting(vectors, lambda found: _order({**record, **self._video_fields(numbers, found)}))
        return Waiting(vectors, lambda found: _order({**record, "predictions": found[0] if found else []}))

    def _video_fields(self, numbers: list[int], found: list[list[dict[str, Any]]]) -> dict[str, Any]:
        """A video's frames (number + top-k each) and its roll-up (``jobs.rollup``)."""
        frames = [{"frame_number": n, "predictions": p} for n, p in zip(numbers, found)]
        return {"predictions": mean_topk((f["predictions"] for f in frames), self.top_k), "frames": frames}

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
        in the file's order, carrying every detection (classified ones get ``predictions``).
        With draft decoding on, a still frame is drafted only as far as its smallest crop keeps the
        whole-image margin, else decoded exactly (``ImageEmbedder.crop_options``); video frames exactly."""
        done, wanted = set(skip), detections.category_ids(categories)
        entries: dict[int, tuple[dict[str, Any], list[int]]] = {}
        items = []
        for entry in detections.images:
            if entry["file"] not in done:
                item = _detection_item(entry, Path(image_root))
                entries[id(item)] = (entry, _targets(entry, wanted, threshold))
                items.append(item)

        def prepare(item: ImageItem) -> Prepared:
            return self._prepare_crops(item, *entries[id(item)])

        def waiting() -> Iterator[Waiting]:
            for prepared, vectors in embedded(items, prepare, self.embedder.embed, self.embedder.flow):
                entry, targets = entries.pop(id(prepared.item))
                yield self._waiting_boxes(prepared, vectors, entry, targets)

        yield from scored_in_windows(waiting(), self.top_predictions, self.score_window)

    def _prepare_crops(self, item: ImageItem, entry: dict[str, Any], targets: list[int]) -> Prepared:
        if not targets:  # nothing to classify: no need to decode the image
            return Prepared(item, pixels=np.zeros((0, 3, *self.transform.size), np.float32), info={"targets": []})
        if is_video_name(item.path):
            return video_crops(item, entry["detections"], targets, self.transform)
        decoded = load_image(item.path, self.embedder.crop_options(item.path, [entry["detections"][i]["bbox"] for i in targets]))
        crops = []
        for index in targets:
            box = crop_box(decoded.image.width, decoded.image.height, entry["detections"][index]["bbox"])
            crops.append(self.transform(decoded.image.crop(box)))
        info = {**decoded.exif, "width": decoded.width, "height": decoded.height, "targets": targets}
        return Prepared(item, pixels=np.stack(crops), info=info)

    def _waiting_boxes(self, prepared: Prepared, vectors: Any, entry: dict[str, Any], targets: list[int]) -> Waiting:
        """An image's record with every detection; the classified boxes get their top-k once scored."""
        targets = prepared.info.get("targets", targets)  # a video's boxes in frames it lacks are left out
        record = _base_record(prepared)
        record.pop("predictions", None)
        dets = [dict(d) for d in entry.get("detections") or []]
        record["detections"] = dets if entry.get("detections") is not None else None
        record["extra"] = {k: v for k, v in entry.items() if k not in ("file", "detections", "failure")}
        if entry.get("failure"):  # MegaDetector could not read it either: keep its reason as is
            record["md_failure"] = str(entry["failure"])

        def finish(found: list[list[dict[str, Any]]]) -> dict[str, Any]:
            for index, predictions in zip(targets, found):
                dets[index]["predictions"] = predictions
            return _order(record)

        return Waiting(vectors if vectors is not None and len(targets) else NO_VECTORS, finish)

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
            "chosen_because": self.embedder.plan.reason,
            "decode_chosen_because": self.embedder.decode_choice.reason,
            "labels": len(self.names),
            "top_k": self.top_k,
            "random_weights": bool(model.source.random_weights),
            "bioclip_edge_version": __version__,
        }

    def decode_draft(self, detections: bool) -> tuple[int, int] | None:
        """The draft size a run decodes whole images with (None: exact); with ``detections`` crops
        draft under the crop rule (``ImageEmbedder.crop_options``), so the mode is the same."""
        return self.embedder.decode.draft_size


def _detection_item(entry: dict[str, Any], root: Path) -> ImageItem:
    path = Path(entry["file"]) if os.path.isabs(entry["file"]) else root / entry["file"]
    problem = f"megadetector: {entry['failure']}" if entry.get("failure") else None
    return ImageItem(path, entry["file"], problem)


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
    for key in ("datetime", "make", "model", "serial", "width", "height", "frame_rate", "frames_processed", "note"):
        if key in prepared.info:
            record[key] = prepared.info[key]
    prepared.pixels = None  # free the pixels as soon as they are used
    return record


_ORDER = ("filepath", "predictions", "detections", "failures", "datetime", "make", "model", "serial", "width", "height",
          "frame_rate", "frames_processed", "frames", "note", "extra", "md_failure")


def _order(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in _ORDER if k in record}

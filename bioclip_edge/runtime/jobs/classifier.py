"""Zero-shot classification of images (or of MegaDetector's boxes) against a label set.

The Python API, in a few lines::

    from bioclip_edge.runtime import Bundle
    from bioclip_edge.runtime.jobs.classifier import Classifier

    clf = Classifier(Bundle.open("bundles/bioclip"), labels=["lion", "leopard", "empty savanna"])
    for result in clf.predict(["photos/"]):
        print(result["filepath"], result["predictions"][:1] or result["failures"])

Results follow SpeciesNet's shape: one dict per image with ``filepath``, ``predictions`` (top-k,
best first: label, score, index into the label matrix) and ``failures`` (reasons; empty when
the image was read), plus the EXIF ``datetime``/``make``/``model`` and the upright ``width`` and
``height`` when known, and its ``kind`` (``runtime.jobs.records`` describes every field). An
unreadable image is a result with a failure, never an exception. A video is one result:
``frame_rate``, ``frames_processed``, ``frames`` (each sampled frame's number and top-k) and, as
``predictions``, the roll-up over its frames (``runtime.jobs.rollup``); a damaged one that kept some
frames says so in ``note``. Everything that can be wrong with the bundle or the labels is raised
from ``__init__``, before any image is read.

A ``Classifier`` loads (the vision graph and the labels, side by side) and holds what a run needs;
the records are made by ``jobs.media_records`` (whole images and videos) and ``jobs.box_records``
(MegaDetector's boxes), the label side is ``jobs.top_labels``.
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

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.detections import DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile
from bioclip_edge.runtime.images.discover import ImageItem, discover
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.media import request_sampling
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.plan import InferencePlan
from bioclip_edge.runtime.jobs.box_records import box_items, box_records
from bioclip_edge.runtime.jobs.media_records import media_records
from bioclip_edge.runtime.jobs.records import BoxesRecord, Predictions, Record
from bioclip_edge.runtime.jobs.top_labels import TopLabels


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


@dataclass(frozen=True)
class ClassifierDescription:
    """What a classifier runs, for the command line and the outputs' info blocks (``to_dict``)."""

    model: str
    architecture: str
    variant: str
    precision: str
    provider: str  # what the session reports running, e.g. "OpenVINO CPU (bfloat16)"
    chosen_because: str  # why this graph and backend (the plan's reason)
    decode_chosen_because: str
    labels: int
    top_k: int
    random_weights: bool
    bioclip_edge_version: str

    def to_dict(self) -> dict[str, Any]:
        """As the info blocks write it: the provider under its written key, ``backend``."""
        fields = dataclasses.asdict(self)
        return {("backend" if key == "provider" else key): value for key, value in fields.items()}


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
            self.top = TopLabels.resolve(self.bundle, labels, request.top_k, request.recipe, request.label_cache_dir)
            self.embedder = embedder.result()
        self.labels = self.top.matrix
        self.names = self.top.names
        self.top_k = self.top.k
        self.transform = self.embedder.transform
        self.sampling = request_sampling(request)
        self.score_window = self.top.scoring_window  # vectors per topk call (``jobs.scoring_window``)

    # --- whole images and videos ------------------------------------------------------------
    def predict(self, inputs: Iterable[str | os.PathLike], relative: bool = False) -> list[Record]:
        return list(self.iter_predict(inputs, relative=relative))

    def iter_predict(self, inputs: Iterable[str | os.PathLike], relative: bool = False, skip: Iterable[str] = ()) -> Iterator[Record]:
        """Stream results in input order; ``skip`` holds filepaths already done (resume)."""
        if isinstance(inputs, (str, os.PathLike)):
            inputs = [inputs]  # one folder or file, not a string of characters
        done = set(skip)
        return self.iter_items([item for item in discover(inputs, relative=relative) if item.filepath not in done])

    def iter_items(self, items: Iterable[ImageItem]) -> Iterator[Record]:
        """Records in input order, scored ``score_window`` vectors at a time (``jobs.scoring_window``)."""
        return media_records(items, self.embedder, self.top_predictions, self.score_window, self.top_k)

    # --- MegaDetector boxes ---------------------------------------------------------------
    def iter_detections(self, detections: DetectionsFile, image_root: str | os.PathLike, threshold: float = DEFAULT_THRESHOLD,
                        categories: tuple[str, ...] | None = DEFAULT_CATEGORIES, skip: Iterable[str] = ()) -> Iterator[BoxesRecord]:
        """Classify each detection of ``categories`` with conf >= threshold; one record per image,
        in the file's order, carrying every detection (classified ones get ``predictions``)."""
        items = box_items(detections, Path(image_root), categories, threshold, skip)
        return box_records(items, self.embedder, self.top_predictions, self.score_window)

    # --- what runs ------------------------------------------------------------------------
    def top_predictions(self, vectors: np.ndarray) -> list[Predictions]:
        return self.top.predictions(vectors)

    @property
    def labels_sha256(self) -> str:
        return self.top.sha256

    def category_descriptions(self) -> Any:
        return self.top.category_descriptions()

    @property
    def draft_size(self) -> tuple[int, int] | None:
        """The draft size whole images are decoded with (None: exact); MegaDetector crops draft
        under the crop rule (``ImageEmbedder.crop_options``), so the decoding mode is the same."""
        return self.embedder.decode.draft_size

    @cached_property
    def description(self) -> ClassifierDescription:
        from bioclip_edge import __version__

        model = self.bundle.manifest.model
        return ClassifierDescription(
            model=model.id, architecture=model.architecture, variant=self.embedder.variant.name,
            precision=self.embedder.variant.precision, provider=self.embedder.provider,
            chosen_because=self.embedder.plan.reason, decode_chosen_because=self.embedder.decode_choice.reason,
            labels=len(self.names), top_k=self.top_k, random_weights=bool(model.source.random_weights),
            bioclip_edge_version=__version__)

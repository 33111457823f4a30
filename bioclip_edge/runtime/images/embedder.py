"""Pixels -> unit-length image embeddings with the bundle's vision tower (onnxruntime or OpenVINO).

One ``ImageEmbedder`` holds one inference session for one vision variant, and what follows from
the user's ``ImageRequest`` for images: the transform, the decode options (``decode_choice``:
exact or draft, and why) and the ``Flow``, each derived once here. ``embed`` runs any number of images in the flow's model calls and
L2-normalises the result itself: the exported graphs already normalise, but doing it here costs
nothing and keeps cosine scores right for any graph the manifest may name in future.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.common.arrays import normalize_rows
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.images.decode import DEFAULT_MAX_PIXELS, DecodeOptions, upright_size
from bioclip_edge.runtime.images.decode_mode import choose_decode, crop_draft_size
from bioclip_edge.runtime.images.detections import crop_box
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.images.pipeline import Flow, Prepared, embedded, whole_image_preparer
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.images.transform import ImageTransform
from bioclip_edge.runtime.inference.memory import workload_for
from bioclip_edge.runtime.inference.plan import InferencePlan
from bioclip_edge.runtime.inference.selection import make_plan
from bioclip_edge.runtime.inference.session import open_session


class ImageEmbedder:
    """``ImageEmbedder(bundle, "auto").embed(pixels[B, 3, H, W]) -> float32 [B, dim]``."""

    def __init__(self, bundle: Bundle | str, request: ImageRequest | str = "auto", variant: str | None = None,
                 plan: InferencePlan | None = None):
        """``request``: the user's ``ImageRequest``, or just its precision (a variant precision: fp32,
        fp16, int8, int8-static, int8-nncf, or ``auto``: ``runtime.inference.selection``'s fastest
        verified variant for this machine); ``variant`` names one graph outright; ``plan``: an
        ``InferencePlan`` already made (on a cluster's driver), run as it is instead of deciding again.
        ``self.plan`` says what was chosen and why."""
        if not isinstance(bundle, Bundle):
            bundle = Bundle.open(bundle)
        if isinstance(request, str):
            request = ImageRequest(precision=request)
        self.bundle = bundle
        self.request = request
        self.transform = ImageTransform.from_manifest(bundle.manifest.preprocess)
        self.decode_choice = choose_decode(request.decode, bundle.manifest.decode_check)  # printed and recorded
        self.decode = DecodeOptions(max_pixels=request.max_pixels or DEFAULT_MAX_PIXELS,
                                    draft_size=self.transform.draft_size if self.decode_choice.draft else None)
        self.crop_decode = dataclasses.replace(self.decode, draft_size=None)  # exact; crops draft per frame (crop_options)
        self.dim = bundle.manifest.model.embed_dim
        self._open_session(bundle, request, variant, plan)

    def _open_session(self, bundle: Bundle, request: ImageRequest, variant: str | None, plan: InferencePlan | None) -> None:
        """The vision graph for ``request.precision`` and ``request.session``, planned once (``plan``:
        outputs print its ``reason``) and opened by the one session factory."""
        self.plan = plan or make_plan(bundle, "vision", request.precision, request.session, variant_name=variant)
        self.variant = bundle.variant("vision", name=self.plan.variant)
        # Within --max-memory, decided before the graph loads: a budget too small stops here.
        self.flow = Flow.planned(request, lambda threads: workload_for(self.plan, self.variant, bundle.manifest, threads,
                                                                       self.decode_choice.draft))
        self._session = open_session(self.plan, bundle)
        self.provider = self._session.get_providers()[0]  # what actually runs, e.g. "OpenVINO CPU (bfloat16)"
        first = self._session.get_inputs()[0]
        self._input_name = self.variant.input_name or first.name
        self._input_dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    @property
    def image_size(self) -> tuple[int, int]:
        return self.transform.size

    def crop_options(self, path: Any, bboxes: list[list[float]]) -> DecodeOptions:
        """How to decode a frame that MegaDetector boxes (normalised ``bboxes``) are cut from: drafted
        only when drafting is on and every crop keeps the whole-image margin (``crop_draft_size``)."""
        if self.decode.draft_size is None or not bboxes:
            return self.crop_decode
        size = upright_size(path)
        boxes = [crop_box(size[0], size[1], bbox) for bbox in bboxes] if size else []
        return dataclasses.replace(self.crop_decode, draft_size=crop_draft_size(size, boxes, self.decode.draft_size[0]))

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Normalised embeddings for preprocessed pixels; empty input gives an empty [0, dim]."""
        pixels = np.asarray(pixels)
        height, width = self.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, height, width):
            raise ValueError(f"expected pixels of shape [B, 3, {height}, {width}], got {list(pixels.shape)}")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        for rows in self.flow.chunks(len(pixels)):
            chunk = np.ascontiguousarray(pixels[rows], dtype=self._input_dtype)
            out.append(self._session.run(None, {self._input_name: chunk})[0].astype(np.float32))
        return normalize_rows(np.concatenate(out))

    def embed_images(self, images) -> np.ndarray:
        """Convenience: RGB PIL images -> embeddings (preprocessed with the bundle's transform)."""
        return self.embed(np.stack([self.transform(im) for im in images]) if images else np.zeros((0, 3, *self.image_size), np.float32))


def iter_embeddings(embedder: ImageEmbedder, items: Iterable[ImageItem]) -> Iterator[tuple[Prepared, Any]]:
    """Embed whole image files: yields ``(Prepared, vector [dim] | None)`` in input order, decoding
    ahead in the embedder's flow while the model runs; unreadable files come with ``failure`` set."""
    prepare = whole_image_preparer(embedder.transform, embedder.decode)
    for prepared, vectors in embedded(items, prepare, embedder.embed, embedder.flow):
        prepared.pixels = None
        yield prepared, None if vectors is None else vectors[0]

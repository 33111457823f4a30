"""Pixels -> unit-length image embeddings with the bundle's vision tower (onnxruntime).

One ``ImageEmbedder`` holds one onnxruntime session for one vision variant. ``embed`` runs any
number of images in chunks of ``batch_size`` and L2-normalises the result itself: the exported
graphs already normalise, but doing it here costs nothing and keeps cosine scores right for any
graph the manifest may name in future.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from bioclip_edge.runtime.engine.bundle import Bundle
from bioclip_edge.runtime.images.transform import ImageTransform
from bioclip_edge.runtime.engine.selection import select_vision
from bioclip_edge.runtime.engine.session import SessionOptions, make_session


@dataclass(frozen=True)
class EmbedOptions:
    batch_size: int = 16  # images per model call
    session: SessionOptions = SessionOptions(backend="auto")  # as the CLI: see runtime.engine.selection


class ImageEmbedder:
    """``ImageEmbedder(bundle, "auto").embed(pixels[B, 3, H, W]) -> float32 [B, dim]``."""

    def __init__(self, bundle: Bundle | str, precision: str = "auto", options: EmbedOptions = EmbedOptions(), variant: str | None = None):
        """``precision``: a variant precision (fp32, fp16, int8, int8-static, int8-nncf) or ``auto``
        (``runtime.engine.selection``: the fastest verified variant for this machine); ``variant`` names
        one graph outright. ``self.selection`` says what was chosen and why."""
        if not isinstance(bundle, Bundle):
            bundle = Bundle.open(bundle)
        if options.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {options.batch_size}")
        self.bundle = bundle
        self.options = options
        self.selection = select_vision(bundle, precision, options.session.backend, options.session.providers,
                                       variant_name=variant)
        self.variant = self.selection.variant
        self.transform = ImageTransform.from_manifest(bundle.manifest.preprocess)
        self.dim = bundle.manifest.model.embed_dim
        session_options = dataclasses.replace(options.session, backend=self.selection.backend)
        self._session = make_session(bundle.model_path(self.variant), session_options, self.variant)
        self.backend = self._session.get_providers()[0]  # what actually runs, e.g. "OpenVINO CPU (bfloat16)"
        first = self._session.get_inputs()[0]
        self._input_name = self.variant.input_name or first.name
        self._input_dtype = np.float16 if first.type == "tensor(float16)" else np.float32

    @property
    def image_size(self) -> tuple[int, int]:
        return self.transform.size

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """Normalised embeddings for preprocessed pixels; empty input gives an empty [0, dim]."""
        pixels = np.asarray(pixels)
        height, width = self.image_size
        if pixels.ndim != 4 or pixels.shape[1:] != (3, height, width):
            raise ValueError(f"expected pixels of shape [B, 3, {height}, {width}], got {list(pixels.shape)}")
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        step = self.options.batch_size
        for start in range(0, len(pixels), step):
            chunk = np.ascontiguousarray(pixels[start : start + step], dtype=self._input_dtype)
            out.append(self._session.run(None, {self._input_name: chunk})[0].astype(np.float32))
        return normalise(np.concatenate(out))

    def embed_images(self, images) -> np.ndarray:
        """Convenience: RGB PIL images -> embeddings (preprocessed with the bundle's transform)."""
        return self.embed(np.stack([self.transform(im) for im in images]) if images else np.zeros((0, 3, *self.image_size), np.float32))


def normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def iter_embeddings(embedder: ImageEmbedder, items, threads: int, decode=None):
    """Embed image files: yields ``(Prepared, vector [dim] | None)`` in input order, decoding in
    ``threads`` threads while the model runs; unreadable files come with ``failure`` set."""
    from bioclip_edge.runtime.images.decode import DecodeOptions, load_image
    from bioclip_edge.runtime.images.pipeline import Prepared, embed_stream, prepare_stream

    decode = decode or DecodeOptions()

    def prepare(item):
        decoded = load_image(item.path, decode)
        info = {**decoded.exif, "width": decoded.width, "height": decoded.height}
        return Prepared(item, pixels=embedder.transform(decoded.image, approximate=decoded.scale > 1)[None], info=info)

    batch = embedder.options.batch_size
    window = max(2 * batch, 4 * max(threads, 1))
    for prepared, vectors in embed_stream(prepare_stream(items, prepare, threads, window), embedder.embed, batch):
        prepared.pixels = None
        yield prepared, None if vectors is None else vectors[0]

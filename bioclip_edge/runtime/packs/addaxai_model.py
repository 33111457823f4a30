"""AddaxAI's classifier interface, implemented by the torch-free runtime.

AddaxAI's classification worker (``backend/app/ml/inference/classification_worker.py``) imports
a model folder's ``inference.py`` and calls its ``ModelInference(model_dir, model_path)``:
``check_gpu``, ``load_model``, then per MegaDetector box ``get_crop(image, bbox)`` and either
``get_classification(crop)`` or, in batches, ``get_tensor(crop)`` + ``classify_batch(stacked)``;
``get_class_names()`` goes into its output. A pack's ``inference.py`` subclasses
``BioclipModelInference`` and adds nothing, so what runs is this module, versioned with the runtime.

The answers are ``classify --detections``'s: the vision graph is planned by the same
``make_plan`` (``auto``: the fastest verified graph for this machine; GPU providers, when
onnxruntime has them, run fp32 as ``--providers cuda`` does), the crop is the same
``crop_box`` of the upright picture, and the scores are the label matrix's softmax over all its
labels. Two differences come from AddaxAI's side: it hands over a picture it decoded at full size
(no draft decoding), and a box that covers no pixel of the frame (zero or negative width or
height, wholly outside it, not numbers) is answered with ``None`` from ``get_crop``, which the
worker records as a failed item, where ``classify`` would cut its one-pixel edge.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bioclip_edge.runtime.images.decode import to_rgb
from bioclip_edge.runtime.images.detections import crop_box
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.plan import SessionOptions
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.packs.config import PackConfig

# AddaxAI asks for every class's confidence and keeps the best five of each box. Beyond this many
# labels (a TreeOfLife matrix has 867k) only the best this many are returned: the rest are
# near-zero softmax tails that would cost a Python pair each per box and never be kept.
MAX_CLASSES_RETURNED = 5000
_ORIENTATION_TAG = 0x0112
_GPU_PROVIDERS = {"CUDAExecutionProvider": "cuda", "DmlExecutionProvider": "dml"}


def usable_box(bbox: Any) -> list[float] | None:
    """MegaDetector's normalised ``[x, y, width, height]`` if it covers part of the frame, else None."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    if x >= 1 or y >= 1 or x + w <= 0 or y + h <= 0:
        return None
    return [x, y, w, h]


def gpu_providers() -> tuple[str, ...]:
    """The GPU execution providers this onnxruntime has, by the runtime's short names."""
    import onnxruntime as ort

    return tuple(short for name, short in _GPU_PROVIDERS.items() if name in ort.get_available_providers())


class BioclipModelInference:
    """``ModelInference`` as AddaxAI's ``inference_template.py`` defines it (module docstring)."""

    def __init__(self, model_dir: str | Path, model_path: str | Path):
        self.model_dir = Path(model_dir)
        self.model_path = Path(model_path)
        self.config = PackConfig.read(self.model_dir)
        self.model: ImageEmbedder | None = None  # loaded by load_model, as the template keeps it
        self._labels: LabelMatrix | None = None
        self._upright: tuple[Any, Any] | None = None  # (frame, its upright picture): several boxes per frame

    # --- AddaxAI's required methods --------------------------------------------------------
    def check_gpu(self) -> bool:
        return bool(gpu_providers())

    def load_model(self) -> None:
        """Open the pack's bundle and labels (checked against each other) and plan the vision graph."""
        bundle = Bundle.open(self.model_dir / self.config.bundle, defer_hashing=True)
        self.labels.check_bundle(bundle)
        session = SessionOptions(backend="auto", providers=(*gpu_providers(), "cpu"))
        self.model = ImageEmbedder(bundle, ImageRequest(precision=self.config.precision, session=session))

    def get_crop(self, image: Any, bbox: Sequence[float]) -> Any:
        """The box cut from the upright frame by ``classify``'s crop rule; None for a box that
        covers no pixel of the frame (the worker records a failed item)."""
        box = usable_box(bbox)
        if box is None:
            return None
        upright = self._upright_picture(image)
        return upright.crop(crop_box(upright.width, upright.height, box))

    def get_classification(self, crop: Any) -> list[list[Any]]:
        return self.classify_batch(self.get_tensor(crop)[None])[0]

    def get_class_names(self) -> dict[str, str]:
        return {str(i + 1): name for i, name in enumerate(self.labels.names)}

    # --- AddaxAI's batch methods -------------------------------------------------------------
    def get_tensor(self, crop: Any) -> np.ndarray:
        """The crop through the bundle's preprocessing: float32 [3, H, W]."""
        return self._embedder().transform(to_rgb(crop))

    def classify_batch(self, batch: np.ndarray) -> list[list[list[Any]]]:
        """``[[name, confidence], ...]`` per crop, best first, over every label (``MAX_CLASSES_RETURNED``)."""
        vectors = self._embedder().embed(np.asarray(batch, dtype=np.float32))
        labels = self.labels
        indices, probs = labels.topk(vectors, min(labels.n, MAX_CLASSES_RETURNED))
        names = labels.names
        return [[[names[int(i)], float(p)] for i, p in zip(row_i, row_p)] for row_i, row_p in zip(indices, probs)]

    # --- helpers ---------------------------------------------------------------------------
    @property
    def labels(self) -> LabelMatrix:
        if self._labels is None:
            self._labels = LabelMatrix.load(self.model_dir / self.config.labels)
        return self._labels

    def _embedder(self) -> ImageEmbedder:
        if self.model is None:
            self.load_model()
        assert self.model is not None
        return self.model

    def _upright_picture(self, image: Any) -> Any:
        """The frame turned by its EXIF orientation, as MegaDetector and ``classify`` see it
        (AddaxAI opens stills without turning them; video frames carry no EXIF)."""
        if self._upright is not None and self._upright[0] is image:
            return self._upright[1]
        upright = image
        try:
            turned = int(image.getexif().get(_ORIENTATION_TAG, 1)) not in (0, 1)
        except Exception:  # noqa: BLE001  malformed EXIF: read as upright, as the runtime's decoder does
            turned = False
        if turned:
            from PIL import ImageOps

            upright = ImageOps.exif_transpose(image)
        self._upright = (image, upright)
        return upright

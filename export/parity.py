"""Parity of each ONNX variant with PyTorch open_clip, measured on stored reference inputs.

The exporter saves the inputs it fed PyTorch (preprocessed photos, token ids) and PyTorch's
embeddings in ``parity/reference.npz`` inside the bundle. Measuring a variant needs only
onnxruntime and numpy, so ``bioclip-edge verify`` re-measures a bundle on a machine without torch.

Bounds (held to, flagged in ``verify`` output and its exit code when missed):
- fp32: minimum cosine >= 0.99999
- fp16: minimum cosine >= 0.999
- int8: mean cosine >= 0.99 and zero-shot top-1 agreement with PyTorch fp32 >= 0.90 (top-1 is
  held only for trained weights: with random weights the label scores are all within noise)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.manifest import Parity, Variant

REFERENCE_FILE = "parity/reference.npz"


@dataclass(frozen=True)
class Bound:
    metric: str  # cosine_min | cosine_mean
    value: float
    top1: float | None = None


BOUNDS = {
    "fp32": Bound("cosine_min", 0.99999),
    "fp16": Bound("cosine_min", 0.999),
    "int8": Bound("cosine_mean", 0.99, top1=0.90),
}


@dataclass(frozen=True)
class Reference:
    """PyTorch's inputs and outputs that every variant is compared with."""

    pixels: np.ndarray  # [N, 3, H, W] float32, open_clip's own preprocessing
    image_embeddings: np.ndarray  # [N, D] normalised, PyTorch fp32
    ids: np.ndarray  # [M, L] int32, trimmed to the longest label
    text_embeddings: np.ndarray  # [M, D] normalised, PyTorch fp32 at the full context
    labels: tuple[str, ...]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, pixels=self.pixels, image_embeddings=self.image_embeddings, ids=self.ids,
                            text_embeddings=self.text_embeddings, labels=np.array(self.labels))

    @classmethod
    def load(cls, path: Path) -> "Reference":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["pixels"], z["image_embeddings"], z["ids"], z["text_embeddings"], tuple(str(x) for x in z["labels"]))


def run_variant(path: Path, variant: Variant, ref: Reference, batch: int = 8) -> np.ndarray:
    """Embeddings of the reference inputs through one ONNX variant (onnxruntime CPU)."""
    from ..runtime.session import SessionOptions, make_session

    session = make_session(path, SessionOptions(optimization="all"))
    inputs = ref.pixels if variant.tower == "vision" else ref.ids
    if variant.tower == "text" and not variant.dynamic_length:
        inputs = _pad_ids(ref.ids, int(session.get_inputs()[0].shape[1]))
    outs = [session.run(None, {variant.input_name: inputs[i:i + batch]})[0] for i in range(0, len(inputs), batch)]
    return np.concatenate(outs).astype(np.float32)


def _pad_ids(ids: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((ids.shape[0], length), dtype=ids.dtype)
    out[:, : ids.shape[1]] = ids
    return out


def measure(variant: Variant, got: np.ndarray, ref: Reference, random_weights: bool = False) -> Parity:
    """Compare one variant's embeddings with PyTorch's and hold them to the precision's bound.

    With random weights every label scores within noise of every other, so zero-shot top-1
    agreement says nothing about the variant: it is recorded but not held to its bound.
    """
    want = ref.image_embeddings if variant.tower == "vision" else ref.text_embeddings
    cos = _cosine(got, want)
    if variant.tower == "vision":
        top1 = _agreement(got @ ref.text_embeddings.T, want @ ref.text_embeddings.T)
    else:
        top1 = _agreement(ref.image_embeddings @ got.T, ref.image_embeddings @ want.T)
    bound = BOUNDS[variant.precision]
    figure = float(cos.min() if bound.metric == "cosine_min" else cos.mean())
    hold_top1 = bound.top1 is not None and not random_weights
    passed = figure >= bound.value and (not hold_top1 or top1 >= bound.top1)
    return Parity(
        cosine_min=float(cos.min()),
        cosine_mean=float(cos.mean()),
        n_inputs=int(len(cos)),
        bound=bound.value,
        metric=bound.metric + (f" and top1 >= {bound.top1}" if hold_top1 else
                               " (top-1 not held: random weights)" if bound.top1 is not None else ""),
        passed=bool(passed),
        top1_agreement=float(top1),
        n_labels=int(len(ref.labels)),
        max_abs_diff=float(np.abs(got - want).max()),
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def _agreement(logits: np.ndarray, ref_logits: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == ref_logits.argmax(axis=1)).mean())

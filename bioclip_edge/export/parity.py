"""Parity of each ONNX variant with PyTorch open_clip, measured on stored reference inputs.

The exporter saves the inputs it fed PyTorch (photos as open_clip cropped them, token ids) and
PyTorch's embeddings in ``parity/reference.npz`` inside the bundle. Measuring a variant needs only
onnxruntime and numpy, so ``bioclip-edge verify`` re-measures a bundle on a machine without torch.

Bounds (held to, flagged in ``export``/``verify`` output and their exit code when missed):
- fp32: minimum cosine >= 0.99999
- fp16: minimum cosine >= 0.999
- int8: mean cosine >= 0.99 and zero-shot top-1 agreement >= 0.90 on images with a clear margin

Top-1 on clear margins (``clear_top1``, the one rule used by export, verify, the NNCF preset gate
and the speed benchmark). Zero-shot top-1 compares the variant's scores (cosine, image x label)
with PyTorch fp32's on the same images. Where two labels score within the variant's error of each
other, which one wins is noise: with random weights most labels tie (median top-1/top-2 gap 0.009
cosine on ViT-B/16 over 110 labels), and one such flip among a handful of images would fail a
correct int8 export. So:

1. The variant's score error E is the 95th percentile of |score_variant - score_fp32| over every
   image x label score, after removing each image's median difference (a shift shared by all
   labels cannot reorder them). A percentile over all scores, not a maximum, so a variant that is
   broken on a few images or a few labels (under 5% of scores) cannot inflate E and hide its own
   flips; a variant broken everywhere inflates E, and the cosine bound catches it instead. E is at
   least 1e-5: fp32 graphs differ from PyTorch by ~1e-6 (summation order), and a variant exact
   everywhere but on one image would otherwise count a flip of a 1e-6 lead there.
2. An image is judged when fp32's top-1 leads every other label by more than 2E (to flip it, two
   scores must each move by about E in opposite directions; measured on random-weight ViT-B/16,
   ViT-B/32 and RN50, all 55 flips of their correct int8 graphs had leads under 0.95E),
   or when the variant's top-1 trails fp32's by more than 2E (a clear miss even between near-tied
   leaders). Only judged images count: agreement is k/n on them, and the m of N images left out
   are reported.
3. Fewer than 10 judged images is "not measurable": said plainly, never a failure, since a gate
   that fires on a near-tie is noise. The check still fails on any variant whose clear-margin
   images change their top-1 (tests/export/test_parity.py breaks a graph on purpose).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bioclip_edge.runtime.inference.manifest import Parity, Top1Check, Variant

REFERENCE_FILE = "parity/reference.npz"
SCORE_ERROR_QUANTILE = 0.95  # E: this percentile of the variant's score errors (see the module docstring)
SCORE_ERROR_FLOOR = 1e-5  # E is at least this: leads under 2e-5 cosine are ties for every purpose
CLEAR_FACTOR = 2.0  # an image is judged when its margin exceeds this many E
MIN_CLEAR = 10  # fewer judged images: top-1 "not measurable"


@dataclass(frozen=True)
class Bound:
    metric: str  # cosine_min | cosine_mean
    value: float
    top1: float | None = None  # required top-1 agreement on clear margins; None: recorded only


BOUNDS = {
    "fp32": Bound("cosine_min", 0.99999),
    "fp16": Bound("cosine_min", 0.999),
    "int8": Bound("cosine_mean", 0.99, top1=0.90),
}


@dataclass(frozen=True)
class Reference:
    """PyTorch's inputs and outputs that every variant is compared with.

    ``images`` holds the photos as open_clip's transform cropped them (uint8, before ToTensor and
    Normalize): a quarter of the float pixels' size, and ``pixels`` follow from them exactly.
    References written before it existed store ``pixels`` only.
    """

    pixels: np.ndarray  # [N, 3, H, W] float32, what PyTorch was fed
    image_embeddings: np.ndarray  # [N, D] normalised, PyTorch fp32
    ids: np.ndarray  # [M, L] int32, trimmed to the longest label
    text_embeddings: np.ndarray  # [M, D] normalised, PyTorch fp32 at the full context
    labels: tuple[str, ...]
    images: np.ndarray | None = None  # [N, H, W, 3] uint8
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        inputs = {"pixels": self.pixels} if self.images is None else \
            {"images": self.images, "mean": np.array(self.mean, np.float32), "std": np.array(self.std, np.float32)}
        np.savez_compressed(path, image_embeddings=self.image_embeddings, ids=self.ids,
                            text_embeddings=self.text_embeddings, labels=np.array(self.labels), **inputs)

    @classmethod
    def load(cls, path: Path) -> "Reference":
        with np.load(path, allow_pickle=False) as z:
            labels = tuple(str(x) for x in z["labels"])
            if "images" not in z:
                return cls(z["pixels"], z["image_embeddings"], z["ids"], z["text_embeddings"], labels)
            mean, std = tuple(float(x) for x in z["mean"]), tuple(float(x) for x in z["std"])
            return cls(normalise_pixels(z["images"], mean, std), z["image_embeddings"], z["ids"],
                       z["text_embeddings"], labels, z["images"], mean, std)


def normalise_pixels(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """torchvision's ToTensor + Normalize on uint8 [N, H, W, 3]: the same float32 operations in the
    same order, so the result is bit-identical to open_clip's pixels."""
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    m = np.asarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - m) / s)


def run_variant(path: Path, variant: Variant, ref: Reference, batch: int = 8) -> np.ndarray:
    """Embeddings of the reference inputs through one variant: onnxruntime CPU for ONNX graphs,
    OpenVINO for an OpenVINO IR, which onnxruntime cannot read. OpenVINO runs it with the f32 hint:
    its int8 ops still run in int8, and what the graph leaves in float stays fp32 as onnxruntime
    computes a QDQ graph, so the figures measure the quantization alone, like every other variant's."""
    from bioclip_edge.runtime.inference.session import SessionOptions, make_session

    backend = "openvino-f32" if variant.openvino_only else "onnxruntime"
    session = make_session(path, SessionOptions(optimization="all", backend=backend))
    inputs = ref.pixels if variant.tower == "vision" else ref.ids
    if variant.tower == "text" and not variant.dynamic_length:
        inputs = _pad_ids(ref.ids, int(session.get_inputs()[0].shape[1]))
    outs = [session.run(None, {variant.input_name: inputs[i:i + batch]})[0] for i in range(0, len(inputs), batch)]
    return np.concatenate(outs).astype(np.float32)


def _pad_ids(ids: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((ids.shape[0], length), dtype=ids.dtype)
    out[:, : ids.shape[1]] = ids
    return out


def clear_top1(reference: np.ndarray, variant: np.ndarray, bound: float | None = None) -> Top1Check:
    """Top-1 agreement of ``variant`` with ``reference`` (both [images, labels] cosine scores, the
    reference being PyTorch fp32), counted on the images with a clear margin (module docstring)."""
    reference, variant = np.asarray(reference, np.float64), np.asarray(variant, np.float64)
    images, labels = reference.shape
    finite = np.isfinite(variant).all(axis=1)  # a NaN or inf score is a clear miss, whatever E is
    error = score_error(reference[finite], variant[finite])
    want, got = reference.argmax(axis=1), np.where(finite, np.nan_to_num(variant).argmax(axis=1), -1)
    rows = np.arange(images)
    if labels > 1:
        ranked = np.sort(reference, axis=1)
        leads = ranked[:, -1] - ranked[:, -2] > CLEAR_FACTOR * error
    else:
        leads = np.zeros(images, dtype=bool)  # one label: nothing to rank
    missed = ~finite | (reference[rows, want] - reference[rows, np.maximum(got, 0)] > CLEAR_FACTOR * error)
    judged = leads | missed
    agree = judged & (want == got)
    return Top1Check(agree=int(agree.sum()), clear=int(judged.sum()), unclear=int((~judged).sum()), images=int(images),
                     score_error=error, min_clear=MIN_CLEAR, bound=bound)


def score_error(reference: np.ndarray, variant: np.ndarray) -> float:
    """E: the 95th percentile of |variant - reference| over every score, each image's median
    difference removed (it moves all labels alike), and at least SCORE_ERROR_FLOOR."""
    diff = variant - reference
    if not diff.size:
        return SCORE_ERROR_FLOOR
    spread = np.abs(diff - np.median(diff, axis=1, keepdims=True))
    return max(SCORE_ERROR_FLOOR, float(np.quantile(spread, SCORE_ERROR_QUANTILE)))


def zero_shot_scores(variant: Variant, got: np.ndarray, ref: Reference) -> tuple[np.ndarray, np.ndarray]:
    """(PyTorch fp32's, the variant's) cosine scores of every reference image against every label:
    a vision variant embeds the images, a text variant the labels."""
    want = ref.image_embeddings @ ref.text_embeddings.T
    got = _unit(got)
    return want, (got @ ref.text_embeddings.T if variant.tower == "vision" else ref.image_embeddings @ got.T)


def measure(variant: Variant, got: np.ndarray, ref: Reference) -> Parity:
    """Compare one variant's embeddings with PyTorch's and hold them to the precision's bound."""
    want = ref.image_embeddings if variant.tower == "vision" else ref.text_embeddings
    cos = (_unit(got) * _unit(want)).sum(axis=1)
    bound = BOUNDS[variant.precision]
    scores_fp32, scores = zero_shot_scores(variant, got, ref)
    top1 = clear_top1(scores_fp32, scores, bound.top1)
    figure = float(cos.min() if bound.metric == "cosine_min" else cos.mean())
    return Parity(
        cosine_min=float(cos.min()),
        cosine_mean=float(cos.mean()),
        n_inputs=int(len(cos)),
        bound=bound.value,
        metric=bound.metric,
        passed=bool(figure >= bound.value and top1.passed),
        top1_agreement=float((scores.argmax(axis=1) == scores_fp32.argmax(axis=1)).mean()),
        n_labels=int(len(ref.labels)),
        max_abs_diff=float(np.abs(got - want).max()),
        top1=top1,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)

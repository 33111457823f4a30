"""Top-k label scoring on OpenVINO: the matrix product, TopK and softmax sums in one compiled graph.

Why: numpy has no fast fp16 product, so ``scoring.topk`` converts every fp16 block to fp32 first,
and that conversion, not the product, dominates (about 3 s per image for BioCLIP 2's 867k x 768
TreeOfLife matrix). OpenVINO converts and multiplies inside its own kernels (AVX-512, AMX), so a
block of stored rows goes in as it is on disk and only [k, batch] candidates and two [batch]
softmax sums come out.

The product graph (compiled once per row dtype and precision, cached; the TopK and softmax sums
run in a second, f32 graph) takes one block of rows as an input,
not as a constant: constant weights would be repacked at compile time into a private copy (we
measured 1.8 GB peak for 200 MB of fp16 rows), while a block input is read in place from the
memory-mapped file. Peak memory is one converted block, whatever N is.

Exactness: the engine's precision (``f32``, or ``f16`` / ``bf16`` on CPUs that compute them) only
ranks candidates. Each image keeps ``k + margin`` candidates, which are then rescored in fp32 from
the stored rows exactly as the numpy path scores them; the softmax normaliser has those
candidates' approximate terms replaced by their exact ones. So the top-k equals the fp32 result
unless a true top-k label ranks below ``k + margin`` in the engine's precision, and probabilities
differ only through the tail labels' rounding (measured in the tests and the benchmark).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .backends import openvino_capabilities

log = logging.getLogger(__name__)

ENGINES = ("auto", "numpy", "openvino", "openvino-f32")
ENGINE_ENV = "BIOCLIP_EDGE_SCORING_ENGINE"  # overrides "auto" (e.g. numpy, to compare or to debug)
# How many extra candidates per image each engine precision keeps for the exact rescoring. The
# margin must cover labels whose logits the engine rounds past the k-th best: fp32 rounding is
# ~1e-5 logit, fp16 ~0.02, bf16 ~0.1 (logit scale 100), and near-duplicate taxa sit closer.
MARGINS = {"f32": 4, "f16": 16, "bf16": 32}
# Below this many stored elements (rows x dim) numpy is as fast and needs no graph compile.
SMALL_MATRIX_ELEMENTS = 2_000_000
DEFAULT_BLOCK_BYTES = 16 << 20  # one fp32-converted block inside the engine (fits the caches better than 32 MB)


class ScoringEngineError(UserError):
    """A scoring engine that was asked for but cannot run here."""


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # numpy | openvino
    precision: str  # f32 | f16 | bf16: the precision that ranks candidates
    reason: str  # said in summaries and benchmarks: why this one

    @property
    def label(self) -> str:
        return "numpy fp32 blocks" if self.engine == "numpy" else f"OpenVINO {self.precision} + exact fp32 rescoring"


def fast_precision(caps: tuple[str, ...]) -> str:
    """The fastest ranking precision the CPU computes: f16 (AVX512-FP16/AMX-FP16), bf16, else f32."""
    if "FP16" in caps:
        return "f16"
    if "BF16" in caps:
        return "bf16"
    return "f32"


def choose_engine(requested: str = "auto", n: int | None = None, dim: int | None = None) -> EngineChoice:
    """Resolve ``auto``: OpenVINO in its fastest precision for large matrices when installed, else numpy."""
    if requested == "auto":
        requested = os.environ.get(ENGINE_ENV, "auto") or "auto"
    if requested not in ENGINES:
        raise ScoringEngineError(f"scoring engine {requested!r}: choose one of {', '.join(ENGINES)}")
    if requested == "numpy":
        return EngineChoice("numpy", "f32", "numpy as requested")
    caps = openvino_capabilities()
    if requested.startswith("openvino"):
        if not caps:
            raise ScoringEngineError(f"scoring engine {requested}: OpenVINO is not installed; "
                                     "pip install \"bioclip-edge[openvino]\" or use the numpy engine")
        precision = "f32" if requested == "openvino-f32" else fast_precision(caps)
        return EngineChoice("openvino", precision, f"{requested} as requested")
    if not caps:
        return EngineChoice("numpy", "f32", "auto: OpenVINO is not installed")
    if n is not None and dim is not None and n * dim < SMALL_MATRIX_ELEMENTS:
        return EngineChoice("numpy", "f32", "auto: small matrix, numpy is as fast")
    precision = fast_precision(caps)
    return EngineChoice("openvino", precision, f"auto: OpenVINO is installed; this CPU ranks in {precision}")


_OV_ROW_TYPES = {np.dtype(np.float16): "f16", np.dtype(np.float32): "f32", np.dtype(np.int8): "i8"}
_compile_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _compiled_product(row_type: str, precision: str):
    """rows [R, D], queries [B, D] -> rows . queries [R, B], in ``precision``.

    The big operand goes first and untransposed, as in the numpy path: only the small query
    matrix is packed per call. Queries are not pre-scaled, so int8 rows (|x| <= 127) stay far
    from fp16's range limit.
    """
    import openvino as ov
    import openvino.opset13 as ops

    rows = ops.parameter([-1, -1], getattr(ov.Type, row_type), name="rows")
    queries = ops.parameter([-1, -1], ov.Type.f32, name="queries")
    product = ops.matmul(ops.convert(rows, ov.Type.f32), queries, False, True)
    model = ov.Model([product.output(0)], [rows, queries], "label_product")
    return ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})


@functools.lru_cache(maxsize=1)
def _compiled_reduce():
    """products [R, B], factor [R] (or [1]), k -> top-k logits/indices [k, B], max [1, B], sum-exp [B], in f32.

    A separate f32 graph: inside an f16 graph OpenVINO rounds the softmax sum to f16 (2e-4
    relative), and adding 867k small terms to a large one in f16 loses them all.
    """
    import openvino as ov
    import openvino.opset13 as ops
    from openvino import opset11

    products = ops.parameter([-1, -1], ov.Type.f32, name="products")
    factor = ops.parameter([-1], ov.Type.f32, name="factor")  # logit scale (x int8 row scales)
    k = ops.parameter([], ov.Type.i64, name="k")
    logits = ops.multiply(products, ops.unsqueeze(factor, ops.constant(np.int64(1))))
    top = opset11.topk(logits, k, 0, "max", "value", ov.Type.i64, stable=True)
    peak = ops.reduce_max(logits, ops.constant(np.int64(0)), True)
    sums = ops.reduce_sum(ops.exp(ops.subtract(logits, peak)), ops.constant(np.int64(0)), False)
    model = ov.Model([top.output(0), top.output(1), peak.output(0), sums.output(0)], [products, factor, k], "label_topk")
    return ov.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})


def _in_place_rows(matrix: np.ndarray) -> np.ndarray:
    """The matrix as OpenVINO can read it without a copy: a read-only memmap is re-mapped copy-on-write.

    OpenVINO copies non-writeable inputs; a copy-on-write mapping of the same file pages is
    writeable (nothing ever writes to it) and costs no memory.
    """
    if isinstance(matrix, np.memmap) and not matrix.flags.writeable and matrix.filename:
        try:
            return np.memmap(matrix.filename, dtype=matrix.dtype, mode="c", offset=matrix.offset, shape=matrix.shape)
        except (OSError, ValueError) as exc:
            log.debug("could not re-map %s copy-on-write (%s); blocks will be copied", matrix.filename, exc)
    return matrix


def block_rows_for(dim: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    return max(1024, block_bytes // (4 * max(1, dim)))


def openvino_topk(matrix, scales, emb: np.ndarray, k: int, spec, precision: str = "f32",
                  block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k rows per image: (indices [B, k] int64, probabilities [B, k], logits [B, k]), like ``scoring.topk``."""
    emb = np.ascontiguousarray(np.atleast_2d(np.asarray(emb, dtype=np.float32)))
    n, dim = matrix.shape
    k = max(1, min(int(k), n))
    keep = min(n, k + MARGINS[precision])
    row_type = _OV_ROW_TYPES.get(np.dtype(matrix.dtype))
    if row_type is None:
        raise ScoringEngineError(f"the OpenVINO scoring engine cannot read {matrix.dtype} label rows; use the numpy engine")
    with _compile_lock:
        product_req = _compiled_product(row_type, precision).create_infer_request()
        reduce_req = _compiled_reduce().create_infer_request()
    rows = _in_place_rows(matrix)
    block_rows = block_rows or block_rows_for(dim)
    scale = np.array([spec.logit_scale], dtype=np.float32)
    cand_val, cand_idx, peaks, sums = [], [], [], []
    for start in range(0, n, block_rows):
        block = rows[start : start + block_rows]
        products = product_req.infer([block, emb], share_inputs=True)[0]
        factor = scale if scales is None else np.asarray(scales[start : start + block_rows], dtype=np.float32) * scale
        out = reduce_req.infer([products, factor, np.array(min(keep, block.shape[0]), dtype=np.int64)], share_inputs=True)
        cand_val.append(np.array(out[0], dtype=np.float32).T)
        cand_idx.append(np.array(out[1], dtype=np.int64).T + start)
        peaks.append(np.array(out[2], dtype=np.float64)[0])
        sums.append(np.array(out[3], dtype=np.float64))
    approx, index = _best(np.concatenate(cand_val, axis=1), np.concatenate(cand_idx, axis=1), keep)
    peak = np.max(peaks, axis=0)  # [B]
    total = np.sum(np.asarray(sums) * np.exp(np.asarray(peaks) - peak), axis=0)
    exact = _exact_logits(matrix, scales, emb, index, spec.logit_scale)
    # Swap the candidates' engine-precision terms in the softmax sum for their exact ones.
    tail = total - np.exp(approx.astype(np.float64) - peak[:, None]).sum(axis=1)
    total = np.maximum(tail, 0.0) + np.exp(exact.astype(np.float64) - peak[:, None]).sum(axis=1)
    lse = peak + np.log(total)
    best_logit, best_index = _best(exact, index, k)
    probs = np.exp(best_logit.astype(np.float64) - lse[:, None]).astype(np.float32)
    if spec.logit_bias:  # a shared shift: probabilities and order do not change
        best_logit = best_logit + np.float32(spec.logit_bias)
    return best_index, probs, best_logit


def _best(values: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best per row: highest value first, ties to the lower index (as the numpy path)."""
    order = np.lexsort((index, -values), axis=-1)[:, :k]
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(index, order, axis=1)


def _exact_logits(matrix, scales, emb: np.ndarray, index: np.ndarray, logit_scale: float) -> np.ndarray:
    """fp32 logits of the candidate rows, computed as ``scoring.iter_logits`` computes them."""
    flat = np.unique(index)  # sorted: memory-mapped reads go forward
    rows = np.asarray(matrix[flat], dtype=np.float32)
    if scales is not None:
        rows = rows * np.asarray(scales[flat], dtype=np.float32)[:, None]
    pos = np.searchsorted(flat, index)  # [B, c] -> row of ``rows``
    cos = np.einsum("bcd,bd->bc", rows[pos], emb, dtype=np.float32)
    return cos * np.float32(logit_scale)

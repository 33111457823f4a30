"""Top-k label scoring on OpenVINO: the matrix product and softmax sums in one compiled graph per block.

Why: numpy has no fast fp16 product, so ``scoring.topk`` converts every fp16 block to fp32 first,
and that conversion, not the product, dominates (about 3 s per image for BioCLIP 2's 867k x 768
TreeOfLife matrix). OpenVINO converts and multiplies inside its own kernels (AVX-512, AMX), so a
block of stored rows goes in as it is on disk and only the block's logits, two [batch] softmax
sums and per-group maxima come out.

The graph takes one block of rows as an input, not as a constant: constant weights would be
repacked at compile time into a private copy (we measured 1.8 GB peak for 200 MB of fp16 rows),
while a block input is read in place from the memory-mapped file. Peak memory is one converted
block, whatever N is. It is compiled for the block's static shape (OpenVINO then fuses the
f16 -> bf16 conversion into the product: 1.5x faster than a dynamic shape), plus a dynamic graph
for the short last block.

No TopK node: ranking [rows, batch] logits along rows with OpenVINO's TopK cost as much as half
the product. Instead each image keeps a threshold, its current ``k + margin``-th best logit, and
only logits above it are collected in numpy; the graph's maxima over groups of 64 rows say
which few groups can hold any, so numpy touches a handful of values per block.

Precision: ``bf16`` and ``f32`` run product, softmax terms and sums in one graph (OpenVINO keeps
the reductions in f32 and rounds only the products to bf16). In ``f16`` OpenVINO would round the
softmax sum itself to f16 (2e-4 relative, and adding 867k small terms in f16 loses them all), so
that precision keeps a separate f32 graph for the reductions. ``fast_precision`` prefers bf16
(AMX) over f16 where the CPU has both: measured faster here, and one graph.

int8 rows (a stored int8 matrix, or the int8 ranking copy of a large fp16 one: ``labels.ranking``)
are ranked with an integer product instead (precision ``i8``: queries rounded to int8 per image,
VNNI / AMX int8 kernels), unless the f32 precision was asked for.

Exactness: the scorer's precision only ranks candidates. Each image keeps ``k + margin``
candidates, which are then rescored in fp32 from the stored rows exactly as the numpy path scores
them; the softmax normaliser has those candidates' approximate terms replaced by their exact ones.
So the top-k equals the fp32 result unless a true top-k label ranks below ``k + margin`` in the
scorer's precision, and probabilities differ only through the tail labels' rounding (measured in
the tests and the benchmark).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.backends import openvino_capabilities
from bioclip_edge.runtime.labels.blocks import GROUP, OPENVINO_BLOCK_BYTES, block_rows_for, is_small

log = logging.getLogger(__name__)

SCORERS = ("auto", "numpy", "openvino", "openvino-f32", "openvino-bf16", "openvino-f16")
SCORER_ENV = "BIOCLIP_EDGE_SCORER"  # overrides "auto" (e.g. numpy, to compare or to debug)
SCORER_ENV_ALIAS = "BIOCLIP_EDGE_SCORING_ENGINE"  # the same, read when SCORER_ENV is unset: existing setups keep working
# How many extra candidates per image each scorer precision keeps for the exact rescoring. The
# margin must cover labels whose logits the scorer rounds past the k-th best: fp32 rounding is
# ~1e-5 logit, fp16 ~0.02, bf16 ~0.1 (logit scale 100, the product rounded to bf16: 2^-9 of a
# cosine of ~0.4), and near-duplicate taxa sit closer. Candidates' softmax terms are exact too, so a
# wider margin also keeps a cluster of near-duplicates out of the rounded tail (f16 at 16 was
# 3e-3 off in probability on 25-label clusters; 32 costs ~1 ms more of exact rescoring).
# int8 (rows and queries rounded to 1/127 of their largest entry, product in integers): measured
# up to 0.2 logit off on a block of 867k x 768 synthetic fp16 rows at 64 queries: twice bf16's margin.
MARGINS = {"f32": 4, "f16": 32, "bf16": 32, "i8": 64}
_CAPABILITY = {"f16": "FP16", "bf16": "BF16"}  # OpenVINO's OPTIMIZATION_CAPABILITIES names


class ScorerError(UserError):
    """A scorer that was asked for but cannot run here."""


@dataclass(frozen=True)
class ScorerChoice:
    """The scorer a label matrix runs: chosen once per matrix (``choose_scorer``), then passed to
    every ``scoring.topk`` call as data, so batches never re-read the environment or the CPU."""

    scorer: str  # numpy | openvino
    precision: str  # f32 | f16 | bf16: the precision that ranks candidates
    reason: str  # said in summaries and benchmarks: why this one

    @property
    def label(self) -> str:
        return "numpy fp32 blocks" if self.scorer == "numpy" else f"OpenVINO {self.precision} + exact fp32 rescoring"

    def to_dict(self) -> dict[str, str]:
        return {"scorer": self.scorer, "precision": self.precision, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "ScorerChoice":
        return cls(str(data["scorer"]), str(data["precision"]), str(data.get("reason", "")))


def fast_precision(caps: tuple[str, ...]) -> str:
    """The fastest ranking precision the CPU computes: bf16 (AMX / AVX512-BF16), f16, else f32.

    bf16 before f16: on Sapphire Rapids (AVX512-FP16 but AMX only for bf16) the bf16 product was
    1.2x faster, and only bf16 keeps the softmax sums in f32 inside the same graph.
    """
    if "BF16" in caps:
        return "bf16"
    if "FP16" in caps:
        return "f16"
    return "f32"


def choose_scorer(requested: str = "auto", n: int | None = None, dim: int | None = None) -> ScorerChoice:
    """Resolve ``auto``: OpenVINO in its fastest precision for large matrices when installed, else numpy."""
    if requested == "auto":
        requested = os.environ.get(SCORER_ENV) or os.environ.get(SCORER_ENV_ALIAS) or "auto"
    if requested not in SCORERS:
        raise ScorerError(f"label scorer {requested!r}: choose one of {', '.join(SCORERS)}")
    if requested == "numpy":
        return ScorerChoice("numpy", "f32", "numpy as requested")
    caps = openvino_capabilities()
    if requested.startswith("openvino"):
        if not caps:
            raise ScorerError(f"label scorer {requested}: OpenVINO is not installed; "
                              "pip install \"bioclip-edge[openvino]\" or use the numpy scorer")
        precision = requested.partition("-")[2] or fast_precision(caps)
        if precision != "f32" and _CAPABILITY[precision] not in caps:
            raise ScorerError(f"label scorer {requested}: this CPU does not compute {precision} in OpenVINO "
                              f"(it reports {', '.join(caps)}); use openvino or openvino-f32")
        return ScorerChoice("openvino", precision, f"{requested} as requested")
    if not caps:
        return ScorerChoice("numpy", "f32", "auto: OpenVINO is not installed")
    if n is not None and dim is not None and is_small(n, dim):
        return ScorerChoice("numpy", "f32", "auto: small matrix, numpy is as fast")
    precision = fast_precision(caps)
    return ScorerChoice("openvino", precision, f"auto: OpenVINO is installed; this CPU ranks in {precision}")


_OV_ROW_TYPES = {np.dtype(np.float16): "f16", np.dtype(np.float32): "f32", np.dtype(np.int8): "i8"}
_compile_lock = threading.Lock()


def _reductions(ops, logits, rows: int, group: int):
    """logits [R, B] -> max [1, B], sum of exp(logit - max) [B], and (group > 1) group maxima [R/group, B]."""
    peak = ops.reduce_max(logits, ops.constant(np.int64(0)), True)
    sums = ops.reduce_sum(ops.exp(ops.subtract(logits, peak)), ops.constant(np.int64(0)), False)
    outs = [logits.output(0), peak.output(0), sums.output(0)]
    if group > 1:
        grouped = ops.reshape(logits, ops.constant(np.array([rows // group, group, -1], dtype=np.int64)), False)
        outs.append(ops.reduce_max(grouped, ops.constant(np.int64(1)), False).output(0))
    return outs


@functools.lru_cache(maxsize=16)
def _compiled_scores(row_type: str, precision: str, rows: int, dim: int, group: int):
    """The compiled graph(s) for one block shape: rows [R, D] (R = -1: any), queries [B, D], factor [R] or [1].

    Returns one model (rows, queries, factor -> logits [R, B] f32, max [1, B], sum-exp [B], group
    maxima) or, in f16, two: the product (rows, queries -> [R, B]) and an f32 model (products,
    factor -> the same outputs). The big operand goes first and untransposed, as in the numpy
    path: only the small query matrix is packed per call. Queries are not pre-scaled, so int8 rows
    (|x| <= 127) stay far from fp16's range limit.
    """
    import openvino as ov
    import openvino.opset13 as ops

    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    stored = ops.parameter([rows, dim], getattr(ov.Type, row_type), name="rows")
    queries = ops.parameter([-1, dim], ov.Type.f32, name="queries")
    factor = ops.parameter([-1], ov.Type.f32, name="factor")  # logit scale (x int8 row scales)
    product = ops.matmul(ops.convert(stored, ov.Type.f32), queries, False, True)
    core = ov.Core()
    if precision == "i8":  # int8 rows x int8 queries; f32 around the integer product
        from bioclip_edge.runtime.labels.ranking import int8_scores_model

        model = int8_scores_model(rows, dim, lambda logits: _reductions(ops, logits, rows, group))
        return (core.compile_model(model, "CPU", {**config, "INFERENCE_PRECISION_HINT": "f32"}),)
    if precision != "f16":
        logits = ops.multiply(product, ops.unsqueeze(factor, ops.constant(np.int64(1))))
        model = ov.Model(_reductions(ops, logits, rows, group), [stored, queries, factor], "label_scores")
        return (core.compile_model(model, "CPU", {**config, "INFERENCE_PRECISION_HINT": precision}),)
    first = core.compile_model(ov.Model([product.output(0)], [stored, queries], "label_product"), "CPU",
                               {**config, "INFERENCE_PRECISION_HINT": "f16"})
    products = ops.parameter([rows, -1], ov.Type.f32, name="products")
    logits = ops.multiply(products, ops.unsqueeze(factor, ops.constant(np.int64(1))))
    model = ov.Model(_reductions(ops, logits, rows, group), [products, factor], "label_reductions")
    return first, core.compile_model(model, "CPU", {**config, "INFERENCE_PRECISION_HINT": "f32"})


class _BlockScorer:
    """Runs the compiled graph(s) of one block shape: block -> (logits, max, sum-exp, group maxima or None)."""

    def __init__(self, row_type: str, precision: str, rows: int, dim: int, group: int):
        with _compile_lock:
            self.requests = [m.create_infer_request() for m in _compiled_scores(row_type, precision, rows, dim, group)]
        self.group = group

    def __call__(self, block: np.ndarray, emb: np.ndarray, factor: np.ndarray, query_factor: np.ndarray | None = None):
        if len(self.requests) == 1:
            extra = [] if query_factor is None else [query_factor]
            out = self.requests[0].infer([block, emb, factor, *extra], share_inputs=True)
        else:
            products = self.requests[0].infer([block, emb], share_inputs=True)[0]
            out = self.requests[1].infer([np.asarray(products, dtype=np.float32), factor], share_inputs=True)
        return out[0], out[1][0], out[2], (out[3] if self.group > 1 else None)


class _Candidates:
    """Each image's ``keep`` best (logit, row) pairs so far, highest first, ties to the lower row.

    ``threshold`` is each image's current ``keep``-th best logit (-inf while it has fewer): a row
    enters only above it, so a later row that ties the threshold loses to the earlier one, as in
    the numpy path.
    """

    def __init__(self, batch: int, keep: int):
        self.batch, self.keep = batch, keep
        self.value = np.empty(0, dtype=np.float32)
        self.index = np.empty(0, dtype=np.int64)
        self.image = np.empty(0, dtype=np.int64)
        self.threshold = np.full(batch, -np.inf, dtype=np.float32)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_count = 0
        self.merge_at = batch * keep // 2

    def add(self, logits: np.ndarray, peak: np.ndarray, group_max: np.ndarray | None, start: int, group: int) -> None:
        hot = np.flatnonzero(peak > self.threshold)  # images this block can change at all
        if hot.size == 0:
            return
        if np.isneginf(self.threshold[hot]).any():  # still filling: each image's best rows of the block, with ties
            size = logits.shape[0]
            kth = np.partition(logits, size - self.keep, axis=0)[size - self.keep] if size > self.keep else -np.inf
            rows, images = np.nonzero(logits >= kth)
        elif group_max is not None:  # the few groups whose maximum beats the threshold, then their rows
            groups, col = np.nonzero(group_max[:, hot] > self.threshold[hot])
            rows = (groups[:, None] * group + np.arange(group)).ravel()
            images = np.repeat(hot[col], group)
        else:
            rows, col = np.nonzero(logits[:, hot] > self.threshold[hot])
            images = hot[col]
        values = logits[rows, images]
        above = values > self.threshold[images]
        if above.any():
            self._pending.append((values[above], rows[above] + start, images[above]))
            self._pending_count += int(above.sum())
        # Merging costs a sort; a stale (lower) threshold only lets a few more rows wait here.
        if self._pending_count >= self.merge_at or np.isneginf(self.threshold).any():
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        value, index, image = (np.concatenate([old, *new]) for old, new in
                               zip((self.value, self.index, self.image), zip(*self._pending)))
        self._pending, self._pending_count = [], 0
        order = np.lexsort((index, -value, image))
        image = image[order]
        rank = np.arange(image.size) - np.searchsorted(image, image)  # position within its image
        kept = rank < self.keep
        order, self.image = order[kept], image[kept]
        self.value, self.index = value[order], index[order]
        counts = np.bincount(self.image, minlength=self.batch)
        last = np.cumsum(counts) - 1
        full = counts == self.keep
        self.threshold = np.where(full, self.value[np.where(full, last, 0)], -np.inf).astype(np.float32)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(values [B, keep], rows [B, keep]): every image has seen every row, so each holds ``keep``."""
        self._merge()
        return self.value.reshape(self.batch, -1), self.index.reshape(self.batch, -1)


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


def openvino_block_rows(dim: int, itemsize: int = 2) -> int:
    """Stored rows per OpenVINO block: rows as they are on disk (``blocks``: why), whole groups."""
    return block_rows_for(dim, itemsize, OPENVINO_BLOCK_BYTES)


def openvino_topk(matrix, scales, emb: np.ndarray, k: int, spec, precision: str = "f32",
                  block_rows: int | None = None, ranking: tuple[np.ndarray, np.ndarray] | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k rows per image: (indices [B, k] int64, probabilities [B, k], logits [B, k]), like ``scoring.topk``.

    ``ranking``: (int8 rows, scales) ranked instead of the stored rows (``labels.ranking``: half the
    bytes of fp16); the candidates are rescored from the stored rows all the same.
    """
    emb = np.ascontiguousarray(np.atleast_2d(np.asarray(emb, dtype=np.float32)))
    n, dim = matrix.shape
    k = max(1, min(int(k), n))
    ranked, ranked_scales = ranking if ranking is not None else (matrix, scales)
    if precision != "f32" and np.dtype(ranked.dtype) == np.int8:
        precision = "i8"  # int8 rows: an integer product (VNNI/AMX; ``labels.ranking``)
    keep = min(n, k + MARGINS[precision])
    queries, query_factor = _queries_for(emb, precision)
    row_type = _OV_ROW_TYPES.get(np.dtype(ranked.dtype))
    if row_type is None:
        raise ScorerError(f"the OpenVINO label scorer cannot read {ranked.dtype} label rows; use the numpy scorer")
    rows = _in_place_rows(ranked)
    block_rows = min(n, block_rows or openvino_block_rows(dim, ranked.dtype.itemsize))
    group = GROUP if block_rows % GROUP == 0 else 1
    full = _BlockScorer(row_type, precision, block_rows, dim, group)
    tail = _BlockScorer(row_type, precision, -1, dim, 1) if n % block_rows else None
    scale = np.array([spec.logit_scale], dtype=np.float32)
    found = _Candidates(emb.shape[0], keep)
    peaks, sums = [], []
    for start in range(0, n, block_rows):
        block = rows[start : start + block_rows]
        scorer = full if block.shape[0] == block_rows else tail
        factor = scale if ranked_scales is None else np.asarray(ranked_scales[start : start + block_rows], dtype=np.float32) * scale
        logits, peak, sum_exp, group_max = scorer(block, queries, factor, query_factor)
        peaks.append(np.array(peak, dtype=np.float64))
        sums.append(np.array(sum_exp, dtype=np.float64))
        found.add(logits, peak, group_max, start, scorer.group)
    approx, index = found.result()
    peak = np.max(peaks, axis=0)  # [B]
    total = np.sum(np.asarray(sums) * np.exp(np.asarray(peaks) - peak), axis=0)
    exact = _exact_logits(matrix, scales, emb, index, spec.logit_scale)
    # Swap the candidates' scorer-precision terms in the softmax sum for their exact ones.
    tail_sum = total - np.exp(approx.astype(np.float64) - peak[:, None]).sum(axis=1)
    total = np.maximum(tail_sum, 0.0) + np.exp(exact.astype(np.float64) - peak[:, None]).sum(axis=1)
    lse = peak + np.log(total)
    best_logit, best_index = _best(exact, index, k)
    probs = np.exp(best_logit.astype(np.float64) - lse[:, None]).astype(np.float32)
    if spec.logit_bias:  # a shared shift: probabilities and order do not change
        best_logit = best_logit + np.float32(spec.logit_bias)
    return best_index, probs, best_logit


def _queries_for(emb: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The queries as the graph takes them: as they are, or (i8) int8 with a scale per image."""
    if precision != "i8":
        return emb, None
    from bioclip_edge.runtime.labels.ranking import quantize

    return quantize(emb)


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

"""Score image embeddings against a label matrix in row blocks, with bounded memory for any N.

Each block of label rows is converted to float32 (numpy has no fast fp16 or int8 matrix product:
fp16 @ fp32 is ~30x slower than fp32 @ fp32), multiplied once, and folded into three running
results per image: the top-k logits and their rows, and the log-sum-exp over every label seen
so far. Softmax probabilities are therefore exact over all N labels even though no [B, N]
array ever exists, and peak memory is one block, whatever N is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from bioclip_edge.runtime.labels.blocks import NUMPY_BLOCK_BYTES, block_rows_for, is_small

if TYPE_CHECKING:
    from bioclip_edge.runtime.labels.openvino_scoring import ScorerChoice

# Image vectors a classification job gathers per ``topk`` call on a large matrix (``scoring_window``).
JOB_WINDOW = 64


@dataclass(frozen=True)
class ScoreSpec:
    """How logits are made from cosines: logits = scale * cos + bias (open_clip's convention)."""

    logit_scale: float
    logit_bias: float | None = None


def scoring_window(n: int, dim: int) -> int:
    """How many image vectors a job gathers before one ``topk`` call: ``JOB_WINDOW``, or 1 for small matrices.

    Why: every ``topk`` call makes one pass over the whole matrix (an 867k x 768 fp16 matrix is
    1.33 GB, more than any cache), and that pass costs about the same for one vector as for many:
    on a 2-core EPYC one vector per call cost 333 ms, more than the int8 ViT-L/14 tower's 317 ms
    per image, while 64 per call cost 8.9 ms each (16: 19.4, 128: 7.6; ``bench_labels.py`` part 3).
    64 vectors are a few seconds of stills at tower speed, or a few videos' frames or images'
    boxes; a larger window gains little per image while records wait longer before they are
    written and checkpointed. A small matrix (``blocks.SMALL_MATRIX_ELEMENTS``, a few thousand
    labels) is scored in about a millisecond per call, so there each record is scored and yielded
    as soon as it is embedded.
    """
    return 1 if is_small(n, dim) else JOB_WINDOW


def numpy_block_rows(dim: int) -> int:
    """Label rows per numpy block: float32 rows, whatever the stored type (``blocks``: why)."""
    return block_rows_for(dim, 4, NUMPY_BLOCK_BYTES)


def iter_blocks(matrix: np.ndarray, scales: np.ndarray | None, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, float32 rows) for consecutive row blocks; int8 rows are multiplied by their scales."""
    n = matrix.shape[0]
    for start in range(0, n, block_rows):
        block = np.asarray(matrix[start : start + block_rows], dtype=np.float32)
        if scales is not None:
            block = block * np.asarray(scales[start : start + block_rows], dtype=np.float32)[:, None]
        yield start, block


def iter_logits(matrix, scales, emb: np.ndarray, spec: ScoreSpec, block_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, logits [B, rows]) for each row block."""
    emb_t = np.ascontiguousarray(np.asarray(emb, dtype=np.float32).T)
    for start, block in iter_blocks(matrix, scales, block_rows):
        logits = block @ emb_t  # [rows, B]: the big operand stays row-major
        logits = logits.T * np.float32(spec.logit_scale)
        if spec.logit_bias:
            logits += np.float32(spec.logit_bias)
        yield start, logits


class _RunningLSE:
    """Log-sum-exp over blocks, per image, in float64 so 867k terms lose nothing."""

    def __init__(self, batch: int):
        self.max = np.full(batch, -np.inf)
        self.sum = np.zeros(batch)

    def add(self, logits: np.ndarray) -> None:
        new_max = np.maximum(self.max, logits.max(axis=1).astype(np.float64))
        shifted = np.exp(logits - new_max.astype(np.float32)[:, None])  # float32 exp: 4x faster, 1e-7 relative
        self.sum = self.sum * np.exp(self.max - new_max) + shifted.sum(axis=1, dtype=np.float64)
        self.max = new_max

    @property
    def value(self) -> np.ndarray:
        return self.max + np.log(self.sum)


def topk(matrix, scales, emb: np.ndarray, k: int, spec: ScoreSpec, block_rows: int | None = None,
         scorer: "str | ScorerChoice" = "auto", ranking: tuple[np.ndarray, np.ndarray] | None = None,
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k rows per image: (indices [B, k] int64, probabilities [B, k], logits [B, k]).

    ``scorer``: a ``ScorerChoice`` made once by the caller (``LabelMatrix.scorer``: the same
    choice for every batch of a run), or a name that ``openvino_scoring.choose_scorer`` resolves
    here: ``auto`` runs large matrices on OpenVINO when it is installed (~10x faster on fp16
    matrices, same top-k) and everything else in numpy. ``block_rows`` is in the chosen
    scorer's rows. ``ranking``: an int8 copy of the rows for the OpenVINO scorer to rank on
    (``labels.ranking.ranking_for``); numpy ignores it.
    """
    from bioclip_edge.runtime.labels.openvino_scoring import ScorerChoice, choose_scorer, openvino_topk

    emb = np.atleast_2d(np.asarray(emb, dtype=np.float32))
    if emb.shape[1] != matrix.shape[1]:
        raise ValueError(f"image embeddings have dim {emb.shape[1]} but the label matrix has dim {matrix.shape[1]}")
    choice = scorer if isinstance(scorer, ScorerChoice) else choose_scorer(scorer, matrix.shape[0], matrix.shape[1])
    if choice.scorer == "openvino":
        return openvino_topk(matrix, scales, emb, k, spec, choice.precision, block_rows, ranking)
    return numpy_topk(matrix, scales, emb, k, spec, block_rows)


def numpy_topk(matrix, scales, emb: np.ndarray, k: int, spec: ScoreSpec, block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The portable scorer: fp32 blocks in numpy.

    Ties are broken by the lower row index, so results do not depend on the block size. Once
    k candidates are known, a block only contributes logits above each image's current k-th
    best, which after the first blocks is a handful: no per-block partial sort.
    """
    emb = np.atleast_2d(np.asarray(emb, dtype=np.float32))
    n, dim = matrix.shape
    if emb.shape[1] != dim:
        raise ValueError(f"image embeddings have dim {emb.shape[1]} but the label matrix has dim {dim}")
    k = max(1, min(int(k), n))
    batch = emb.shape[0]
    block_rows = block_rows or numpy_block_rows(dim)
    best_logit = np.full((batch, 0), -np.inf, dtype=np.float32)
    best_index = np.zeros((batch, 0), dtype=np.int64)
    lse = _RunningLSE(batch)
    for start, logits in iter_logits(matrix, scales, emb, spec, block_rows):
        lse.add(logits)
        if best_logit.shape[1] < k:  # still filling: take each row's best of this block
            kk = min(k, logits.shape[1])
            part = np.argpartition(-logits, kk - 1, axis=1)[:, :kk] if kk < logits.shape[1] else \
                np.broadcast_to(np.arange(logits.shape[1]), (batch, logits.shape[1]))
            cand_logit = np.concatenate([best_logit, np.take_along_axis(logits, part, axis=1)], axis=1)
            best_index, best_logit = _select(np.concatenate([best_index, part + start], axis=1), cand_logit, k)
            continue
        rows, cols = np.nonzero(logits > best_logit[:, -1:])  # ties lose: their rows come later
        if rows.size == 0:
            continue
        bounds = np.flatnonzero(np.diff(rows)) + 1
        for r_rows, r_cols in zip(np.split(rows, bounds), np.split(cols, bounds)):
            r = r_rows[0]
            idx = np.concatenate([best_index[r], r_cols + start])
            val = np.concatenate([best_logit[r], logits[r, r_cols]])
            order = np.lexsort((idx, -val))[:k]
            best_index[r], best_logit[r] = idx[order], val[order]
    probs = np.exp(best_logit.astype(np.float64) - lse.value[:, None]).astype(np.float32)
    return best_index, probs, best_logit


def _select(index: np.ndarray, logit: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (highest logit, then lowest index) of each row, in that order."""
    out_i = np.empty((index.shape[0], min(k, index.shape[1])), dtype=np.int64)
    out_l = np.empty(out_i.shape, dtype=np.float32)
    for row in range(index.shape[0]):
        order = np.lexsort((index[row], -logit[row]))[: out_i.shape[1]]
        out_i[row], out_l[row] = index[row, order], logit[row, order]
    return out_i, out_l


def group_probs(matrix, scales, emb: np.ndarray, spec: ScoreSpec, group_ids: np.ndarray, n_groups: int,
                block_rows: int | None = None) -> np.ndarray:
    """Softmax over all rows, summed per group: [B, n_groups] float64 (rows sum to 1).

    One pass: group sums of exp(logit - running max) are rescaled whenever the max rises.
    """
    emb = np.atleast_2d(np.asarray(emb, dtype=np.float32))
    batch = emb.shape[0]
    sums = np.zeros((batch, n_groups))
    run_max = np.full(batch, -np.inf)
    block_rows = block_rows or numpy_block_rows(matrix.shape[1])
    for start, logits in iter_logits(matrix, scales, emb, spec, block_rows):
        gids = group_ids[start : start + logits.shape[1]]
        uniq, inv = np.unique(gids, return_inverse=True)
        new_max = np.maximum(run_max, logits.max(axis=1))
        sums *= np.exp(run_max - new_max)[:, None]
        weights = np.exp(logits - new_max.astype(np.float32)[:, None])
        for row in range(batch):
            sums[row, uniq] += np.bincount(inv, weights=weights[row], minlength=len(uniq))
        run_max = new_max
    return sums / sums.sum(axis=1, keepdims=True)


def scorer_summary(n: int, dim: int, scorer: "str | ScorerChoice" = "auto") -> str:
    """Which scorer ``topk`` runs for an [n, dim] matrix, and why (said by ``labels info``)."""
    from bioclip_edge.runtime.labels.openvino_scoring import ScorerChoice, choose_scorer

    choice = scorer if isinstance(scorer, ScorerChoice) else choose_scorer(scorer, n, dim)
    return f"{choice.label} ({choice.reason})"

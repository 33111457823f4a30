"""Ranking on int8 rows: an int8 copy of a large label matrix, and the integer product the OpenVINO scorer runs on it.

Why: at a job's window of 64 vectors per pass (``jobs.scoring_window``) an 867k x 768 pass is
bound by the product, which OpenVINO runs in bf16 (AVX-512 BF16 or AMX) on fp16 rows. With int8
rows and int8 queries it runs an integer product instead (VNNI / AMX int8; ``int8_scores_model``),
and the pass reads half the bytes of fp16. On a 2-core EPYC (AVX-512 BF16 and VNNI, no AMX) the
integer product alone ran 3.4x the bf16 one and a whole pass at 64 vectors 1.27x faster (16: 1.36x;
``benchmarks/bench_labels.py`` part 3). Stored int8 matrices are ranked this way on their own rows.

Exactness: int8 only ranks. The scorer keeps ``k + MARGINS["i8"]`` (64) candidates per image and
rescores them in fp32 from the stored rows (``openvino_scoring._exact_logits``), so the top-k stays
fp32's unless a true top-k label falls below 69th in the int8 ranking. Rows and queries are rounded
to half a step of 1/127 of their largest entry (about 3e-4 cosine each), measured at most 0.2 logit
(scale 100) off on a block of 867k x 768 synthetic rows: twice bf16's margin covers that. The
softmax normaliser keeps the int8 terms of the labels past the candidates, so probabilities move a
little more than with bf16 (top-1 within 1.2e-4 relative on the synthetic 867k matrix; up to ~1% in
a flat worst case of 100-label near-duplicate clusters, see the tests). The ``f32`` scorer
precision (asked for as exact) never ranks int8.

Where: the copy is built once per matrix file into the user cache under the file's identity
(``cache.file_stamp``: path, size, mtime, inode; a changed file gets a new copy and the old one is
removed), in row blocks so memory stays one block, written under a temporary name and renamed, then
memory-mapped like the matrix (page cache, not process memory; 666 MB for 867k x 768, made in
about 8 s). Matrices not opened from a file, those under ``MIN_STORED_BYTES`` (a pass is short
anyway) and runs without a writable cache (``BIOCLIP_EDGE_CACHE_DIR=off``) rank their stored rows
in the scorer's float precision.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from bioclip_edge.runtime.inference.cache import file_stamp

log = logging.getLogger(__name__)

RANKING_VERSION = 1  # bump when the copy's content changes: older copies are then never read
MIN_STORED_BYTES = 256 << 20
BLOCK_ROWS = 65536
KIND = "label-ranking"

Ranking = tuple[np.ndarray, np.ndarray]  # int8 rows [N, D], float32 scales [N]


def ranks_int8(choice, matrix: np.ndarray, scales: np.ndarray | None, path: str | os.PathLike | None) -> bool:
    """Whether ``choice`` (a ``ScorerChoice``) ranks int8 rows: stored ones, or a copy (made or not yet)."""
    if choice.scorer != "openvino" or choice.precision == "f32":
        return False
    return matrix.dtype == np.int8 or _wants_copy(matrix, scales, path)


def _wants_copy(matrix: np.ndarray, scales: np.ndarray | None, path: str | os.PathLike | None) -> bool:
    return path is not None and scales is None and matrix.dtype != np.int8 and matrix.nbytes >= MIN_STORED_BYTES \
        and _files(Path(path)) is not None


def ranking_for(choice, matrix: np.ndarray, scales: np.ndarray | None, path: str | os.PathLike | None) -> Ranking | None:
    """The int8 copy ``choice`` (a ``ScorerChoice``) ranks on, made on first use, or None: rank the
    stored rows (int8 ones are ranked in int8 as they are)."""
    if choice.scorer != "openvino" or choice.precision == "f32" or not _wants_copy(matrix, scales, path):
        return None
    files = _files(Path(path))  # type: ignore[arg-type]
    if files is None:
        return None
    rows_file, scales_file, _ = files
    if not rows_file.is_file():
        try:
            _build(matrix, Path(path), files)
        except OSError as exc:
            log.warning("could not write an int8 ranking copy of %s (%s); ranking its stored rows", path, exc)
            return None
    return _open(rows_file, scales_file, matrix.shape)


def quantize(block: np.ndarray) -> Ranking:
    """Rows -> (int8 rows, float32 scales): each row scaled so its largest magnitude is 127."""
    rows = np.asarray(block, dtype=np.float32)
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    return np.rint(rows / scale[:, None]).astype(np.int8), scale


def int8_scores_model(rows: int, dim: int, reductions):
    """The OpenVINO model for one block of int8 rows: (rows i8 [R, D], queries i8 [B, D], factor [R] or
    [1], query factor [B]) -> ``reductions(logits)``, logits = rows . queries x factor x query factor.

    FakeQuantize nodes that keep every int8 value as it is mark both operands as int8, so OpenVINO's
    low-precision pass runs the product in integers (VNNI / AMX int8): measured 3.4x the bf16
    product on a 2-core AVX-512 BF16 + VNNI EPYC at 64 queries.
    """
    import openvino as ov
    import openvino.opset13 as ops

    def as_int8(node):
        low, high = ops.constant(np.float32(-128)), ops.constant(np.float32(127))
        return ops.fake_quantize(ops.convert(node, ov.Type.f32), low, high, low, high, 256)

    stored = ops.parameter([rows, dim], ov.Type.i8, name="rows")
    queries = ops.parameter([-1, dim], ov.Type.i8, name="queries")
    factor = ops.parameter([-1], ov.Type.f32, name="factor")
    query_factor = ops.parameter([-1], ov.Type.f32, name="query_factor")
    product = ops.matmul(as_int8(stored), as_int8(queries), False, True)
    logits = ops.multiply(ops.multiply(product, ops.unsqueeze(factor, ops.constant(np.int64(1)))),
                          ops.unsqueeze(query_factor, ops.constant(np.int64(0))))
    return ov.Model(reductions(logits), [stored, queries, factor, query_factor], "label_scores_i8")


def forget(path: str | os.PathLike) -> None:
    """Remove the cached copy of ``path`` as it is now (a benchmark's throw-away matrix)."""
    files = _files(Path(path))
    for f in files or ():
        f.unlink(missing_ok=True)


def _files(path: Path) -> tuple[Path, Path, Path] | None:
    """(rows .npy, scales .npy, source note) for this file as it is now; None without a cache."""
    stamp = file_stamp(KIND, path, f"int8|{RANKING_VERSION}")
    if stamp is None:
        return None
    return tuple(stamp.with_name(stamp.name + s) for s in (".rows.npy", ".scales.npy", ".source"))  # type: ignore[return-value]


def _build(matrix: np.ndarray, path: Path, files: tuple[Path, Path, Path]) -> None:
    """Quantize block by block into temporary files; the rows file is renamed last (it marks the copy done)."""
    rows_file, scales_file, source = files
    # WARNING level so a command-line run shows it: a first use pauses a few seconds (8 s for TreeOfLife's
    # 867k rows) and writes half the matrix's size into the user cache, which a user should not find unexplained.
    log.warning("first use of %s: writing an int8 ranking copy (%.0f MB, once per matrix file) to %s; "
                "later runs reuse it (BIOCLIP_EDGE_CACHE_DIR=off ranks the stored rows instead)",
                path, matrix.shape[0] * (matrix.shape[1] + 4) / 1e6, rows_file.parent)
    _drop_stale(path, source)
    tmp_rows = rows_file.with_name(f"{rows_file.name}.{os.getpid()}.tmp")
    tmp_scales = scales_file.with_name(f"{scales_file.name}.{os.getpid()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp_rows, mode="w+", dtype=np.int8, shape=matrix.shape)
        all_scales = np.empty(matrix.shape[0], dtype=np.float32)
        for start in range(0, matrix.shape[0], BLOCK_ROWS):
            out[start : start + BLOCK_ROWS], all_scales[start : start + BLOCK_ROWS] = quantize(matrix[start : start + BLOCK_ROWS])
        out.flush()
        del out
        with open(tmp_scales, "wb") as f:
            np.save(f, all_scales)
        source.write_text(str(path.resolve()), encoding="utf-8")
        os.replace(tmp_scales, scales_file)
        os.replace(tmp_rows, rows_file)
    finally:
        tmp_rows.unlink(missing_ok=True)
        tmp_scales.unlink(missing_ok=True)


def _drop_stale(path: Path, current: Path) -> None:
    """Copies of earlier versions of the same file (it was rewritten): never read again, so removed
    (not ``current``'s: another process may be writing the same copy)."""
    target = str(path.resolve())
    for note in current.parent.glob("*.source"):
        try:
            if note == current or note.read_text(encoding="utf-8") != target:
                continue
            for suffix in (".rows.npy", ".scales.npy", ".source"):
                note.with_name(note.name.removesuffix(".source") + suffix).unlink(missing_ok=True)
        except OSError as exc:
            log.debug("could not remove the stale ranking copy %s (%s)", note, exc)


def _open(rows_file: Path, scales_file: Path, shape: tuple[int, ...]) -> Ranking | None:
    try:
        rows = np.load(rows_file, mmap_mode="r")
        scales = np.load(scales_file)
    except (OSError, ValueError) as exc:
        log.warning("unreadable int8 ranking copy %s (%s); ranking the stored rows", rows_file, exc)
        return None
    if rows.shape != tuple(shape) or scales.shape != (shape[0],) or rows.dtype != np.int8:
        return None
    return rows, scales

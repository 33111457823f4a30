"""How a label matrix is cut into row blocks for scoring, and which matrices count as small.

Both scorers (``scoring.numpy_topk`` and ``openvino_scoring.openvino_topk``) walk the matrix in
blocks so that memory stays one block whatever N is; ``block_rows_for`` sizes those blocks for
both. The byte budgets differ because the scorers hold different things per block: numpy converts
each block to float32 before its product, while OpenVINO reads the stored rows (fp16, int8) as
they are and was tuned on them.
"""

from __future__ import annotations

# numpy: 32 MiB of float32 rows (10,880 rows of 768), the one converted block numpy holds at a time.
NUMPY_BLOCK_BYTES = 32 << 20
# OpenVINO: 12 MiB of stored rows (8192 fp16 rows of 768). Measured on a 2-core AMX Xeon: 4096 rows
# pay more per-call overhead, 16384 and more fall out of the caches; the curve is flat around 8192.
OPENVINO_BLOCK_BYTES = 12 << 20
GROUP = 64  # rows per group maximum (OpenVINO): numpy looks inside a group only when its maximum beats a threshold
MIN_BLOCK_ROWS = 1024  # a floor for very wide rows: per-block overhead would dominate smaller blocks

# Below this many stored elements (rows x dim, a few thousand labels) one pass over the matrix takes
# about a millisecond: OpenVINO's graph compile does not pay back, and a job gains nothing by
# gathering image vectors before each pass.
SMALL_MATRIX_ELEMENTS = 2_000_000


def is_small(n: int, dim: int) -> bool:
    """Whether an [n, dim] matrix is small (``SMALL_MATRIX_ELEMENTS``: what follows from that)."""
    return n * dim < SMALL_MATRIX_ELEMENTS


def block_rows_for(dim: int, itemsize: int, block_bytes: int) -> int:
    """Rows of ``dim`` values of ``itemsize`` bytes that fit ``block_bytes``: a multiple of
    ``GROUP``, at least ``MIN_BLOCK_ROWS``. Scores do not depend on the block size (ties go to
    the lower row in both scorers), only speed and memory do."""
    rows = block_bytes // (max(1, itemsize) * max(1, dim))
    return max(MIN_BLOCK_ROWS, rows // GROUP * GROUP)

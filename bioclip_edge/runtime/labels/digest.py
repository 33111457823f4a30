"""A sha256 of a label set's *embeddings*, for the run fingerprint (``run_fingerprint``).

Label names alone do not decide a run's answers: "lion,leopard" embedded with ``--recipe photo``
scores differently from the same names under ``plain``, and a rebuilt matrix may hold other
vectors under the same names. The digest covers the stored matrix (dtype, shape, bytes), its
int8 row scales, the logit scale and bias, and the names.

Hashing an 867k x 768 fp16 matrix reads 1.3 GB (about a second), so for a matrix opened from a
file the digest is kept in the user cache under the file's identity (path, size, mtime, inode),
as ``runtime.inference.cache`` does for bundle checksums: a second run over the same file costs nothing.
Text labels' matrices are small and hashed in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bioclip_edge.runtime.inference.cache import file_stamp

log = logging.getLogger(__name__)

DIGEST_VERSION = 1  # bump when the hashed content changes: cached digests are then ignored
BLOCK_ROWS = 65536


def label_matrix_sha256(labels: Any, names: Sequence[str] | None = None) -> str:
    """sha256 (hex) of ``labels`` (a LabelMatrix); ``names`` saves decoding them again."""
    names = list(labels.names) if names is None else names
    path = getattr(labels, "path", None)
    if path is None:
        return _content_sha256(labels, names)
    stamp = file_stamp("label-digests", Path(path), str(DIGEST_VERSION))
    if stamp is not None and stamp.is_file():
        cached = stamp.read_text(encoding="ascii").strip()
        if len(cached) == 64:
            return cached
    digest = _content_sha256(labels, names)
    if stamp is not None:
        try:
            stamp.write_text(digest, encoding="ascii")
        except OSError as exc:
            log.debug("could not cache the label digest in %s (%s)", stamp, exc)
    return digest


def _content_sha256(labels: Any, names: Sequence[str]) -> str:
    """Hash the matrix in row blocks: a memory-mapped matrix is never read into memory whole."""
    matrix = labels.matrix
    spec = labels.score_spec
    head = {"v": DIGEST_VERSION, "dtype": str(matrix.dtype), "shape": list(matrix.shape),
            "logit_scale": float(spec.logit_scale), "logit_bias": spec.logit_bias, "scales": labels.scales is not None}
    digest = hashlib.sha256(json.dumps(head, sort_keys=True).encode("utf-8"))
    for start in range(0, int(matrix.shape[0]), BLOCK_ROWS):
        digest.update(np.ascontiguousarray(matrix[start : start + BLOCK_ROWS]).data)
    if labels.scales is not None:
        digest.update(np.ascontiguousarray(labels.scales).data)
    for name in names:
        digest.update(name.encode("utf-8") + b"\0")
    return digest.hexdigest()

"""Import the official TreeOfLife label matrices (BioCLIP, BioCLIP 2) into a label file.

Their format: ``txt_emb_species.npy`` of shape [dim, N] (one column per label, float32) and
``txt_emb_species.json``, a list of ``[[kingdom, phylum, class, order, family, genus,
species_epithet], common_name]``. The BioCLIP 2 file ends with up to ~200 all-zero columns
(its generator skipped the last partial batch): those labels were never embedded, would score
as cos = 0 against every image, and are dropped with a warning.

The .npy is read memory-mapped in column blocks, twice (find zero columns, then write), so a
2.6 GB matrix is imported with bounded memory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.labels.store import write_label_file
from bioclip_edge.runtime.labels.matrix import _now, bundle_info
from bioclip_edge.runtime.labels.taxonomy import NAME_COLUMN, RANKS, binomial, display_name

log = logging.getLogger(__name__)


class LabelImportError(UserError, ValueError):
    """Embeddings or names that do not form a TreeOfLife matrix for this bundle."""


def read_tol_names(path: Path) -> list[tuple[list[str], str]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelImportError(f"{path}: no such names file") from None
    except (OSError, ValueError) as exc:
        raise LabelImportError(f"{path}: not a readable JSON names file ({exc})") from None
    if not isinstance(data, list) or not data:
        raise LabelImportError(f"{path}: expected a JSON list of [[kingdom, ..., species_epithet], common_name]")
    out = []
    for i, item in enumerate(data):
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], list) and len(item[0]) == 7
        if not ok or not all(isinstance(x, str) for x in item[0]) or not isinstance(item[1], (str, type(None))):
            raise LabelImportError(
                f"{path}: entry {i} is {str(item)[:80]}; expected [[kingdom, phylum, class, order, family, genus, species_epithet], common_name]"
            )
        out.append((item[0], item[1] or ""))
    return out


def open_tol_embeddings(path: Path, dim: int, n_names: int) -> tuple[np.ndarray, bool]:
    """The .npy memory-mapped, and whether it is stored [dim, N] (official) rather than [N, dim]."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise LabelImportError(f"{path}: no such embeddings file") from None
    except (OSError, ValueError) as exc:
        raise LabelImportError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.ndim != 2 or arr.dtype.kind != "f":
        raise LabelImportError(f"{path}: expected a 2-D float array [dim, N], got {arr.dtype}{list(arr.shape)}")
    if arr.shape == (dim, n_names):
        return arr, True
    if arr.shape == (n_names, dim):
        log.warning("%s is stored [N, dim]; the official layout is [dim, N]: reading it row-wise", path)
        return arr, False
    if dim not in arr.shape:
        raise LabelImportError(
            f"{path}: embeddings have shape {list(arr.shape)} but the bundle embeds in {dim} dims; "
            "this matrix belongs to another model: import it with the matching bundle"
        )
    raise LabelImportError(
        f"{path}: embeddings have shape {list(arr.shape)} but the names file lists {n_names} labels "
        f"(expected [{dim}, {n_names}]); the .npy and .json do not belong together"
    )


def _label_blocks(arr: np.ndarray, columns: bool, block: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, float32 rows [n, dim]) over labels, whichever way the array is stored."""
    n = arr.shape[1] if columns else arr.shape[0]
    for start in range(0, n, block):
        part = arr[:, start : start + block].T if columns else arr[start : start + block]
        yield start, np.asarray(part, dtype=np.float32)


def import_tol(bundle, emb_path: str | os.PathLike, names_path: str | os.PathLike, out: str | os.PathLike,
               dtype: str = "fp16", block: int = 16384, overwrite: bool = False) -> tuple[Path, int]:
    """Write ``out`` (named as given) from an official TreeOfLife pair; returns (path, zero columns dropped).

    An existing ``out`` is replaced only with ``overwrite``, checked before the 2.6 GB matrix is read.
    """
    from bioclip_edge.runtime.common.target import check_output_target

    out = check_output_target(out, overwrite=overwrite, what="label file")
    emb_path, names_path = Path(emb_path), Path(names_path)
    dim = int(bundle.manifest.model.embed_dim)
    names = read_tol_names(names_path)
    arr, columns = open_tol_embeddings(emb_path, dim, len(names))
    keep = np.ones(len(names), dtype=bool)
    for start, rows in _label_blocks(arr, columns, block):
        if not np.isfinite(rows).all():
            bad = start + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
            raise LabelImportError(f"{emb_path}: label {bad} has non-finite values; the file is corrupt")
        keep[start : start + len(rows)] = np.abs(rows).max(axis=1) > 0
    dropped = int((~keep).sum())
    if dropped:
        tail = len(keep) - int(np.flatnonzero(keep)[-1]) - 1 if keep.any() else len(keep)
        log.warning("%s: dropping %d all-zero embedding columns (%d at the end); those labels were never embedded",
                    emb_path, dropped, tail)
    if not keep.any():
        raise LabelImportError(f"{emb_path}: every embedding is zero; nothing to import")
    kept = np.flatnonzero(keep)
    cols = _tol_columns([names[i] for i in kept])

    def rows_out() -> Iterator[np.ndarray]:
        for start, rows in _label_blocks(arr, columns, block):
            rows = rows[keep[start : start + len(rows)]]
            if len(rows):
                yield rows / np.linalg.norm(rows, axis=1, keepdims=True)

    meta = {
        "recipe": "tol", "bundle": bundle_info(bundle), "created_at": _now(),
        "source": {"kind": "import", "embeddings": emb_path.name, "names": names_path.name,
                   "labels_in_file": len(names), "dropped_zero_columns": dropped},
        "note": "official TreeOfLife embeddings (text recipe: 7 ranks + common name under 80 templates)",
    }
    path = write_label_file(out, (len(kept), dim), dtype, rows_out(), cols, meta)
    return path, dropped


def _tol_columns(names: list[tuple[list[str], str]]) -> dict[str, list[str]]:
    cols: dict[str, list[str]] = {r: [] for r in RANKS}
    common: list[str] = []
    display: list[str] = []
    for ranks, common_name in names:
        ranks = [r.strip() for r in ranks]
        for rank, value in zip(RANKS[:-1], ranks[:-1]):
            cols[rank].append(value)
        cols["species"].append(binomial(ranks[5], ranks[6]))
        common.append(common_name.strip())
        display.append(display_name({r: cols[r][-1] for r in RANKS}, common_name))
    return {NAME_COLUMN: display, **cols, "common_name": common}

"""Embed image files into ``embeddings.npy`` + its ``embeddings.json`` index, extendably: what
``bioclip-edge embed`` does after parsing its options, for Python too.

Both files are checked before any image is read (writable, not folders, not replaced without
``overwrite``). With ``resume`` an existing pair is *extended*: its fingerprint (the graph,
backend, stored dtype, ``--relative-paths``, decoding; ``run_fingerprint``) must match, its rows
are kept byte for byte in their order (row numbers others already use stay valid), failed images
are tried again and images new to the inputs are appended. The ``.npy`` is written before its
index, so a kill between the two leaves an index that still describes the first rows of the
``.npy``: the next ``resume`` reads only those. From Python::

    job = EmbedJob(out="embeddings.npy", resume=True)
    summary = run_embed(ImageEmbedder(bundle, ImageRequest(precision="fp32")), job, ["photos/"])

Decoding, batching and threads come from the embedder's request (``ImageRequest``), as given.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bioclip_edge.errors import EmbeddingsFileError, OptionError
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.runner import job_items
from bioclip_edge.runtime.common.target import check_output_target
from bioclip_edge.runtime.common.files import atomic_writer, write_atomic
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint, decode_description, embed_fingerprint


def sidecar_path(out: str | os.PathLike) -> Path:
    """The index beside ``out``: same name, ``.json``."""
    out = Path(out)
    return out.with_suffix(".json") if out.suffix == ".npy" else out.with_name(out.name + ".json")


@dataclass(frozen=True)
class EmbedJob:
    """Where and how embeddings are written; what is embedded comes with ``run_embed``."""

    out: Path = Path("embeddings.npy")  # a string is taken too
    dtype: str = "float32"
    relative_paths: bool = False  # only recorded here: the items carry their filepaths
    resume: bool = False
    overwrite: bool = False
    progress: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.out)

    def check_targets(self) -> None:
        """Both files writable and neither replaced unasked; before any image is read."""
        if self.resume and self.overwrite:
            raise OptionError("--resume keeps the embeddings and --overwrite discards them; pass one of them")
        for path, what in ((self.out, "embeddings"), (self.sidecar, "embeddings index")):
            check_output_target(path, overwrite=self.overwrite, resume_flag="--resume", resuming=self.resume, what=what)

    def items(self, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem]) -> list[ImageItem]:
        """The images ``inputs`` name (see ``runner.job_items``)."""
        return job_items(inputs, self.relative_paths)


@dataclass
class Embedded:
    """Rows (kept, then new), their index entries, failures."""

    rows: list[np.ndarray] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class EmbedSummary:
    out: Path
    sidecar: Path
    embedded: int  # new rows
    kept: int  # rows kept from the existing file
    failed: int
    inputs: int
    seconds: float

    def line(self) -> str:
        rate = (self.embedded + self.failed) / self.seconds if self.seconds > 0 else 0.0
        text = f"embedded {self.embedded} image(s) in {self.seconds:.1f} s ({rate:.1f} images/s)"
        if self.kept:
            text += f"; kept {self.kept} done before"
        return text + f"; {self.failed} of {self.inputs} failed; embeddings: {self.out}, index: {self.sidecar}"


def run_embed(embedder: Any, job: EmbedJob, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem]) -> EmbedSummary:
    """Embed ``inputs`` (files, folders, lists, or ``ImageItem``s) into ``job.out`` (+ index),
    extending an existing pair with ``job.resume``."""
    job.check_targets()
    items = job.items(inputs)
    fingerprint = embed_fingerprint(embedder, dtype=job.dtype, relative_paths=job.relative_paths,
                                    draft_size=embedder.decode.draft_size)
    wanted = {item.filepath for item in items}
    kept, old_failures = _previous(job, fingerprint) if job.resume else (Embedded(), [])
    done = {im["filepath"] for im in kept.images}
    todo = [item for item in items if item.filepath not in done]
    new = Embedded(failures=[f for f in old_failures if f.get("filepath") not in wanted])  # not tried again: kept as they were
    start = time.monotonic()
    _embed_into(new, embedder, todo, job.progress)
    seconds = time.monotonic() - start
    _write(job, kept, new, _sidecar_meta(embedder, job, fingerprint), int(embedder.dim))
    failed = sum(f.get("filepath") in wanted for f in new.failures)
    return EmbedSummary(job.out, job.sidecar, len(new.images), len(kept.images), failed, len(items), seconds)


def _embed_into(new: Embedded, embedder: Any, todo: list[ImageItem], progress: bool | None) -> None:
    from bioclip_edge.runtime.images.embedder import iter_embeddings

    bar = progress_bar(len(todo), "img", "embedding", progress)
    try:
        for prepared, vector in iter_embeddings(embedder, todo):
            bar.update(1)
            if vector is None:
                new.failures.append({"filepath": prepared.item.filepath, "reason": prepared.failure})
            else:
                new.rows.append(vector)
                new.images.append({"filepath": prepared.item.filepath, **prepared.info})
    finally:
        bar.close()


def _sidecar_meta(embedder: Any, job: EmbedJob, fingerprint: dict[str, Any]) -> dict[str, Any]:
    model = embedder.bundle.manifest.model
    return {
        "embeddings": job.out.name,
        "model": model.id,
        "architecture": model.architecture,
        "variant": embedder.variant.name,
        "backend": embedder.backend,
        "chosen_because": embedder.selection.reason,
        "dim": int(embedder.dim),
        "dtype": job.dtype,
        "normalised": True,
        "decode": decode_description(embedder.decode.draft_size),
        "random_weights": bool(model.source.random_weights),
        "run_fingerprint": fingerprint,
    }


def _previous(job: EmbedJob, fingerprint: dict[str, Any]) -> tuple[Embedded, list[dict[str, Any]]]:
    """The existing pair's rows and index (fingerprint checked); nothing when there is none."""
    have_npy, have_index = job.out.exists(), job.sidecar.exists()
    if not (have_npy or have_index):
        return Embedded(), []
    if have_npy != have_index:
        present, missing = (job.out, job.sidecar) if have_npy else (job.sidecar, job.out)
        raise EmbeddingsFileError(f"{present} exists but {missing} does not, so it cannot be extended; pass --overwrite to start over")
    index = _read_index(job.sidecar)
    check_fingerprint(index["run_fingerprint"], fingerprint, str(job.sidecar),
                      remedy="use the same bundle and options to extend it, or pass --overwrite to start over")
    images = list(index.get("images") or [])
    matrix = _read_rows(job.out, len(images), job.dtype)
    return Embedded(rows=[matrix], images=images), list(index.get("failures") or [])


def _read_index(path: Path) -> dict[str, Any]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbeddingsFileError(f"{path}: cannot read the embeddings index ({exc}); pass --overwrite to start over") from None
    if not isinstance(index, dict) or not isinstance(index.get("images"), list):
        raise EmbeddingsFileError(f"{path}: not a bioclip-edge embeddings index (no 'images' list); pass --overwrite to start over")
    if "run_fingerprint" not in index:
        raise EmbeddingsFileError(f"{path}: holds no run fingerprint (written by an earlier bioclip-edge), so nothing proves "
                                  "its rows match this bundle and options; pass --overwrite to start over")
    return index


def _read_rows(path: Path, n: int, dtype: str) -> np.ndarray:
    """The first ``n`` rows (more are left by a run killed between the two writes)."""
    try:
        matrix = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EmbeddingsFileError(f"{path}: cannot read the embeddings ({exc}); pass --overwrite to start over") from None
    if matrix.ndim != 2 or matrix.shape[0] < n or matrix.dtype != np.dtype(dtype):
        raise EmbeddingsFileError(f"{path}: holds {matrix.dtype}{list(matrix.shape)} but its index lists {n} {dtype} rows; "
                                  "pass --overwrite to start over")
    return np.array(matrix[:n])


def _write(job: EmbedJob, kept: Embedded, new: Embedded, meta: dict[str, Any], dim: int) -> None:
    """The .npy first, then the index (see the module docstring for why this order)."""
    parts = list(kept.rows)
    if new.rows:
        parts.append(np.stack(new.rows).astype(job.dtype))
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=job.dtype)
    with atomic_writer(job.out) as fh:
        np.save(fh, matrix)
    index = {**meta, "images": kept.images + new.images, "failures": new.failures}
    write_atomic(job.sidecar, json.dumps(index, indent=1, ensure_ascii=False) + "\n")

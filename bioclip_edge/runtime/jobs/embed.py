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

``out`` ending in ``.parquet`` writes one file instead of the pair: one row per image (path,
``embedding`` as a fixed-size float list, ``failure``, EXIF fields), the index's metadata in the
schema (``runtime.jobs.parquet_output``); ``resume`` extends it the same way.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bioclip_edge.errors import EmbeddingsFileError, OptionError
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.embed_checkpoint import EmbedCheckpoint, Restored
from bioclip_edge.runtime.jobs.engines import Embedding, Engine, LocalEngine
from bioclip_edge.runtime.jobs.parquet_output import embed_table, embedding_matrix, read_table, require_pyarrow, write_table
from bioclip_edge.runtime.jobs.runner import job_items
from bioclip_edge.runtime.common.target import check_output_target
from bioclip_edge.runtime.common.files import atomic_writer, write_atomic
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint, decode_description, embed_fingerprint, video_sampling_field
from bioclip_edge.runtime.images.media import request_sampling


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
    checkpoint_images: int = 500  # save finished rows every N images ...
    checkpoint_seconds: float = 60.0  # ... or every this many seconds (runtime.jobs.embed_checkpoint)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if self.parquet:
            require_pyarrow()

    @property
    def parquet(self) -> bool:
        """``.parquet``: one file, one row per image (failures included), metadata in its schema."""
        return self.out.suffix.lower() == ".parquet"

    @property
    def sidecar(self) -> Path:
        """The .npy's index (a Parquet file is its own index)."""
        return self.out if self.parquet else sidecar_path(self.out)

    def check_targets(self) -> None:
        """Every file writable and none replaced unasked; before any image is read."""
        if self.resume and self.overwrite:
            raise OptionError("--resume keeps the embeddings and --overwrite discards them; pass one of them")
        targets = [(self.out, "embeddings")] + ([] if self.parquet else [(self.sidecar, "embeddings index")])
        for path, what in targets:
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
        index = "" if self.sidecar == self.out else f", index: {self.sidecar}"
        return text + f"; {self.failed} of {self.inputs} failed; embeddings: {self.out}{index}"


def run_embed(embedder: Any, job: EmbedJob, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem],
              engine: Engine | None = None) -> EmbedSummary:
    """Embed ``inputs`` (files, folders, lists, or ``ImageItem``s) into ``job.out`` (+ index),
    extending an existing pair with ``job.resume``; ``engine``: where embeddings are made (local by default)."""
    engine = engine or LocalEngine()
    job.check_targets()
    items = job.items(inputs)
    fingerprint = {**embed_fingerprint(embedder, dtype=job.dtype, relative_paths=job.relative_paths,
                                       draft_size=embedder.decode.draft_size),
                   **video_sampling_field(request_sampling(embedder.request))}
    wanted = {item.filepath for item in items}
    checkpoint = EmbedCheckpoint(job.out, fingerprint, job.checkpoint_images, job.checkpoint_seconds)
    checkpoint.refuse_unasked(job.resume, job.overwrite)
    kept, old_failures = _kept(job, fingerprint, checkpoint)
    done = {im["filepath"] for im in kept.images}
    todo = [item for item in items if item.filepath not in done]
    new = Embedded(failures=[f for f in old_failures if f.get("filepath") not in wanted])  # not tried again: kept as they were
    start = time.monotonic()
    _embed_into(new, engine.embed(embedder, todo), len(todo), job.progress, checkpoint)
    seconds = time.monotonic() - start
    _write(job, kept, new, {**_sidecar_meta(embedder, job, fingerprint), **engine.describe()}, int(embedder.dim))
    checkpoint.remove()
    failed = sum(f.get("filepath") in wanted for f in new.failures)
    return EmbedSummary(job.out, job.sidecar, len(new.images), len(kept.images), failed, len(items), seconds)


def _kept(job: EmbedJob, fingerprint: dict[str, Any], checkpoint: EmbedCheckpoint) -> tuple[Embedded, list[dict[str, Any]]]:
    """What this run keeps: the output's rows (``--resume``), and an interrupted run's checkpoint rows;
    the new checkpoint starts with them (runtime.jobs.embed_checkpoint)."""
    restored = checkpoint.restore() if job.resume and checkpoint.exists() else Restored()
    from_checkpoint = job.resume and checkpoint.exists()
    if job.resume and (not from_checkpoint or restored.kept_from_output):
        kept, old_failures = _previous(job, fingerprint)
    else:
        kept, old_failures = Embedded(), []
    if from_checkpoint:  # the output's first rows, as the killed run held them, then the checkpoint's
        n = restored.kept_from_output
        kept = Embedded(rows=[np.concatenate(kept.rows)[:n]] if kept.rows else [], images=kept.images[:n])
    from_output = len(kept.images)
    if restored.vectors:
        kept.rows.append(np.stack(restored.vectors).astype(job.dtype))
        kept.images += restored.images
    checkpoint.start(from_output, restored)
    return kept, old_failures


def _embed_into(new: Embedded, embeddings: Iterator[Embedding], todo: int, progress: bool | None,
                checkpoint: EmbedCheckpoint) -> None:
    """Collect the engine's rows; each input's rows go to the checkpoint once it is complete."""
    bar = progress_bar(todo, "img", "embedding", progress)
    try:
        for filepath, vector, info, failure in embeddings:
            checkpoint.add(filepath, vector, info, failure)
            bar.update(1)
            if vector is None:
                new.failures.append({"filepath": filepath, "reason": failure})
                bar.set_postfix_str(f"{len(new.failures)} failed", refresh=False)
            else:
                new.rows.append(vector)
                new.images.append({"filepath": filepath, **info})
        checkpoint.flush()
    except BaseException:
        checkpoint.save()  # killed or crashed: keep every finished input's rows
        raise
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
        "chosen_because": embedder.plan.reason,
        "dim": int(embedder.dim),
        "dtype": job.dtype,
        "normalised": True,
        "decode": decode_description(embedder.decode.draft_size),
        "decode_chosen_because": embedder.decode_choice.reason,
        "random_weights": bool(model.source.random_weights),
        "run_fingerprint": fingerprint,
    }


def _previous(job: EmbedJob, fingerprint: dict[str, Any]) -> tuple[Embedded, list[dict[str, Any]]]:
    """The existing pair's rows and index (fingerprint checked); nothing when there is none."""
    if job.parquet:
        return _previous_parquet(job, fingerprint)
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


def _previous_parquet(job: EmbedJob, fingerprint: dict[str, Any]) -> tuple[Embedded, list[dict[str, Any]]]:
    """Rows with an embedding are kept; failed rows come back as failures (tried again when still inputs)."""
    if not job.out.exists():
        return Embedded(), []
    table, meta = read_table(job.out)
    if "run_fingerprint" not in meta:
        raise EmbeddingsFileError(f"{job.out}: holds no run fingerprint, so nothing proves its rows match this bundle "
                                  "and options; pass --overwrite to start over")
    check_fingerprint(meta["run_fingerprint"], fingerprint, str(job.out),
                      remedy="use the same bundle and options to extend it, or pass --overwrite to start over")
    names, failures = table.column("filepath").to_pylist(), table.column("failure").to_pylist()
    infos = [json.loads(text) for text in table.column("info").to_pylist()]
    ok = [i for i, failure in enumerate(failures) if not failure]
    vectors = embedding_matrix(table.column("embedding"))
    kept = Embedded(rows=[vectors[ok].astype(job.dtype)] if ok else [],
                    images=[{"filepath": names[i], **infos[i]} for i in ok])
    return kept, [{"filepath": names[i], "reason": failures[i]} for i in range(len(names)) if failures[i]]


def _write(job: EmbedJob, kept: Embedded, new: Embedded, meta: dict[str, Any], dim: int) -> None:
    """The .npy first, then the index (see the module docstring for why this order); or one Parquet file."""
    if job.parquet:
        return _write_parquet(job, kept, new, meta, dim)
    parts = list(kept.rows)
    if new.rows:
        parts.append(np.stack(new.rows).astype(job.dtype))
    matrix = np.concatenate(parts) if parts else np.zeros((0, dim), dtype=job.dtype)
    with atomic_writer(job.out) as fh:
        np.save(fh, matrix)
    index = {**meta, "images": kept.images + new.images, "failures": new.failures}
    write_atomic(job.sidecar, json.dumps(index, indent=1, ensure_ascii=False) + "\n")


def _write_parquet(job: EmbedJob, kept: Embedded, new: Embedded, meta: dict[str, Any], dim: int) -> None:
    """Kept rows, new rows, then failures (null embedding), atomically."""
    images = kept.images + new.images
    parts = [np.asarray(r, job.dtype).reshape(-1, dim) for r in (*kept.rows, *new.rows)]
    vectors = np.concatenate(parts + [np.zeros((len(new.failures), dim), job.dtype)]) if parts or new.failures \
        else np.zeros((0, dim), job.dtype)
    names = [im["filepath"] for im in images] + [f["filepath"] for f in new.failures]
    failures = [None] * len(images) + [f.get("reason") or "failed" for f in new.failures]
    infos = [{k: v for k, v in im.items() if k != "filepath"} for im in images] + [{} for _ in new.failures]
    write_table(job.out, embed_table(names, vectors, failures, infos, dim, job.dtype, meta))

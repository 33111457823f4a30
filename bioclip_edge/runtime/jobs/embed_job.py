"""Embed image files into ``embeddings.npy`` + its ``embeddings.json`` index, extendably: what
``bioclip-edge embed`` does after parsing its options, for Python too.

Both files are checked before any image is read (writable, not folders, not replaced without
``overwrite``). With ``resume`` an existing pair is *extended*: its fingerprint (the graph,
provider, stored dtype, ``--relative-paths``, decoding; ``run_fingerprint``) must match, its rows
are kept byte for byte in their order (row numbers others already use stay valid), failed images
are tried again and images new to the inputs are appended. The ``.npy`` is written before its
index, so a kill between the two leaves an index that still describes the first rows of the
``.npy``: the next ``resume`` reads only those. From Python::

    job = EmbedJob(out="embeddings.npy", resume=True)
    summary = run_embed(ImageEmbedder(bundle, ImageRequest(precision="fp32")), job, ["photos/"])

Decoding, batching and threads come from the embedder's request (``ImageRequest``), as given.

``out`` ending in ``.parquet`` writes one file instead of the pair: one row per image (path,
``embedding`` as a fixed-size float list, ``failure``, EXIF fields), the index's metadata in the
schema (``runtime.jobs.parquet_output``); ``resume`` extends it the same way. Checkpoints, resume
and the summary's counts are ``jobs.runner``'s, as for ``classify``; ``EmbedSpec`` is the job as it runs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.images.media import request_sampling
from bioclip_edge.runtime.jobs.embed_output import (EmbeddedInput, from_checkpoint, grouped, read_pair, read_parquet,
                                                    to_checkpoint, write_pair, write_parquet)
from bioclip_edge.runtime.jobs.engines import Engine, LocalEngine
from bioclip_edge.runtime.jobs.fingerprint import decode_description, embed_fingerprint
from bioclip_edge.runtime.jobs.parquet_output import require_pyarrow
from bioclip_edge.runtime.jobs.runner import JobConfig, JobSpec, check_job_target, job_items, run_job


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
    checkpoint_seconds: float = 60.0  # ... or every this many seconds (runtime.jobs.checkpoint)

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

    @property
    def config(self) -> JobConfig:
        return JobConfig(out=self.out, resume=self.resume, overwrite=self.overwrite, checkpoint_images=self.checkpoint_images,
                         checkpoint_seconds=self.checkpoint_seconds, progress=self.progress)

    def targets(self) -> list[tuple[Path, str]]:
        return [(self.out, "embeddings")] + ([] if self.parquet else [(self.sidecar, "embeddings index")])

    def check_targets(self) -> None:
        """Every file writable and none replaced unasked; before any image is read."""
        check_job_target(self.config, self.targets())

    def items(self, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem]) -> list[ImageItem]:
        """The images ``inputs`` name (see ``runner.job_items``)."""
        return job_items(inputs, self.relative_paths)


@dataclass
class EmbedSummary:
    out: Path
    sidecar: Path
    embedded: int  # new rows
    kept: int  # rows kept from the existing file (and an interrupted run's checkpoint)
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
    job.check_targets()
    items = job.items(inputs)
    spec = EmbedSpec(embedder, job, items, engine or LocalEngine())
    run = run_job(spec, job.config)
    return EmbedSummary(job.out, job.sidecar, embedded=spec.new_rows, kept=spec.written_rows - spec.new_rows,
                        failed=spec.new_failed, inputs=len(items), seconds=run.summary.seconds)


class EmbedSpec(JobSpec[EmbeddedInput]):
    """An embed run as ``run_job`` runs it: one ``EmbeddedInput`` per image or video."""

    verb = "embedding"
    in_input_order = False  # kept rows stay where they are; new ones are appended

    def __init__(self, embedder: Any, job: EmbedJob, items: Sequence[ImageItem], engine: Engine):
        self.embedder, self.job, self.items, self.engine = embedder, job, list(items), engine
        self.fingerprint = embed_fingerprint(embedder, dtype=job.dtype, relative_paths=job.relative_paths,
                                             sampling=request_sampling(embedder.request))
        self._finished: list[EmbeddedInput] | None = None
        self._damage: list[str] = []
        self.new_rows = self.new_failed = self.written_rows = 0  # for the summary, which counts rows

    def targets(self) -> list[tuple[Path, str]]:
        return self.job.targets()

    def order(self) -> list[str]:
        return [item.filepath for item in self.items]

    def produce(self, skip: set[str]) -> Iterator[EmbeddedInput]:
        for result in grouped(self.engine.embed(self.embedder, [item for item in self.items if item.filepath not in skip])):
            self.new_rows += result.rows
            self.new_failed += result.failure is not None
            yield result

    def key(self, result: EmbeddedInput) -> str:
        return result.filepath

    def failed(self, result: EmbeddedInput) -> bool:
        return result.failure is not None

    def finished(self) -> list[EmbeddedInput]:
        if self._finished is None:  # read once: references in the checkpoint and its older form both use it
            job = self.job
            self._finished = (read_parquet(job.out, self.fingerprint, job.dtype) if job.parquet
                              else read_pair(job.out, job.sidecar, self.fingerprint, job.dtype, self._damage))
        return self._finished

    def damage(self) -> list[str]:
        return self._damage

    def to_checkpoint(self, result: EmbeddedInput) -> dict[str, Any]:
        return to_checkpoint(result)

    def from_checkpoint(self, rows: list[dict[str, Any]]) -> list[EmbeddedInput]:
        return from_checkpoint(rows, self.finished)

    def write(self, out: Path, results: Iterable[EmbeddedInput]) -> None:
        job, dim = self.job, int(self.embedder.dim)
        if job.parquet:
            results = list(results)  # one table (an embed .parquet is written whole)
        self.written_rows = sum(r.rows for r in results)
        meta = {**self.meta(), **self.engine.describe()}
        if job.parquet:
            write_parquet(out, results, meta, dim, job.dtype)
        else:
            write_pair(out, job.sidecar, results, meta, dim, job.dtype)

    def meta(self) -> dict[str, Any]:
        """The index's description of the run (a Parquet file's schema metadata)."""
        embedder, model = self.embedder, self.embedder.bundle.manifest.model
        return {
            "embeddings": self.job.out.name,
            "model": model.id,
            "architecture": model.architecture,
            "variant": embedder.variant.name,
            "backend": embedder.provider,
            "chosen_because": embedder.plan.reason,
            "dim": int(embedder.dim),
            "dtype": self.job.dtype,
            "normalised": True,
            "decode": decode_description(embedder.decode.draft_size),
            "decode_chosen_because": embedder.decode_choice.reason,
            "random_weights": bool(model.source.random_weights),
            "run_fingerprint": self.fingerprint,
        }

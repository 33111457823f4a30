"""Run a long job over many inputs: progress bar, checkpoints, resume, final file, summary.

``run_job`` is the part of every job (``classify``, ``embed``, and the commands that read or write
their outputs) that is not about models. A job describes itself with a ``JobSpec``: its inputs,
how it makes one result per input, how a result goes into the checkpoint and back, how the
finished output is read back and how results are written. ``run_job`` then makes sure that

* the output can be written, and an existing one is never replaced silently (``--overwrite``
  replaces it, ``--resume`` extends it), checked before any input is read;
* every finished result survives a kill (the checkpoint, ``jobs.checkpoint``);
* ``--resume`` skips what is done, whether in a checkpoint or in a finished output read back by
  the spec (failed inputs are tried again: the cause may be fixed), and inputs new to the run
  are added;
* the final output is written atomically, and the closing line says how many were new, kept and
  failed.

A result kept from the finished output goes into the checkpoint as a reference (its key and
``KEPT_FROM_OUTPUT``), not whole: the output stays on disk until the run ends, and the checkpoint
of an extension stays as small as its new work (``embed``'s kept rows are its whole ``.npy``).
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Iterator, Sequence, TypeVar

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.common.target import check_output_target
from bioclip_edge.runtime.images.discover import ImageItem, discover, require_images
from bioclip_edge.runtime.jobs.checkpoint import Checkpoint, CheckpointError

R = TypeVar("R")  # a job's result for one input
KEPT_FROM_OUTPUT = "kept_from_output"  # a checkpoint line standing for the finished output's result


@dataclass(frozen=True)
class JobConfig:
    out: Path
    resume: bool = False  # extend the checkpoint and/or the finished output
    overwrite: bool = False  # replace an existing output (and drop a checkpoint) instead
    checkpoint_images: int = 500
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only when stderr is a terminal


class JobSpec(ABC, Generic[R]):
    """What ``run_job`` needs to know of a job; each input has one result, found by its key."""

    fingerprint: dict[str, Any]  # what decides the results: checked against the checkpoint's and the output's
    verb = "processing"  # the progress bar's
    in_input_order = True  # False: kept results first, as they were, then new ones (row numbers stay valid)

    def targets(self) -> list[tuple[Path, str]]:
        """Every file the job writes, with what messages call it; none listed: just the output."""
        return []

    @abstractmethod
    def order(self) -> list[str]:
        """The inputs' keys, in input order."""

    @abstractmethod
    def produce(self, skip: set[str]) -> Iterator[R]:
        """A result for every input whose key is not in ``skip``."""

    @abstractmethod
    def key(self, result: R) -> str: ...

    @abstractmethod
    def failed(self, result: R) -> bool: ...

    def keep(self, result: R) -> bool:
        """Whether a result done before still stands (e.g. its MegaDetector boxes are unchanged)."""
        return True

    @abstractmethod
    def finished(self) -> list[R]:
        """The results of the existing output (its fingerprint checked); none when there is no output."""

    @abstractmethod
    def to_checkpoint(self, result: R) -> dict[str, Any]:
        """A checkpoint line: JSON-ready, with the result's key as ``filepath``."""

    @abstractmethod
    def from_checkpoint(self, rows: list[dict[str, Any]]) -> list[R]:
        """The results of checkpoint lines (``to_checkpoint``'s, or an older writer's)."""

    @abstractmethod
    def write(self, out: Path, results: list[R]) -> None:
        """Render every result of the run into ``out`` (and the job's other targets), atomically."""


@dataclass
class JobSummary:
    out: Path
    total: int  # results in the output
    processed: int  # done (or failed) in this run
    resumed: int  # kept from the checkpoint / finished output
    failed: int  # results in the output that carry a failure
    seconds: float
    not_in_inputs: int = 0  # kept results whose input is no longer among the inputs
    redone: int = 0  # done before but done again: failed then, or (detections) boxes changed

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def line(self, verb: str = "classified") -> str:
        text = f"{verb} {self.processed} image(s) in {self.seconds:.1f} s ({self.rate:.1f} images/s)"
        if self.resumed or self.redone:
            text += f": {self.processed - self.redone} new" + (f", {self.redone} done again (failed or changed before)" if self.redone else "")
        if self.resumed:
            text += f"; kept {self.resumed} done before"
            if self.not_in_inputs:
                text += f" ({self.not_in_inputs} of them no longer among the inputs)"
        text += f"; {self.failed} of {self.total} failed" if self.failed else f"; none of {self.total} failed"
        return text + f"; results: {self.out}"


@dataclass
class JobRun(Generic[R]):
    """What ``run_job`` did: its summary, and the results it kept and made (for a job's own summary)."""

    summary: JobSummary
    kept: list[R]
    new: list[R]


def job_items(inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem], relative: bool) -> list[ImageItem]:
    """What a job runs on: ``ImageItem``s as given, or the images that files, folders and .txt
    lists name; inputs holding no image stop here, before the model loads (almost always a typo)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # one folder or file, not a string of characters
    if all(isinstance(i, ImageItem) for i in inputs):
        return list(inputs)  # type: ignore[arg-type]
    return require_images(discover(inputs, relative=relative), inputs)  # type: ignore[arg-type]


def check_job_target(config: JobConfig, targets: Sequence[tuple[Path, str]] = ()) -> Path:
    """Before any work: every target can be written and nothing is replaced unasked."""
    if config.resume and config.overwrite:
        raise OptionError("--resume keeps the finished results and --overwrite discards them; pass one of them")
    for path, what in targets or [(config.out, "output")]:
        check_output_target(path, overwrite=config.overwrite, resume_flag="--resume", resuming=config.resume, what=what)
    return config.out


def run_job(spec: JobSpec[R], config: JobConfig) -> JobRun[R]:
    """Run ``spec`` into ``config.out``: checkpointed, resumable, written once at the end."""
    check_job_target(config, spec.targets())
    checkpoint = Checkpoint(config.out, spec.fingerprint, config.checkpoint_images, config.checkpoint_seconds)
    order = spec.order()
    wanted = set(order)
    done, from_output = _done_before(spec, checkpoint, config)
    kept = [r for r in done if _still_done(spec, r, wanted)]
    checkpoint.records = [_checkpoint_line(spec, r, from_output) for r in kept]
    skip = {spec.key(r) for r in kept}
    start = time.monotonic()
    new = _produce_into(spec, checkpoint, skip, len(wanted - skip), config.progress)
    results = _in_order(spec, kept + new, order) if spec.in_input_order else kept + new
    checkpoint.save()
    spec.write(config.out, results)
    checkpoint.remove()
    summary = JobSummary(out=config.out, total=len(results), processed=len(new), resumed=len(kept),
                         failed=sum(spec.failed(r) for r in results), seconds=time.monotonic() - start,
                         not_in_inputs=sum(spec.key(r) not in wanted for r in kept), redone=len(done) - len(kept))
    return JobRun(summary, kept, new)


def _done_before(spec: JobSpec[R], checkpoint: Checkpoint, config: JobConfig) -> tuple[list[R], set[str]]:
    """Results done before (failed ones too), and the keys of those that are the finished output's:
    the checkpoint's when there is one, else the finished output's.

    A checkpoint already holds what its run kept from the output (a resumed run starts its
    checkpoint with them), and an ``--overwrite`` run's checkpoint must not be mixed with the
    output it was replacing (which may even have been made with other labels)."""
    if checkpoint.exists() and not (config.resume or config.overwrite):
        raise CheckpointError(f"{checkpoint.path}: an interrupted run left results here; pass --resume to continue it, "
                              "or --overwrite to start over")
    if not config.resume:
        return [], set()
    if not checkpoint.exists():
        done = _unique(spec, spec.finished())
        return done, {spec.key(r) for r in done}
    rows = checkpoint.load()
    refs = [row["filepath"] for row in rows if row.get(KEPT_FROM_OUTPUT)]
    output = {spec.key(r): r for r in spec.finished()} if refs else {}
    kept = [output[name] for name in refs if name in output]  # one gone from the output is done again
    return _unique(spec, kept + spec.from_checkpoint([row for row in rows if not row.get(KEPT_FROM_OUTPUT)])), set(refs)


def _still_done(spec: JobSpec[R], result: R, wanted: set[str]) -> bool:
    """Keep a done result unless it failed or the spec refuses it; one no longer among the inputs
    is kept as it is (it would not be tried again)."""
    if spec.key(result) not in wanted:
        return True
    return not spec.failed(result) and spec.keep(result)


def _checkpoint_line(spec: JobSpec[R], result: R, from_output: set[str]) -> dict[str, Any]:
    key = spec.key(result)
    return {"filepath": key, KEPT_FROM_OUTPUT: True} if key in from_output else spec.to_checkpoint(result)


def _unique(spec: JobSpec[R], results: list[R]) -> list[R]:
    """One result per key, the last one written winning."""
    return list({spec.key(r): r for r in results}.values())


def _produce_into(spec: JobSpec[R], checkpoint: Checkpoint, skip: set[str], todo: int, progress: bool | None) -> list[R]:
    """Drain the spec's new results into the checkpoint; on any exit, save what is finished."""
    new: list[R] = []
    failed = 0
    bar = progress_bar(todo, "img", spec.verb, progress)
    try:
        for result in spec.produce(skip):
            checkpoint.add(spec.to_checkpoint(result))
            new.append(result)
            if spec.failed(result):
                failed += 1
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.update(1)
    except BaseException:
        checkpoint.save()  # interrupted or crashed: keep every finished result
        raise
    finally:
        bar.close()
    return new


def _in_order(spec: JobSpec[R], results: list[R], order: list[str]) -> list[R]:
    """Input order; results not among the inputs (kept from a finished output) after, as they were."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(results, key=lambda r: rank.get(spec.key(r), len(rank)))

"""Run a long job over many inputs: progress bar, checkpoints, resume, final file, summary.

``run_job`` is the part of every job (``classify``, ``embed``, and the commands that read or write
their outputs) that is not about models. A job describes itself with a ``JobSpec``: its inputs,
how it makes one result per input, how a result goes into the checkpoint and back, how the
finished output is read back and how results are written. ``run_job`` then makes sure that

* the output can be written, and an existing one is never replaced silently (``--overwrite``
  replaces it, ``--resume`` extends it), checked before any input is read;
* every finished result survives a kill (the checkpoint, an append-only journal: ``jobs.checkpoint``);
* ``--resume`` skips what is done, whether in a checkpoint or in a finished output read back by
  the spec (failed inputs are tried again: the cause may be fixed), and inputs new to the run
  are added;
* the final output is written atomically, and the closing line says how many were new, kept and
  failed;
* results are not held in memory: each goes to the journal as it comes, and the output is written
  at the end by streaming them back in input order (``jobs.result_store``), so a million-image
  run needs about as much memory as a small one;
* damaged lines of a checkpoint and damaged rows of a finished output cost only themselves: what
  is intact is kept, what was lost is said (``JobConfig.notify``) and done again.

A result kept from the finished output goes into the checkpoint as a reference (its key and
``KEPT_FROM_OUTPUT``), not whole: the output stays on disk until the run ends, and the checkpoint
of an extension stays as small as its new work (``embed``'s kept rows are its whole ``.npy``).
"""

from __future__ import annotations

import os
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Iterable, Iterator, Sequence, TypeVar

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.common.target import check_output_target
from bioclip_edge.runtime.images.discover import ImageItem, discover, require_images
from bioclip_edge.runtime.jobs.checkpoint import Checkpoint, CheckpointError, encode
from bioclip_edge.runtime.jobs.faults import fault_point
from bioclip_edge.runtime.jobs.result_store import ResultStore

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
    notify: Callable[[str], None] | None = None  # what was damaged and salvaged; None: a "note:" line on stderr

    def note(self, message: str) -> None:
        if self.notify is not None:
            self.notify(message)
        else:
            print(f"note: {message}", file=sys.stderr)


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
    def finished(self) -> Iterable[R]:
        """The results of the existing output (its fingerprint checked), as they are read; none when
        there is no output. Rows a damaged output lost are left out and said in ``damage``."""

    def damage(self) -> list[str]:
        """What ``finished`` found damaged (one sentence each: file, line or byte offset, rows lost)."""
        return []

    @abstractmethod
    def to_checkpoint(self, result: R) -> dict[str, Any]:
        """A checkpoint line: JSON-ready, with the result's key as ``filepath``."""

    @abstractmethod
    def from_checkpoint(self, rows: list[dict[str, Any]]) -> list[R]:
        """The results of checkpoint lines (``to_checkpoint``'s, or an older writer's)."""

    @abstractmethod
    def write(self, out: Path, results: Iterable[R]) -> None:
        """Render every result of the run into ``out`` (and the job's other targets), atomically.
        ``results`` is read from disk in output order, as often as it is iterated (``len`` works)."""


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
    checkpoint_seconds: float = 0.0  # time spent appending to, flushing and fsync'ing the checkpoint
    encode_seconds: float = 0.0  # time spent encoding results as journal lines (which the output is written from)
    salvaged: list[str] = field(default_factory=list)  # what was damaged in the checkpoint or output, and kept

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
class JobRun:
    """What ``run_job`` did (a job's own summary adds its counts: ``embed`` counts rows)."""

    summary: JobSummary


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


def run_job(spec: JobSpec[R], config: JobConfig) -> JobRun:
    """Run ``spec`` into ``config.out``: checkpointed, resumable, written once at the end."""
    check_job_target(config, spec.targets())
    checkpoint = Checkpoint(config.out, spec.fingerprint, config.checkpoint_images, config.checkpoint_seconds)
    order = spec.order()
    store = ResultStore(config.out, checkpoint.path, order, spec.in_input_order)
    try:
        before = _done_before(spec, checkpoint, config, store)
        for message in before.damage:
            config.note(message)
        start = time.monotonic()
        processed, failed = _produce_into(spec, checkpoint, store, before.skip,
                                          sum(1 for key in order if key not in before.skip), config.progress)
        checkpoint.sync()
        results = store.results(lambda row: spec.from_checkpoint([row])[0])
        spec.write(config.out, results)
        fault_point("output-renamed")
        checkpoint.remove()
    finally:
        checkpoint.close()
        store.close()
    summary = JobSummary(out=config.out, total=len(results), processed=processed, resumed=len(before.skip),
                         failed=failed + before.failed, seconds=time.monotonic() - start,
                         not_in_inputs=sum(not store.wanted(key) for key in before.skip), redone=len(before.redone),
                         checkpoint_seconds=checkpoint.seconds,
                         encode_seconds=checkpoint.encode_seconds, salvaged=before.damage)
    return JobRun(summary)


@dataclass
class _Before:
    """What was done before: kept (``skip``: not done again), done again (``redone``), kept failures."""

    skip: set[str] = field(default_factory=set)
    redone: set[str] = field(default_factory=set)
    failed_kept: set[str] = field(default_factory=set)
    damage: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failed_kept)


def _done_before(spec: JobSpec[R], checkpoint: Checkpoint, config: JobConfig, store: ResultStore) -> _Before:
    """Put what was done before into ``store`` (failed ones are done again: the cause may be fixed):
    the checkpoint's results when there is one, else the finished output's.

    A checkpoint already holds what its run kept from the output (a resumed run starts its
    checkpoint with references to them), and an ``--overwrite`` run's checkpoint must not be mixed
    with the output it was replacing (which may even have been made with other labels)."""
    if checkpoint.exists() and not (config.resume or config.overwrite):
        raise CheckpointError(f"{checkpoint.path}: an interrupted run left results here; pass --resume to continue it, "
                              "or --overwrite to start over")
    before = _Before()
    if not config.resume:
        checkpoint.start_fresh()
    elif not checkpoint.exists():
        kept = [spec.key(r) for r in spec.finished() if _consider(spec, r, store, before)]
        before.damage += spec.damage()
        if before.skip:  # the journal starts with references to them (a kill keeps them kept)
            checkpoint.create({"filepath": key, KEPT_FROM_OUTPUT: True} for key in kept if key in before.skip)
    else:
        refs = set()
        for batch in _batches(checkpoint.read(), refs, store):
            for result in spec.from_checkpoint(batch):
                _consider(spec, result, store, before)
        before.damage += checkpoint.damage
        if refs:
            for result in spec.finished():  # a reference gone from the output is done again
                key = spec.key(result)
                if key in refs and key not in before.skip and key not in before.redone:
                    _consider(spec, result, store, before)
            before.damage += spec.damage()
    checkpoint.open()
    return before


def _batches(rows: Iterator[tuple[int, dict[str, Any]]], refs: set[str], store: ResultStore,
             size: int = 1000) -> Iterator[list[dict[str, Any]]]:
    """Journal lines for ``from_checkpoint``, a batch at a time (an older writer's consecutive lines of
    one input stay together); references to the finished output go into ``refs``, their places
    reserved where they are in the journal."""
    batch: list[dict[str, Any]] = []
    for _, row in rows:
        if row.get(KEPT_FROM_OUTPUT):
            refs.add(row["filepath"])
            store.reserve(row["filepath"])
            continue
        if len(batch) >= size and row.get("filepath") != batch[-1].get("filepath"):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def _consider(spec: JobSpec[R], result: R, store: ResultStore, before: _Before) -> bool:
    """Keep a done result (the last one of a key wins) unless it failed or the spec refuses it; one no
    longer among the inputs is kept as it is (it would not be tried again). True when kept."""
    key = spec.key(result)
    wanted = store.wanted(key)
    if wanted and (spec.failed(result) or not spec.keep(result)):
        store.drop(key)
        before.skip.discard(key)
        before.failed_kept.discard(key)
        before.redone.add(key)
        return False
    store.put_kept(key, encode(spec.to_checkpoint(result)))
    before.skip.add(key)
    before.redone.discard(key)
    if spec.failed(result):
        before.failed_kept.add(key)
    else:
        before.failed_kept.discard(key)
    return True


def _produce_into(spec: JobSpec[R], checkpoint: Checkpoint, store: ResultStore, skip: set[str], todo: int,
                  progress: bool | None) -> tuple[int, int]:
    """Drain the spec's new results into the checkpoint; on any exit, sync what is finished.
    Returns (results made, of which failed)."""
    made = failed = 0
    bar = progress_bar(todo, "img", spec.verb, progress)
    try:
        for result in spec.produce(skip):
            fault_point("result")
            offset = checkpoint.size
            checkpoint.add(spec.to_checkpoint(result))
            store.put_new(spec.key(result), offset)
            made += 1
            if spec.failed(result):
                failed += 1
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.update(1)
    except BaseException:
        checkpoint.sync()  # interrupted or crashed: keep every finished result
        raise
    finally:
        bar.close()
    return made, failed

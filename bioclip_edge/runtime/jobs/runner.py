"""Run a long classification job: progress bar, checkpoints, resume, final file, summary.

``run_job`` is the part of ``bioclip-edge classify`` that is not about models: it takes a
producer of result records and makes sure that

* the output can be written, and an existing one is never replaced silently (``--overwrite``
  replaces it, ``--resume`` extends it), checked before any image is read;
* every finished record survives a kill (the checkpoint);
* ``--resume`` skips what is done, whether in a checkpoint or in a finished output read back by
  ``finished`` (failed images are tried again: the cause may be fixed), and images new to the
  inputs are added;
* the final output is written atomically in input order (kept images no longer among the
  inputs stay, after them), and the closing line says how many were new, kept and failed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.discover import ImageItem, discover, require_images
from bioclip_edge.runtime.jobs.checkpoint import Checkpoint, CheckpointError
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.common.target import check_output_target

Record = dict[str, Any]


@dataclass(frozen=True)
class JobConfig:
    out: Path
    resume: bool = False  # extend the checkpoint and/or the finished output
    overwrite: bool = False  # replace an existing output (and drop a checkpoint) instead
    checkpoint_images: int = 500
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only when stderr is a terminal


@dataclass
class JobSummary:
    out: Path
    total: int  # results in the output
    processed: int  # classified (or failed) in this run
    resumed: int  # kept from the checkpoint / finished output
    failed: int  # results in the output that carry a failure
    seconds: float
    not_in_inputs: int = 0  # kept results whose image is no longer among the inputs
    redone: int = 0  # done before but classified again: failed then, or (detections) boxes changed

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


def job_items(inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem], relative: bool) -> list[ImageItem]:
    """What a job runs on: ``ImageItem``s as given, or the images that files, folders and .txt
    lists name; inputs holding no image stop here, before the model loads (almost always a typo)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # one folder or file, not a string of characters
    if all(isinstance(i, ImageItem) for i in inputs):
        return list(inputs)  # type: ignore[arg-type]
    return require_images(discover(inputs, relative=relative), inputs)  # type: ignore[arg-type]


def is_failed(record: Record) -> bool:
    return bool(record.get("failures")) or bool(record.get("md_failure"))


def run_job(
    produce: Callable[[set[str]], Iterator[Record]],
    write: Callable[[Path, list[Record]], Any],
    fingerprint: dict[str, Any],
    config: JobConfig,
    total: int | None = None,
    order: list[str] | None = None,
    finished: Callable[[], list[Record]] | None = None,
    keep: Callable[[Record], bool] | None = None,
) -> JobSummary:
    """``produce(skip)`` yields records for every input not in ``skip``; ``write`` renders them.

    ``finished()`` reads the existing output back (fingerprint checked) when resuming; without
    it an existing output can only be replaced. ``keep(record)`` may refuse a done record
    (e.g. its MegaDetector boxes changed), which is then done again.
    """
    check_job_target(config, extendable=finished is not None)
    checkpoint = Checkpoint(config.out, fingerprint, config.checkpoint_images, config.checkpoint_seconds)
    wanted = set(order) if order else None
    done = previous_records(checkpoint, config, finished)
    previous = [r for r in done if _still_done(r, keep, wanted)]
    checkpoint.records = list(previous)
    skip = {r["filepath"] for r in previous}
    start = time.monotonic()
    processed = _produce_into(checkpoint, produce(skip), _todo(total, order, skip), config.progress)
    records = _in_order(checkpoint.records, order)
    checkpoint.save()
    write(config.out, records)
    checkpoint.remove()
    inside = wanted if wanted is not None else {r["filepath"] for r in records}
    return JobSummary(
        out=config.out,
        total=len(records),
        processed=processed,
        resumed=len(previous),
        failed=sum(is_failed(r) for r in records),
        seconds=time.monotonic() - start,
        not_in_inputs=sum(r["filepath"] not in inside for r in previous),
        redone=len(done) - len(previous),
    )


def _still_done(record: Record, keep: Callable[[Record], bool] | None, wanted: set[str] | None) -> bool:
    """Keep a done record unless it failed or ``keep`` refuses it; one no longer among the
    inputs is kept as it is (it would not be tried again)."""
    if wanted is not None and record["filepath"] not in wanted:
        return True
    return not is_failed(record) and (keep is None or keep(record))


def check_job_target(config: JobConfig, extendable: bool = True) -> Path:
    """Before any work: the output can be written and nothing is replaced unasked."""
    if config.resume and config.overwrite:
        raise OptionError("--resume keeps the finished results and --overwrite discards them; pass one of them")
    if config.resume and not extendable and config.out.exists():
        raise OptionError(f"output {config.out} already exists and this job cannot read it back to extend it; "
                          "pass --overwrite to replace it, or choose another --out")
    return check_output_target(config.out, overwrite=config.overwrite, resume_flag="--resume", resuming=config.resume)


def previous_records(checkpoint: Checkpoint, config: JobConfig, finished: Callable[[], list[Record]] | None) -> list[Record]:
    """Records done before (failed ones too): the checkpoint's when there is one, else the finished output's.

    A checkpoint already holds what its run kept from the output (a resumed run starts its
    checkpoint with them), and an ``--overwrite`` run's checkpoint must not be mixed with the
    output it was replacing (which may even have been made with other labels).
    """
    if checkpoint.exists() and not (config.resume or config.overwrite):
        raise CheckpointError(
            f"{checkpoint.path}: an interrupted run left results here; pass --resume to continue it, "
            "or --overwrite to start over"
        )
    if not config.resume:
        return []
    if checkpoint.exists():
        return _unique(checkpoint.load())
    if finished is not None and config.out.exists():
        return _unique(finished())
    return []


def _unique(records: list[Record]) -> list[Record]:
    """One record per filepath, the last one written winning."""
    return list({r["filepath"]: r for r in records}.values())


def _produce_into(checkpoint: Checkpoint, records: Iterator[Record], todo: int | None, progress: bool | None) -> int:
    """Drain ``records`` into the checkpoint; on any exit, save what is finished."""
    processed = failed = 0
    bar = progress_bar(todo, "img", "classifying", progress)
    try:
        for record in records:
            checkpoint.add(record)
            processed += 1
            if is_failed(record):
                failed += 1
                bar.set_postfix_str(f"{failed} failed", refresh=False)
            bar.update(1)
    except BaseException:
        checkpoint.save()  # interrupted or crashed: keep every finished result
        raise
    finally:
        bar.close()
    return processed


def _todo(total: int | None, order: list[str] | None, skip: set[str]) -> int | None:
    if total is None:
        return None
    return total - (len(skip & set(order)) if order else len(skip))


def _in_order(records: list[Record], order: list[str] | None) -> list[Record]:
    """Input order; records not among the inputs (kept from a finished output) after, as they were."""
    if not order:
        return records
    rank = {name: i for i, name in enumerate(order)}
    return sorted(records, key=lambda r: rank.get(r["filepath"], len(rank)))


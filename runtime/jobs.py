"""Run a long classification job: progress bar, checkpoints, resume, final file, summary.

``run_job`` is the part of ``bioclip-edge classify`` that is not about models: it takes a
producer of result records and makes sure that every finished record survives a kill, that
``--resume`` skips what is done (failed images are tried again: the cause may be fixed), that
the final output is written atomically in input order, and that the closing line says how many
images failed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .checkpoint import Checkpoint, CheckpointError


@dataclass(frozen=True)
class JobConfig:
    out: Path
    resume: bool = False
    checkpoint_images: int = 500
    checkpoint_seconds: float = 60.0
    progress: bool | None = None  # None: a bar only when stderr is a terminal


@dataclass
class JobSummary:
    out: Path
    total: int  # results in the output
    processed: int  # classified (or failed) in this run
    resumed: int  # taken from the checkpoint / previous output
    failed: int  # results in the output that carry a failure
    seconds: float

    @property
    def rate(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def line(self, verb: str = "classified") -> str:
        text = f"{verb} {self.processed} image(s) in {self.seconds:.1f} s ({self.rate:.1f} images/s)"
        if self.resumed:
            text += f", {self.resumed} done before (resumed)"
        text += f"; {self.failed} of {self.total} failed" if self.failed else f"; none of {self.total} failed"
        return text + f"; results: {self.out}"


def is_failed(record: dict[str, Any]) -> bool:
    return bool(record.get("failures")) or bool(record.get("md_failure"))


def run_job(
    produce: Callable[[set[str]], Iterator[dict[str, Any]]],
    write: Callable[[Path, list[dict[str, Any]]], Any],
    fingerprint: dict[str, Any],
    config: JobConfig,
    total: int | None = None,
    order: list[str] | None = None,
) -> JobSummary:
    """``produce(skip)`` yields records for every input not in ``skip``; ``write`` renders them."""
    checkpoint = Checkpoint(config.out, fingerprint, config.checkpoint_images, config.checkpoint_seconds)
    previous: list[dict[str, Any]] = []
    if checkpoint.exists():
        if not config.resume:
            raise CheckpointError(
                f"{checkpoint.path}: an interrupted run left results here; pass --resume to continue it, "
                "or delete the file to start over"
            )
        previous = [r for r in checkpoint.load() if not is_failed(r)]
    checkpoint.records = list(previous)
    skip = {r["filepath"] for r in previous}
    start = time.monotonic()
    processed = 0
    bar = progress_bar(total - len(skip) if total is not None else None, config.progress)
    try:
        for record in produce(skip):
            checkpoint.add(record)
            processed += 1
            bar.update(1)
    except BaseException:
        checkpoint.save()  # interrupted or crashed: keep every finished result
        raise
    finally:
        bar.close()
    records = _in_order(checkpoint.records, order)
    checkpoint.save()
    write(config.out, records)
    checkpoint.remove()
    return JobSummary(
        out=config.out,
        total=len(records),
        processed=processed,
        resumed=len(previous),
        failed=sum(is_failed(r) for r in records),
        seconds=time.monotonic() - start,
    )


def _in_order(records: list[dict[str, Any]], order: list[str] | None) -> list[dict[str, Any]]:
    if not order:
        return records
    rank = {name: i for i, name in enumerate(order)}
    return sorted(records, key=lambda r: rank.get(r["filepath"], len(rank)))


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, enabled: bool | None):
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="img", desc="classifying", dynamic_ncols=True, smoothing=0.05, file=sys.stderr)

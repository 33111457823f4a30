"""Keep finished results safe during a long run, and pick them up again with ``--resume``.

The checkpoint is ``<out>.checkpoint.jsonl`` beside the output: a header line naming what
produced it (model, variant, labels, mode), then one result per line. It is rewritten whole
through a temporary file and a rename every ``every_images`` results or ``every_seconds``
seconds, so a kill at any moment leaves either the previous or the new checkpoint, never a torn
one. Rewriting grows with the run, so the interval also stretches to at least ten times the last
write's duration: checkpointing never costs more than ~10% of a run (SpeciesNet and
MegaDetector checkpoint the same way).

A checkpoint whose header fingerprint differs from this run's (``run_fingerprint``: model,
vision graph, label embeddings, top-k, mode, decoding ...) is refused, naming what differs:
resuming would mix two classifiers' answers in one file. A checkpoint from before fingerprint
version 2 (label names only) is refused with its own message.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bioclip_edge.errors import CheckpointError, ResumeMismatchError
from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint


def checkpoint_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".checkpoint.jsonl")


class Checkpoint:
    def __init__(self, out: str | os.PathLike, fingerprint: dict[str, Any], every_images: int = 500, every_seconds: float = 60.0):
        self.path = checkpoint_path(out)
        self.fingerprint = fingerprint
        self.every_images = max(1, every_images)
        self.every_seconds = every_seconds
        self.records: list[dict[str, Any]] = []
        self._unsaved = 0
        self._last_save = time.monotonic()
        self._last_cost = 0.0

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> list[dict[str, Any]]:
        """Results of the interrupted run (a torn last line, from an older writer, is dropped)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CheckpointError(f"{self.path}: cannot read the checkpoint ({exc.strerror}); pass --overwrite (or delete it) to start over") from None
        header = _parse(lines[0]) if lines else None
        if not isinstance(header, dict) or "checkpoint" not in header:
            raise CheckpointError(f"{self.path}: not a bioclip-edge checkpoint; pass --overwrite (or delete it) to start over")
        try:
            check_fingerprint(header["checkpoint"], self.fingerprint, str(self.path))
        except ResumeMismatchError as exc:
            raise CheckpointError(str(exc)) from None
        records = [r for r in (_parse(line) for line in lines[1:]) if isinstance(r, dict) and "filepath" in r]
        return records

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self._unsaved += 1
        elapsed = time.monotonic() - self._last_save
        due = self._unsaved >= self.every_images or elapsed >= self.every_seconds
        slow = self._last_cost > 0.05  # only big checkpoints need spacing out
        if due and (not slow or elapsed >= 10.0 * self._last_cost):
            self.save()

    def save(self) -> None:
        if not self._unsaved and self.path.exists():
            return
        start = time.monotonic()
        text = json.dumps({"checkpoint": self.fingerprint}, ensure_ascii=False) + "\n"
        text += "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records)
        write_atomic(self.path, text)
        self._last_cost = time.monotonic() - start
        self._last_save = time.monotonic()
        self._unsaved = 0

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _parse(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None

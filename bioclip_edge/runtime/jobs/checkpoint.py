"""Keep finished results safe during a long run, and pick them up again with ``--resume``.

The checkpoint is ``<out>.checkpoint.jsonl`` beside the output, an append-only journal: a header
line naming what produced it (the run fingerprint), then one result per line. Each result is
appended as it comes (O(1), whatever the run's length) and the journal is flushed in batches,
every ``every_images`` results or ``every_seconds`` seconds, and whenever the run stops (Ctrl-C, an
error): a killed process loses nothing flushed. Flushed batches are fsync'd at most once a second
(``FSYNC_SECONDS``), so that a fast run does not wait on the disk hundreds of times a minute: a power
cut loses at most the last second's batches (more on a disk whose fsync is slow: fsyncs are spaced
at least ``FSYNC_SPACING`` times their own duration apart, so they never cost more than ~1% of a
run), and may leave a torn last line: ``read`` drops it and says so. The header is written with the first lines through a temporary file
and a rename, so a journal never exists without its fingerprint.

Damage (a disk or copy that garbled a line, a file cut short) never costs more than the lines it
hit: every intact line is kept, and ``damage`` says which lines were lost (file, line number,
count). Checkpoints of earlier versions (the same layout, rewritten whole) read the same way.

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
from typing import IO, Any, Iterable, Iterator

from bioclip_edge.errors import CheckpointError, ResumeMismatchError, WriteFailure
from bioclip_edge.runtime.common.files import WRITE_ERRNOS, atomic_writer, write_failure
from bioclip_edge.runtime.jobs import faults
from bioclip_edge.runtime.jobs.faults import fault_point
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint

BUFFER_BYTES = 1 << 20
FSYNC_SECONDS = 1.0
FSYNC_SPACING = 100.0


def checkpoint_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".checkpoint.jsonl")


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def encode(record: dict[str, Any]) -> bytes:
    """One journal line (as ``json.dumps(record, ensure_ascii=False)``, one encoder for all)."""
    return (_ENCODER.encode(record) + "\n").encode("utf-8")


class Checkpoint:
    def __init__(self, out: str | os.PathLike, fingerprint: dict[str, Any], every_images: int = 500, every_seconds: float = 60.0):
        self.path = checkpoint_path(out)
        self.fingerprint = fingerprint
        self.every_images = max(1, every_images)
        self.every_seconds = every_seconds
        self.damage: list[str] = []  # what ``read`` could not keep, one sentence each
        self.seconds = 0.0  # time spent appending, flushing and fsync'ing (the benchmark's checkpoint share)
        self.encode_seconds = 0.0  # time spent encoding results as lines (shared with the output, read back from here)
        self.size = 0  # bytes in the journal: the next line's offset
        self._fh: IO[bytes] | None = None
        self._pending: list[bytes] | None = None  # a new journal's lines before its first flush
        self._fresh = False
        self._unsynced = 0
        self._last_sync = self._last_flush = time.perf_counter()
        self._fsync_cost = 0.0

    def exists(self) -> bool:
        return self.path.exists()

    # --- reading ---------------------------------------------------------------------------------
    def load(self) -> list[dict[str, Any]]:
        """Every intact result line (see ``read``)."""
        return [row for _, row in self.read()]

    def read(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """(byte offset, result) of every intact line, after the header's fingerprint is checked;
        damaged lines are skipped and described in ``damage``; a torn last line is cut off the file
        once read, so that appending continues on a clean line."""
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise CheckpointError(f"{self.path}: cannot read the checkpoint ({exc.strerror}); pass --overwrite (or delete it) to start over") from None
        with fh:
            first = fh.readline()
            self._check_header(first, fh)
            offset, number, damaged, torn = len(first), 1, [], None
            for line in fh:
                number += 1
                row = _parse(line) if line.endswith(b"\n") else None
                if isinstance(row, dict) and "filepath" in row:
                    yield offset, row
                elif not line.endswith(b"\n"):
                    torn = (number, offset)
                elif line.strip():
                    damaged.append(number)
                offset += len(line)
        self._report(damaged, torn)

    def _check_header(self, first: bytes, fh: IO[bytes]) -> None:
        header = _parse(first)
        if not isinstance(header, dict) or "checkpoint" not in header:
            rows = [_parse(line) for line in fh]
            results = sum(isinstance(r, dict) and "filepath" in r for r in rows)
            if not first:
                raise CheckpointError(f"{self.path}: the checkpoint is empty (damaged), so there is nothing to resume from; "
                                      "pass --overwrite (or delete it) to start over")
            if not (first.lstrip().startswith(b'{"checkpoint"') or results):
                raise CheckpointError(f"{self.path}: not a bioclip-edge checkpoint; pass --overwrite (or delete it) to start over")
            raise CheckpointError(f"{self.path}: line 1, the run fingerprint, is damaged, so nothing proves how its "
                                  f"{results} result line(s) were made; pass --overwrite (or delete it) to start over")
        try:
            check_fingerprint(header["checkpoint"], self.fingerprint, str(self.path))
        except ResumeMismatchError as exc:
            raise CheckpointError(str(exc)) from None

    def _report(self, damaged: list[int], torn: tuple[int, int] | None) -> None:
        """Say which lines were lost; cut a torn last line off, so the next append starts a line of its own."""
        if damaged:
            self.damage.append(f"{self.path}: {len(damaged)} damaged line(s) skipped ({_numbers(damaged)}); "
                               "their images are done again")
        if torn:
            self.damage.append(f"{self.path}: line {torn[0]} (byte {torn[1]}) was cut short, as a run stopped while "
                               "writing it leaves it; dropped, its image is done again")
            os.truncate(self.path, torn[1])

    # --- writing ---------------------------------------------------------------------------------
    def create(self, lines: Iterable[dict[str, Any]] = (), encoded: Iterable[bytes] = ()) -> None:
        """A new journal: the header and ``lines`` (results kept from before), through a rename."""
        self.close()
        with atomic_writer(self.path) as fh:
            fh.write(encode({"checkpoint": self.fingerprint}))
            for line in lines:
                fh.write(encode(line))
            for raw in encoded:
                fh.write(raw)
            fault_point("checkpoint-create")
        self._fresh = False
        self._pending = None
        self._fh = open(self.path, "ab", buffering=BUFFER_BYTES)
        self.size = self._fh.tell()

    def start_fresh(self) -> None:
        """This run starts over: its first write replaces any journal there (``--overwrite``)."""
        self._fresh = True

    def open(self) -> None:
        """Ready to append: an existing journal is continued; a new one is made at the first flush
        (a run killed before its first batch leaves no checkpoint to refuse the next run with)."""
        if self._fh is not None or self._pending is not None:
            return
        if self._fresh or not self.path.exists():
            self._pending = []
            self.size = len(encode({"checkpoint": self.fingerprint}))
            return
        self._fh = open(self.path, "ab", buffering=BUFFER_BYTES)
        self.size = self._fh.tell()

    def add(self, record: dict[str, Any]) -> int:
        """Append one result; returns its line's byte offset. Flushed when a batch is due."""
        start = time.perf_counter()
        line = (_ENCODER.encode(record) + "\n").encode("utf-8")
        encoded = time.perf_counter()
        self.encode_seconds += encoded - start
        if self._fh is None and self._pending is None:
            self.open()
        offset = self.size
        fh = self._fh
        if fh is None:
            self._pending.append(line)  # type: ignore[union-attr]
        else:
            if faults.ARMED:
                fault_point("checkpoint-append", lambda: (fh.write(line[: len(line) // 2]), fh.flush()))
            try:
                fh.write(line)  # a full buffer writes through here
            except OSError as exc:
                self._raise_write_failure(exc)
                raise
        self.size += len(line)
        self._unsynced += 1
        if self._unsynced >= self.every_images or encoded - self._last_flush >= self.every_seconds:
            since = encoded - self._last_sync
            self._flush(since >= max(FSYNC_SECONDS, FSYNC_SPACING * self._fsync_cost))
        self.seconds += time.perf_counter() - encoded
        return offset

    def sync(self, fsync: bool = True) -> None:
        """Flush what was appended (a killed process loses none of it) and, with ``fsync``, force it
        to the disk (a power cut loses none of it)."""
        start = time.perf_counter()
        self._flush(fsync)
        self.seconds += time.perf_counter() - start

    def _flush(self, fsync: bool) -> None:
        try:
            self._flush_now(fsync)
        except OSError as exc:
            self._raise_write_failure(exc)
            raise

    def _raise_write_failure(self, exc: OSError) -> None:
        """A full or read-only disk, named as the journal's (the buffered write's OSError names no
        file); the journal up to its last flush stays, and ``--resume`` goes on from there."""
        if not isinstance(exc, WriteFailure) and exc.errno in WRITE_ERRNOS:
            raise write_failure(exc, self.path, note="the checkpoint up to its last flush was kept") from exc

    def _flush_now(self, fsync: bool) -> None:
        self.open()
        if self._pending is not None:
            self.create(encoded=self._pending)  # the journal's first batch, with its header
        assert self._fh is not None
        self._fh.flush()
        self._unsynced = 0
        self._last_flush = time.perf_counter()
        if fsync:
            fault_point("checkpoint-sync")
            before = time.perf_counter()
            os.fsync(self._fh.fileno())
            self._last_sync = time.perf_counter()
            self._fsync_cost = self._last_sync - before


    def close(self) -> None:
        self._pending = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _numbers(lines: list[int], shown: int = 8) -> str:
    text = ", ".join(str(n) for n in lines[:shown])
    return ("line " if len(lines) == 1 else "lines ") + text + (f" and {len(lines) - shown} more" if len(lines) > shown else "")

"""Where each result of a run is on disk, by its place in the output: so that the output is written
in input order, by streaming, without holding the run's records in memory.

A result made in this run is a line of the checkpoint journal already (``jobs.checkpoint``); the
store keeps only its byte offset there. A result kept from before (an interrupted run's journal,
or the finished output being extended) is written once to a scratch file beside the output
(``.<out>.<pid>.kept.tmp``, removed when the run ends) and its offset kept the same way. Offsets
live in one array indexed by the result's place (an 8-byte slot per input, whatever the record's
size), so results arriving out of order (a cluster engine), results redone (the last one wins)
and kept results mixed with new ones are all put in order by reading the two files slot by slot.
Results whose key is not among the inputs (kept from an output made from more inputs) follow
the inputs, in the order they were kept.

``in_input_order=False`` (``embed``) places results by first arrival instead: kept results as they
were, new ones after them.
"""

from __future__ import annotations

import json
import os
from array import array
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bioclip_edge.runtime.common.files import write_errors

SCRATCH_SUFFIX = ".kept.tmp"


def scratch_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.{os.getpid()}{SCRATCH_SUFFIX}")


def remove_stale_scratch(out: Path) -> None:
    """Temporary files of runs that were killed (their process is gone): scratch files, and the
    half-written outputs and checkpoints ``common.files.atomic_writer`` leaves (``.<name>.<pid>.tmp``)."""
    for path in out.parent.glob(f".{out.name}.*.tmp"):
        stem = path.name.removesuffix(SCRATCH_SUFFIX).removesuffix(".tmp")
        pid = stem.rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ResultStore:
    """Offsets of a run's results in the journal (new) and the scratch file (kept), by place."""

    JOURNAL, KEPT = 0, 1

    def __init__(self, out: Path, journal: Path, order: Sequence[str], in_input_order: bool = True):
        self.inputs = {key: i for i, key in enumerate(order)}  # (grows: places of kept keys not among the inputs)
        self.n_inputs = len(self.inputs)
        self.rank = self.inputs if in_input_order else {}
        self.offsets = array("q", [-1]) * len(self.rank)
        self.files = bytearray(len(self.rank))
        self.journal = journal
        self.scratch = scratch_path(out)
        remove_stale_scratch(out)
        self._kept: Any = None
        self._kept_size = 0

    def _slot(self, key: str) -> int:
        slot = self.rank.get(key)
        if slot is None:
            slot = self.rank[key] = len(self.offsets)
            self.offsets.append(-1)
            self.files.append(0)
        return slot

    def wanted(self, key: str) -> bool:
        """Whether ``key`` is among this run's inputs."""
        return self.inputs.get(key, self.n_inputs) < self.n_inputs

    def reserve(self, key: str) -> None:
        """Give ``key`` its place now (a kept result read later goes where it was)."""
        self._slot(key)

    def put_new(self, key: str, offset: int) -> None:
        """A result of this run, at ``offset`` in the journal."""
        slot = self._slot(key)
        self.offsets[slot], self.files[slot] = offset, self.JOURNAL

    def put_kept(self, key: str, line: bytes) -> None:
        """A result kept from before, as its journal line."""
        if self._kept is None:
            self._kept = open(self.scratch, "wb", buffering=1 << 20)
        slot = self._slot(key)
        self.offsets[slot], self.files[slot] = self._kept_size, self.KEPT
        with write_errors(self.scratch, note="a scratch copy of the results kept from before; nothing was lost"):
            self._kept.write(line)
        self._kept_size += len(line)

    def drop(self, key: str) -> None:
        slot = self.rank.get(key)
        if slot is not None:
            self.offsets[slot] = -1

    def __len__(self) -> int:
        return sum(1 for offset in self.offsets if offset >= 0)

    def results(self, decode: Callable[[dict[str, Any]], Any]) -> "StoredResults":
        """Every result in output order, decoded from its line; iterable as often as a writer needs."""
        if self._kept is not None:
            with write_errors(self.scratch, note="a scratch copy of the results kept from before; nothing was lost"):
                self._kept.flush()
        return StoredResults(self, decode)

    def lines(self) -> Iterator[bytes]:
        files = [open(self.journal, "rb")] + ([open(self.scratch, "rb")] if self._kept is not None else [])
        position = [0, 0]
        try:
            for offset, which in zip(self.offsets, self.files):
                if offset < 0:
                    continue
                fh = files[which]
                if position[which] != offset:
                    fh.seek(offset)
                line = fh.readline()
                position[which] = offset + len(line)
                yield line
        finally:
            for fh in files:
                fh.close()

    def close(self) -> None:
        try:
            if self._kept is not None:
                kept, self._kept = self._kept, None
                kept.close()  # on a full disk this raises, flushing its buffered rest
        finally:
            self.scratch.unlink(missing_ok=True)


class StoredResults:
    """A store's results in output order (``len`` without reading them)."""

    def __init__(self, store: ResultStore, decode: Callable[[dict[str, Any]], Any]):
        self.store, self.decode = store, decode
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self.store)
        return self._len

    def __iter__(self) -> Iterator[Any]:
        for line in self.store.lines():
            yield self.decode(json.loads(line))

"""The manifest of a sort: an append-only journal (JSON Lines) inside the ``--into`` folder.

Every step is written *before* it is taken and *after* it is done, so the journal always knows
more than the folders show: after a kill at any moment, the next run (``sort`` again, or
``sort --undo``) reads it, checks on disk the steps that were begun but not reported done, and
goes on without doing anything twice. Lines reach the disk (``fsync``) a batch at a time: a
batch's ``begin`` lines before any of its files is touched, its ``placed`` lines once the new
names are on disk, and only then are a move's originals removed. A line cut short by the kill is
dropped (the step it announced was never started).

Lines, in the order they are written::

    {"op": "sort", "format": 1, "predictions": ..., "predictions_sha256": ..., "mode": ..., ...}   header
    {"op": "mkdir", "path": "Panthera leo"}                    before a folder is made
    {"op": "begin", "id": 7, "source": "/abs/IMG_1.JPG", "dest": "Panthera leo/IMG_1.JPG", "size": ...}
    {"op": "placed", "id": 7, "how": "hardlink", "sha256": ...}   the file is in place (copy: verified)
    {"op": "removed", "id": 7}                                   move: the source is gone
    {"op": "undo"}                                               an undo started
    {"op": "undone", "id": 7}                                    that placement is undone

One sort per folder: a second process is kept out by a lock on the manifest (``flock``, where
the platform has it).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bioclip_edge.runtime.sorting.request import ManifestError, SortFolderError

MANIFEST = ".bioclip-edge-sort.jsonl"
FORMAT = 1
CRASH_ENV = "BIOCLIP_EDGE_SORT_CRASH_AT"  # tests: "STEP:N" kills this process at the N-th STEP


@dataclass
class Step:
    """One placement as the journal tells it."""

    begin: dict[str, Any]
    placed: dict[str, Any] | None = None
    removed: bool = False
    undone: bool = False

    @property
    def finished(self) -> bool:
        """Nothing left to do for the sort (a move also removed its source)."""
        return self.placed is not None and (self.removed or self.begin["mode"] != "move")


@dataclass
class Journal:
    path: Path
    header: dict[str, Any]
    steps: dict[int, Step] = field(default_factory=dict)
    mkdirs: list[str] = field(default_factory=list)
    undo_started: bool = False
    _fh: IO[str] | None = None

    @classmethod
    def read(cls, into: Path) -> "Journal | None":
        """The journal in ``into``, or None when there is none."""
        path = into / MANIFEST
        if not path.is_file():
            return None
        lines = _good_lines(path)
        if not lines:  # a kill before the header was on disk: nothing was done
            path.unlink()
            return None
        if lines[0].get("op") != "sort" or lines[0].get("format") != FORMAT:
            raise ManifestError(f"{path}: not a bioclip-edge sort manifest (or one of a newer version); "
                                "give another --into folder")
        journal = cls(path, lines[0])
        for entry in lines[1:]:
            journal._apply(entry)
        return journal

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        if op == "begin":
            self.steps[int(entry["id"])] = Step(entry)
        elif op == "mkdir":
            self.mkdirs.append(entry["path"])
        elif op == "undo":
            self.undo_started = True
        elif op in ("placed", "removed", "undone"):
            step = self.steps[int(entry["id"])]
            if op == "placed":
                step.placed = entry
            else:
                setattr(step, op, True)

    @classmethod
    def create(cls, into: Path, header: dict[str, Any]) -> "Journal":
        journal = cls(into / MANIFEST, {"op": "sort", "format": FORMAT, **header})
        journal.open()
        journal._write(journal.header)
        return journal

    def open(self) -> None:
        """Open for appending, under an exclusive lock; a torn last line is cut off first."""
        _drop_torn_tail(self.path)
        self._fh = open(self.path, "a", encoding="utf-8", newline="\n")
        _lock(self._fh, self.path)
        fsync_folder(self.path.parent)

    def close(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def write(self, entry: dict[str, Any], sync: bool = True) -> None:
        """Append ``entry``: handed to the OS (a kill cannot lose it), and on disk (a power cut cannot either)
        when ``sync``, else at the next ``sync()``."""
        self._write(entry, sync)
        self._apply(entry)

    def _write(self, entry: dict[str, Any], sync: bool = True) -> None:
        if self._fh is None:
            raise RuntimeError(f"{self.path}: journal written before it was opened")
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._fh.flush()
        if sync:
            os.fsync(self._fh.fileno())

    def sync(self) -> None:
        if self._fh is not None:
            os.fsync(self._fh.fileno())

    def next_id(self) -> int:
        return max(self.steps, default=-1) + 1


def _good_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete line; a last line without its newline (a kill while writing it) is left out."""
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    out = []
    for n, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            entry = json.loads(line)
        except ValueError:
            raise ManifestError(f"{path}: line {n} is not JSON; the manifest was edited or damaged. Undo by hand "
                                "is not possible from it: move the folder aside and sort again") from None
        out.append(entry)
    return out


def _drop_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    raw = path.read_bytes()
    keep = raw.rfind(b"\n") + 1
    if keep != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())


def _lock(fh: IO[str], path: Path) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; one sort per folder is then the user's to keep
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise SortFolderError(f"{path.parent}: another 'bioclip-edge sort' is working in this folder; "
                              "wait for it to end") from None


def fsync_folder(folder: Path) -> None:
    """Make a folder's new entries (a renamed or linked file) survive a power cut (POSIX only)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_crash_counts: dict[str, int] = {}


def crash_point(step: str) -> None:
    """Where the kill tests stop a sort or an undo: ``SIGKILL``, so no clean-up runs, as with a real kill
    or a power cut (only the journal's fsync'd lines and the files count)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    name, _, n = wanted.partition(":")
    if name == step:
        _crash_counts[step] = _crash_counts.get(step, 0) + 1
        if _crash_counts[step] == int(n or 1):
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

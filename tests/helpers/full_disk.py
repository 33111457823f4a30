"""Full disks for tests: a real small tmpfs where this machine lets us mount one, else a fault-
injecting file layer.

``small_tmpfs(folder, size)`` mounts a tmpfs of ``size`` bytes (needs root and CAP_SYS_ADMIN; the
test is skipped where mounting is refused) and ``fill`` leaves only a given number of bytes free
on it, with a ballast file that ``free`` removes: the disk filling mid-run, then the user freeing
space. ``InjectedDisk`` does the same anywhere: every file opened for writing under its folder
shares ``capacity`` bytes, and a write past them raises ``OSError(ENOSPC)`` as the kernel would
(``errno`` set, no file name), or ``EROFS`` with ``read_only``. It replaces ``open`` (builtins and
``io``) for paths under the folder only, so numpy, pyarrow, zipfile and pathlib all go through it.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import functools
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

BALLAST = ".ballast"


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: int) -> Iterator[Path]:
    """A real tmpfs of ``size`` bytes mounted on ``folder`` (skips the test where mount is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path, leave: int) -> None:
    """Take all but ``leave`` bytes of the file system that holds ``folder`` with a ballast file."""
    ballast = folder / BALLAST
    ballast.unlink(missing_ok=True)
    free = shutil.disk_usage(folder).free
    with open(ballast, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def free(folder: Path) -> None:
    (folder / BALLAST).unlink(missing_ok=True)


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


class _LimitedFile(io.RawIOBase):
    """A file whose writes draw on its disk's shared capacity. Not a FileIO, so numpy writes
    through ``write`` rather than into the file descriptor."""

    def __init__(self, disk: "InjectedDisk", path: str, mode: str):
        self.disk, self.name = disk, path
        self._fh = disk.real_open(path, mode.replace("t", "") + ("b" if "b" not in mode else ""), buffering=0)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        room = self.disk.room()
        if room < len(data):
            if room > 0:
                self._fh.write(data[:room])
                self.disk.used += room
            raise OSError(self.disk.errno, os.strerror(self.disk.errno))
        self.disk.used += len(data)
        return self._fh.write(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._fh.seek(pos, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
        super().close()


class InjectedDisk:
    """Files opened for writing under ``root`` share ``capacity`` bytes; ``None``: unlimited."""

    def __init__(self, root: Path, capacity: int | None, read_only: bool = False):
        self.root, self.capacity, self.used = Path(root).absolute(), capacity, 0
        self.errno = errno.EROFS if read_only else errno.ENOSPC
        self.real_open = builtins.open

    def room(self) -> int:
        if self.errno == errno.EROFS and self.capacity is not None:
            return 0
        return 1 << 62 if self.capacity is None else max(0, self.capacity - self.used)

    def open(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
        writing = isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and opener is None
        if not writing or self.root not in Path(os.fsdecode(file)).absolute().parents:
            return self.real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        raw = _LimitedFile(self, os.fsdecode(file), mode)
        if "b" in mode:
            return raw
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors=errors, newline=newline, write_through=True)

    def install(self, monkeypatch) -> "InjectedDisk":
        monkeypatch.setattr(builtins, "open", self.open)
        monkeypatch.setattr(io, "open", self.open)
        return self


class Disk:
    """One folder on a disk that a test fills and frees: a real tmpfs, or an ``InjectedDisk``."""

    PAGE = 4096  # tmpfs allocates whole pages

    def __init__(self, kind: str, folder: Path, injected: InjectedDisk | None = None):
        self.kind, self.folder, self.injected = kind, folder, injected

    def leave(self, pages: float) -> None:
        """Let only ``pages`` more pages be written (an injected disk counts bytes: half the page size each)."""
        if self.injected is not None:
            self.injected.capacity = self.injected.used + int(pages * self.PAGE / 2)
        else:
            fill(self.folder, int(pages * self.PAGE))

    def make_room(self) -> None:
        if self.injected is not None:
            self.injected.capacity = None
        else:
            free(self.folder)

    def leftovers(self) -> list[Path]:
        """Temporary files left behind (there must be none)."""
        return sorted(p for p in self.folder.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name)


@functools.lru_cache(maxsize=1)
def tmpfs_allowed() -> bool:
    """Whether this machine lets the tests mount a tmpfs (tried once)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", folder], capture_output=True)
        if done.returncode == 0:
            subprocess.run(["umount", "-l", folder], capture_output=True)
        return done.returncode == 0


@contextlib.contextmanager
def disk_of_kind(kind: str, folder: Path, monkeypatch, size: int = 1 << 20) -> Iterator[Disk]:
    """``kind`` "tmpfs" (skipped where mounting is refused), "injected" (everywhere), or "best": a
    tmpfs where this machine allows one, else the injected layer."""
    if kind == "best":
        kind = "tmpfs" if tmpfs_allowed() else "injected"
    if kind == "tmpfs":
        with small_tmpfs(folder, size):
            yield Disk(kind, folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    yield Disk(kind, folder, InjectedDisk(folder, None).install(monkeypatch))

"""Atomic file writes: a reader (or a killed run) sees the old file or the new one, never half of one.

One writer for every file the tool produces (outputs, checkpoints, embeddings, label matrices,
manifests): write a temporary file beside the target, flush it to disk, then rename it over the
target. The temporary name carries the process id, so two processes never share one.

A write the disk refuses (full, read-only, failing, a quota, a size limit, no permission) becomes
a ``WriteFailure`` naming the real target, not the temporary file, with the space needed and free
where that is known; the temporary file is removed first, so the old target is untouched and the
space it took is free again. Writers that cannot go through a temporary file (an export's working
folder, a report folder) wrap their work in ``write_errors`` for the same message.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO, Iterator

from bioclip_edge.errors import WriteFailure

# errno values that mean "the disk refused the write", not "the input is bad"
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.EACCES, errno.EPERM})
# the ones that can only come from writing: a raw OSError with one of these is a write failure wherever it came from
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
_SHORT_WRITE = re.compile(r"(\d+) requested and (\d+) written")


def temporary_path(path: str | os.PathLike) -> Path:
    """Where ``path`` is written before the rename: same folder (same file system), hidden."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, size_hint: int | None = None) -> Iterator[BinaryIO]:
    """Open a binary stream whose content replaces ``path`` only when the block ends without error.

    ``size_hint``: the bytes the file will take, when known, for the message on a full disk."""
    path = Path(path)
    tmp = temporary_path(path)
    written = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            try:
                yield fh
                written = fh.tell()
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                written = _position(fh)
                raise
        os.replace(tmp, path)
    except BaseException as exc:
        cause = _with_errno(exc, path)  # before the temporary file's space is given back
        with contextlib.suppress(OSError):  # none there, or a read-only file system
            tmp.unlink()
        if isinstance(cause, OSError) and _ours(cause, path, tmp):
            needed, at_least = (size_hint, False) if size_hint else (written or None, True)
            raise write_failure(cause, path, needed, at_least) from exc
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8, newlines as given)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path, size_hint=len(payload)) as fh:
        fh.write(payload)
    return Path(path)


@contextlib.contextmanager
def write_errors(path: str | os.PathLike, note: str = "") -> Iterator[None]:
    """Turn a write the disk refused inside the block into a ``WriteFailure`` naming the file
    (the OSError's own file name when it has one, else ``path``); ``note`` says what was kept or
    removed. Other errors pass through unchanged."""
    try:
        yield
    except WriteFailure as exc:
        if note and not exc.note:
            exc.note = note
        raise
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise write_failure(exc, Path(exc.filename) if exc.filename else Path(path), note=note) from exc


def write_failure(exc: OSError, path: str | os.PathLike | None, needed: int | None = None, at_least: bool = False,
                  note: str = "") -> WriteFailure:
    """A ``WriteFailure`` for ``exc`` raised while writing ``path``, with the free space (and mount
    point) of the disk that holds it."""
    free, mount = free_space(path) if path is not None else (None, None)
    return WriteFailure(exc.errno, exc.strerror or str(exc), str(path) if path is not None else None, needed=needed,
                        at_least=at_least, free=free, mount=mount, note=note)


def free_space(path: str | os.PathLike) -> tuple[int | None, str | None]:
    """(bytes free to this user, mount point) of the file system that holds ``path`` or would:
    measured at its nearest existing folder. (None, None) where even that cannot be read."""
    folder = Path(os.path.abspath(path))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None, None
    mount = folder if folder.is_dir() else folder.parent
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    return free, str(mount)


def is_write_error(exc: BaseException) -> bool:
    """Whether an OSError can only mean a refused write (a full, read-only or size-limited file system)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def _with_errno(exc: BaseException, path: Path) -> BaseException:
    """numpy's ``tofile`` (``np.save`` into a real file) reports a short write as ``OSError("N requested
    and M written")`` with no errno: find the cause from the file system (read-only, full), else EIO."""
    match = _SHORT_WRITE.search(str(exc)) if type(exc) is OSError and exc.errno is None else None
    if match is None:
        return exc
    try:
        stats = os.statvfs(path.parent)
        read_only, free = bool(stats.f_flag & os.ST_RDONLY), stats.f_bavail * stats.f_frsize
    except OSError:
        read_only, free = False, 0
    missing = int(match[1]) - int(match[2])
    code = errno.EROFS if read_only else errno.ENOSPC if free < max(missing, 1 << 20) else errno.EIO
    return OSError(code, os.strerror(code))


def _position(fh: BinaryIO) -> int:
    try:
        return fh.tell()
    except (OSError, ValueError):
        return 0


def _ours(exc: OSError, path: Path, tmp: Path) -> bool:
    """A refused write of this file (or of its folder), not an error the block raised while reading something else."""
    if isinstance(exc, WriteFailure) or exc.errno not in WRITE_ERRNOS:
        return False
    if exc.filename is None:
        return True
    named = Path(os.fsdecode(exc.filename)).absolute()
    return named in (path.absolute(), tmp.absolute()) or named in path.absolute().parents

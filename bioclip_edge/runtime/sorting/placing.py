"""Putting one file in place without ever overwriting one: links, verified copies, and their checks.

A new name appears only complete: a copy is written to a hidden temporary file beside its target,
flushed to disk, read back and compared with the source (size and SHA-256), and only then given
its name, by a hard link that fails if the name exists (``os.link`` never replaces a file; on file
systems without hard links, a rename after checking the name is free). So a kill leaves either no
file or the whole verified file under the target name, plus at most one temporary file that the
next run removes. The caller makes new names durable (``journal.fsync_folder``, once per folder
per batch) before it journals them or removes an original.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from bioclip_edge.runtime.sorting.journal import crash_point
from bioclip_edge.runtime.sorting.request import SortError

CHUNK = 1 << 20
CROSS_DEVICE = {errno.EXDEV}
NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EACCES}


class PlacingError(SortError):
    """A file that cannot be linked or copied where the sort puts it."""


def temporary(dest: Path) -> Path:
    """Where a copy is written before it gets ``dest``'s name (same folder, hidden, found again after a kill)."""
    return dest.with_name(f".{dest.name}.bioclip-sort-tmp")


def digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def matches(path: Path, size: int, sha256: str) -> bool:
    """``path`` is a regular file (or a link to one) holding exactly these bytes."""
    try:
        return path.is_file() and path.stat().st_size == size and digest(path)[1] == sha256
    except OSError:
        return False


def copy_verified(source: Path, dest: Path) -> str:
    """Copy ``source`` to the new name ``dest`` (times kept), verified byte for byte; returns its SHA-256."""
    tmp = temporary(dest)
    h = hashlib.sha256()
    with open(source, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(CHUNK):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    shutil.copystat(source, tmp)
    crash_point("copied")
    size = source.stat().st_size
    if not matches(tmp, size, h.hexdigest()):
        tmp.unlink(missing_ok=True)
        raise PlacingError(f"{dest}: the copy of {source} does not read back as written (disk full or failing?); "
                           "the source was left as it is")
    publish(tmp, dest)
    return h.hexdigest()


def publish(tmp: Path, dest: Path) -> None:
    """Give the finished ``tmp`` the name ``dest``, refusing to replace a file already there."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise PlacingError(f"{dest}: a file of this name appeared while sorting; it was left as it is") from None
    except OSError as exc:
        if exc.errno not in NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):
            raise PlacingError(f"{dest}: a file of this name appeared while sorting; it was left as it is") from None
        os.replace(tmp, dest)
    else:
        tmp.unlink()


def link(source: Path, dest: Path) -> str:
    """Hard-link ``source`` as ``dest``; across file systems a symbolic link. Returns which was made."""
    try:
        os.link(source, dest)
        how = "hardlink"
    except OSError as exc:
        if exc.errno not in CROSS_DEVICE:
            raise _no_link(source, dest, exc) from None
        try:
            os.symlink(os.path.abspath(source), dest)
        except OSError as sym:
            raise _no_link(source, dest, sym) from None
        how = "symlink"
    return how


def _no_link(source: Path, dest: Path, exc: OSError) -> PlacingError:
    if isinstance(exc, FileExistsError):
        return PlacingError(f"{dest}: a file of this name appeared while sorting; it was left as it is")
    return PlacingError(f"{dest}: cannot link {source} there ({exc.strerror}); this file system may not support "
                        "links: use --mode copy")


def move_into(source: Path, dest: Path, hash_links: bool = True) -> tuple[str, str | None]:
    """Put ``source``'s bytes at ``dest`` (the source stays until the caller removes it): a hard link on the
    same file system (the very same bytes), else a verified copy. Returns (how, sha256); no sha256 for a
    hard link unless ``hash_links``."""
    try:
        os.link(source, dest)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise _no_link(source, dest, exc) from None
        if exc.errno not in CROSS_DEVICE | NO_HARD_LINKS:
            raise
        return "copy", copy_verified(source, dest)
    return "hardlink", digest(dest)[1] if hash_links else None


def is_link_to(dest: Path, source: Path) -> bool:
    """``dest`` is a hard link to ``source`` or a symbolic link naming it."""
    try:
        if dest.is_symlink():
            return os.readlink(dest) == os.path.abspath(source)
        return source.exists() and os.path.samefile(dest, source)
    except OSError:
        return False


def remove_source(source: Path) -> None:
    """Take the original away (the caller has made its new name durable first)."""
    source.unlink(missing_ok=True)

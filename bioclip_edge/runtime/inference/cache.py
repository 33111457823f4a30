"""The user's cache folder for things that only ever save time: compiled OpenVINO models, text
labels' embeddings, and stamps of bundle files whose sha256 was already checked.

``$BIOCLIP_EDGE_CACHE_DIR`` moves it (default ``$XDG_CACHE_HOME/bioclip-edge``, else
``~/.cache/bioclip-edge``); ``off`` switches every cache off. A cache that cannot be created
(read-only home on a field box) is skipped silently: a run never fails for want of one.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV = "BIOCLIP_EDGE_CACHE_DIR"


def cache_dir(kind: str) -> Path | None:
    """``<cache>/<kind>``, created, or None when caching is off or the folder is not writable."""
    setting = os.environ.get(CACHE_ENV, "")
    if setting.lower() in ("off", "0", "none"):
        return None
    base = Path(setting) if setting else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bioclip-edge"
    folder = base / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("no %s cache (%s: %s)", kind, folder, exc)
        return None
    return folder if os.access(folder, os.W_OK) else None


def file_stamp(kind: str, path: Path, extra: str) -> Path | None:
    """A cache entry under ``<cache>/<kind>`` for this very file as it is now (path, size, mtime,
    inode) and ``extra``; None when caching is off or the file is gone. Any change to the file
    gives another name, so a stale entry is never read."""
    folder = cache_dir(kind)
    if folder is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{extra}"
    return folder / hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def _stamp(path: Path, digest: str) -> Path | None:
    """Where the stamp for ``path`` as it is now and ``digest`` lives."""
    return file_stamp("verified", path, digest)


def already_verified(path: Path, digest: str) -> bool:
    """True when this very file (same size, mtime and inode) was hashed to ``digest`` before."""
    stamp = _stamp(path, digest)
    return stamp is not None and stamp.exists()


def mark_verified(path: Path, digest: str) -> None:
    stamp = _stamp(path, digest)
    if stamp is None:
        return
    try:
        stamp.touch()
    except OSError as exc:
        log.debug("could not write verification stamp %s (%s)", stamp, exc)

"""Folder and file names that every file system accepts.

Sorted folders travel: a card sorted on Linux is copied to an exFAT drive or opened on Windows.
So a label becomes a name without path separators or the characters Windows refuses
(``<>:"/\\|?*``, control characters), without a trailing dot or space, not one of Windows'
reserved device names (``CON``, ``NUL``, ``COM1`` ..., with any extension), at most
``MAX_BYTES`` bytes of UTF-8, in Unicode NFC (macOS would otherwise store another spelling).
Names are compared case-insensitively: on the case-insensitive file systems of Windows and macOS
``Lion`` and ``lion`` are one folder.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 120  # well under the 255-byte limit of ext4, NTFS, APFS and exFAT, leaving room for a suffix
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_name(text: str) -> str:
    """``text`` as one path component that every common file system stores unchanged."""
    name = unicodedata.normalize("NFC", _FORBIDDEN.sub("_", str(text))).strip()
    name = name.rstrip(". ") or "_"
    if name.split(".")[0].strip().lower() in _RESERVED:
        name = "_" + name
    while len(name.encode("utf-8")) > MAX_BYTES:
        name = name[:-1].rstrip(". ")
    return name or "_"


def safe_file_name(name: str) -> str:
    """A file's own name, made safe, keeping its extension (which readers go by)."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 16:
        return safe_name(name)
    return f"{safe_name(stem)}.{safe_name(suffix)}"


def with_suffix_number(name: str, n: int) -> str:
    """``IMG_1.JPG`` -> ``IMG_1__2.JPG``: the ``n``-th file of that name in one folder."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        return f"{name}__{n}"
    return f"{stem}__{n}.{suffix}"


def key(name: str) -> str:
    """What makes two names the same file on a case-insensitive file system."""
    return unicodedata.normalize("NFC", name).casefold()

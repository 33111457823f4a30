"""Turn the user's inputs (files, folders, list files) into an ordered list of images to read.

Rules, chosen so a run over a memory card is predictable and loses nothing:

* A folder is walked recursively in sorted order; files whose suffix is one of
  ``IMAGE_SUFFIXES`` or ``VIDEO_SUFFIXES`` (any letter case) are taken. Linked folders are followed, but each real
  folder is walked once, so link loops end. A sub-folder whose name ends in ``.jpg`` is still a
  folder and is walked.
* Inside folders, broken links and link loops with an image suffix are kept as items carrying a
  ``problem``: they come out as failure rows instead of vanishing silently.
* A file ending in ``.txt``/``.lst``/``.list`` lists one path per line (blank lines and lines
  starting with ``#`` are skipped); relative lines are relative to the list file's folder. A
  listed folder is a failure row ("is a directory"): lists name image files.
* Any other file given by name is taken as an image whatever its suffix (the user asked).
* An input that does not exist at all stops the run before any work (a typo, not a bad image).

``filepath`` is what the outputs show: the absolute path, or with ``relative=True`` the path
relative to the folder (or list file's folder) it came from, always with forward slashes as the
MegaDetector format prefers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from bioclip_edge.errors import UserError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg"})  # sampled by runtime.images.video
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})


class InputError(UserError, ValueError):
    """An input named on the command line that does not exist or cannot be listed."""


@dataclass(frozen=True)
class ImageItem:
    path: Path  # where to read it from
    filepath: str  # how outputs name it
    problem: str | None = None  # known before decoding (dangling link, listed folder, ...)
    data: bytes | None = field(default=None, repr=False, compare=False)  # the file's bytes, when read elsewhere (Ray Data)


def is_image_name(name: str) -> bool:
    """An input a folder walk takes: a still image or a video (any letter case)."""
    return os.path.splitext(name)[1].lower() in MEDIA_SUFFIXES


def is_video_name(name: str | os.PathLike) -> bool:
    """A video by its suffix (any letter case): decoded by ``runtime.images.video``, not Pillow."""
    return os.path.splitext(os.fspath(name))[1].lower() in VIDEO_SUFFIXES


def discover(inputs: Iterable[str | os.PathLike], relative: bool = False) -> list[ImageItem]:
    """All images named by ``inputs``, in order, without duplicates (same path given twice)."""
    items: list[ImageItem] = []
    seen: set[str] = set()
    for raw in inputs:
        for item in _expand(Path(raw), relative):
            key = os.path.abspath(item.path)
            if key not in seen:
                seen.add(key)
                items.append(item)
    return items


def _expand(path: Path, relative: bool) -> Iterator[ImageItem]:
    if path.is_dir():
        yield from _walk(path, relative)
    elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        yield from _read_list(path, relative)
    elif path.is_file():
        yield ImageItem(path, _name(path, path.parent if relative else None))
    elif path.is_symlink():  # exists as a link, but its target does not resolve
        yield ImageItem(path, _name(path, path.parent if relative else None), _link_problem(path))
    else:
        raise InputError(f"{path}: no such file or folder; check the path (inputs are image files, folders or .txt lists)")


def _walk(root: Path, relative: bool) -> Iterator[ImageItem]:
    visited: set[str] = set()
    base = root if relative else None

    def walk(folder: Path) -> Iterator[ImageItem]:
        real = os.path.realpath(folder)
        if real in visited:
            return  # a linked folder already walked (or a loop back to an ancestor)
        visited.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield ImageItem(folder, _name(folder, base), f"cannot list folder ({exc.strerror or exc})")
            return
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(path)
            elif is_image_name(entry.name):
                problem = _link_problem(path) if entry.is_symlink() and not path.exists() else None
                yield ImageItem(path, _name(path, base), problem)
        for sub in subfolders:
            yield from walk(sub)

    yield from walk(root)


def _read_list(list_file: Path, relative: bool) -> Iterator[ImageItem]:
    try:
        text = list_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{list_file}: cannot read this list of image paths ({exc}); it must be UTF-8 text, one path per line") from None
    base = list_file.parent
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        path = Path(line) if os.path.isabs(line) else base / line
        name = _name(path, base if relative else None)
        if path.is_dir():
            yield ImageItem(path, name, "is a directory, not an image file (list files name images; pass folders on the command line)")
        elif path.is_symlink() and not path.exists():
            yield ImageItem(path, name, _link_problem(path))
        else:
            yield ImageItem(path, name)  # a missing file is a per-image failure found at decode time


def _link_problem(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        import errno

        if exc.errno == errno.ELOOP:
            return "symbolic link loop: the chain of links never reaches a file"
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"dangling symbolic link: target {target!r} does not exist"


def _name(path: Path, base: Path | None) -> str:
    if base is None:
        return Path(os.path.abspath(path)).as_posix()
    try:
        return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()
    except ValueError:  # different drive on Windows
        return Path(os.path.abspath(path)).as_posix()


def require_images(items: list[ImageItem], inputs: Iterable[str | os.PathLike]) -> list[ImageItem]:
    """Stop before any work when the inputs hold no image at all: almost always a wrong folder."""
    if not items:
        where = ", ".join(str(i) for i in inputs)
        kinds = ", ".join(sorted(s.lstrip(".") for s in MEDIA_SUFFIXES))
        raise InputError(f"{where}: no images found (looked recursively for {kinds}, any letter case); "
                         "check the folder, or pass a .txt file listing image paths")
    return items

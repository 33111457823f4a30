"""Build the preview site of a predictions file: ``build_preview(PreviewConfig(...))``.

What ``bioclip-edge preview`` and ``classify --preview`` call. The folder it writes::

    DIR/index.html                     the run, files per label, score histogram, failures count
    DIR/label-0001-lion.html           files filed under a label, best score first, ``per_page`` a page
    DIR/label-0001-lion-2.html         ... its second page
    DIR/failures.html                  every failed file with its reason (paged the same way)
    DIR/thumbs/<hash>.jpg              thumbnails (reused by the next run) and placeholders
    DIR/.bioclip-edge-preview          marks the folder as ours

A folder is written only when it is new, empty or marked as a preview (so a typo never fills a
photo folder with pages); pages of an earlier run that this one did not write are removed.
Relative image paths (``--relative-paths``) start from ``image_root``: by default the folder the
predictions file is in. All links are relative: the folder can be zipped and mailed (links to the
original photos then stop working, the pages and thumbnails do not).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from bioclip_edge.errors import OutputTargetError
from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.preview.gallery import Links, label_page
from bioclip_edge.runtime.preview.items import Item
from bioclip_edge.runtime.preview.pages import banner_for, failures_page, index_page
from bioclip_edge.runtime.preview.reading import Predictions, read_predictions
from bioclip_edge.runtime.preview.thumbnails import ThumbConfig, make_thumbnails

MARKER = ".bioclip-edge-preview"
THUMBS = "thumbs"
OUR_PAGES = re.compile(r"^(index|failures(-\d+)?|label-\d+.*)\.html$")


@dataclass(frozen=True)
class PreviewConfig:
    """What to preview and where; ``image_root`` None: the predictions file's folder."""

    predictions: Path
    out: Path
    image_root: Path | None = None
    per_page: int = 100
    thumbs: ThumbConfig = field(default_factory=ThumbConfig)


@dataclass(frozen=True)
class PreviewSummary:
    out: Path
    files: int
    labels: int
    failures: int
    pages: int

    def line(self) -> str:
        return (f"preview of {self.files} file(s): {self.labels} label(s), {self.failures} failure(s), {self.pages} page(s); "
                f"open {self.out / 'index.html'}")


def check_preview_target(out: str | os.PathLike) -> Path:
    """Refuse (exit 2) an ``--out`` that is a file, or a folder holding other things than a preview."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputTargetError(f"{out}: is a file; --out must be a folder for the preview site (a new one, or an earlier preview)")
    if out.is_dir() and not (out / MARKER).exists() and any(out.iterdir()):
        raise OutputTargetError(f"{out}: is a folder that holds other files and no earlier preview; "
                                "give a new or empty folder for --out")
    return out


def build_preview(config: PreviewConfig, meta: dict[str, Any] | None = None) -> PreviewSummary:
    """Write the site of ``config.predictions`` into ``config.out``; ``meta``: facts about the run the
    caller knows (``Classifier.description.to_dict()``), used where the file does not record them."""
    if config.per_page < 1:
        raise OutputTargetError(f"--per-page must be at least 1 (got {config.per_page})")
    out = check_preview_target(config.out)
    predictions = read_predictions(config.predictions)
    known = {k: v for k, v in predictions.meta.items() if v not in (None, "")}
    predictions.meta = {**(meta or {}), **known}
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / MARKER, "bioclip-edge preview site\n")
    links = _links(predictions, out, config)
    written = write_pages(predictions, out, links, config.per_page)
    _remove_stale(out, written)
    groups = {i.label for i in predictions.items if i.failure is None}
    return PreviewSummary(out, len(predictions.items), len(groups), sum(i.failure is not None for i in predictions.items), len(written))


def _links(predictions: Predictions, out: Path, config: PreviewConfig) -> Links:
    """Make the thumbnails; the links from a page to each item's thumbnail and original file."""
    root = Path(config.image_root) if config.image_root is not None else predictions.path.parent
    source = {id(item): _source(item.filepath, root) for item in predictions.items}
    wanted: dict[Path, set[int | None]] = {}
    for item in predictions.items:
        if item.failure is None:
            wanted.setdefault(source[id(item)], set()).update([f.number for f in item.frames] or [None])
    names = make_thumbnails(wanted, out / THUMBS, config.thumbs)

    def thumb(item: Item, frame: int | None) -> str:
        return f"{THUMBS}/{names[(str(source[id(item)]), frame)]}"

    def original(item: Item) -> str | None:
        return relative_link(source[id(item)], out)

    return Links(thumb=thumb, original=original)


def _source(filepath: str, root: Path) -> Path:
    path = Path(filepath)
    return path if path.is_absolute() else root / path


def relative_link(target: Path, start: Path) -> str:
    """``target`` relative to the folder ``start`` (a file URL where no relative path exists: another drive)."""
    try:
        return os.path.relpath(os.path.abspath(target), os.path.abspath(start))
    except ValueError:
        return Path(os.path.abspath(target)).as_uri()


def write_pages(predictions: Predictions, out: Path, links: Links, per_page: int) -> set[str]:
    """Every page of the site; returns the file names written."""
    banner = banner_for(predictions.meta)
    failed = [i for i in predictions.items if i.failure is not None]
    groups = group_by_label(i for i in predictions.items if i.failure is None)
    counts = [(label, len(members)) for label, members in groups]
    page_names = {label: label_file(n, label) for n, (label, _) in enumerate(groups, start=1)}
    written = {"index.html"}
    for label, members in groups:
        written |= _paged(out, members, per_page, page_names[label], lambda chunk, first, number, pages, name_of, label=label, total=len(members):
                          label_page(label, chunk, first, number, pages, name_of, links, banner, total))
    written |= _paged(out, failed, per_page, "failures.html", lambda chunk, first, number, pages, name_of:
                      failures_page(chunk, first, number, pages, name_of, links.original, banner, len(failed)))
    index = index_page(predictions.path.name, predictions.fmt, predictions.meta, predictions.items, counts,
                       page_names.__getitem__, len(failed))
    write_atomic(out / "index.html", index)
    return written


def _paged(out: Path, items: Sequence[Item], per_page: int, first_name: str, render: Callable[..., str]) -> set[str]:
    """Write ``items`` ``per_page`` a page (one page even when empty); returns the page names."""
    pages = max(1, -(-len(items) // per_page))

    def name_of(number: int) -> str:
        return first_name if number == 1 else first_name.removesuffix(".html") + f"-{number}.html"

    for number in range(1, pages + 1):
        start = (number - 1) * per_page
        write_atomic(out / name_of(number), render(items[start:start + per_page], start + 1, number, pages, name_of))
    return {name_of(n) for n in range(1, pages + 1)}


def group_by_label(items: Iterable[Item]) -> list[tuple[str, list[Item]]]:
    """Items by top-1 label, best score first within a label; labels by how many files they hold."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(str(item.label), []).append(item)
    for members in groups.values():
        members.sort(key=lambda i: (-i.score, i.filepath))
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def label_file(number: int, label: str) -> str:
    """A label page's file name: its rank, then an ASCII slug of the label (any label is a safe name)."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"label-{number:04d}" + (f"-{slug}" if slug else "") + ".html"


def _remove_stale(out: Path, written: set[str]) -> None:
    """Pages an earlier run wrote that this one did not (labels no longer seen, fewer pages)."""
    for path in out.glob("*.html"):
        if OUR_PAGES.match(path.name) and path.name not in written:
            path.unlink(missing_ok=True)

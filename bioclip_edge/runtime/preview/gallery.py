"""The cards of the label pages: a thumbnail with its boxes, the file path, the score and the top-3;
a video as a strip of its sampled frames.

Boxes are absolutely positioned ``div``s over the thumbnail, in percent of its size (MegaDetector's
bboxes are normalised x, y, width, height from the top-left corner), so one thumbnail serves with
and without boxes and the box keeps a readable label at any zoom.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from bioclip_edge.runtime.preview.items import Box, Frame, Item
from bioclip_edge.runtime.preview.layout import href, page, pager, text


@dataclass(frozen=True)
class Links:
    """Where a card's pictures are, relative to the page: a thumbnail per (item, frame), the original file."""

    thumb: Callable[[Item, "int | None"], str]
    original: Callable[[Item], "str | None"]


def label_page(label: str, items: Sequence[Item], first: int, number: int, pages: int, name_of: Callable[[int], str],
               links: Links, banner: str | None, total: int) -> str:
    """Page ``number`` of ``pages`` of the files filed under ``label``: ``items`` are this page's, best
    first, the first of them the ``first``-th (from 1) of ``total``."""
    nav = pager(number, pages, name_of)
    body = (f'<p>{total} file(s) with top-1 label <b>{text(label)}</b>, by score; '
            f'showing {first}-{first + len(items) - 1}.</p>{nav}'
            f'<div class="grid">{"".join(card(item, links) for item in items)}</div>{nav}')
    return page(f"{label} ({total})", body, banner, crumbs='<a href="index.html">&larr; index</a>')


def card(item: Item, links: Links, note: str = "") -> str:
    """One file: its picture (or frame strip), path, score and top-3; ``note`` (HTML, already
    escaped) ends the caption, for pages that say why the file is shown."""
    if item.is_video:
        pictures = f'<div class="strip">{"".join(_frame(item, f, links) for f in item.frames)}</div>'
        kind = "card video"
    else:
        pictures = _picture(links.thumb(item, None), item.filepath, item.boxes, links.original(item))
        kind = "card"
    score = f'<div class="score">{text(item.label)} {item.score:.4f}</div>' if item.top else ""
    return (f'<figure class="{kind}">{pictures}<figcaption><div class="path">{text(item.filepath)}</div>'
            f"{score}{_top(item.top)}{_when(item)}{note}</figcaption></figure>")


def _frame(item: Item, frame: Frame, links: Links) -> str:
    best = f"{text(frame.top[0][0])} {frame.top[0][1]:.3f}" if frame.top else f"{len(frame.boxes)} box(es), no label"
    picture = _picture(links.thumb(item, frame.number), f"{item.filepath} frame {frame.number}", frame.boxes, None)
    return f'<div class="frame">{picture}<div>frame {frame.number}: {best}</div></div>'


def _picture(src: str, alt: str, boxes: Sequence[Box], original: str | None) -> str:
    inner = f'<img src="{href(src)}" alt="{text(alt)}">' + "".join(_box(b) for b in boxes)
    if original:
        return f'<a class="pic" href="{href(original)}" title="open the original">{inner}</a>'
    return f'<span class="pic">{inner}</span>'


def _box(box: Box) -> str:
    x, y, w, h = (min(1.0, max(0.0, v)) for v in box.bbox)
    w, h = min(w, 1.0 - x), min(h, 1.0 - y)
    conf = f" {box.conf:.2f}" if box.conf is not None else ""
    label = f" &middot; {text(box.top[0][0])} {box.top[0][1]:.2f}" if box.top else ""
    return (f'<div class="box" style="left:{100 * x:.2f}%;top:{100 * y:.2f}%;width:{100 * w:.2f}%;height:{100 * h:.2f}%">'
            f"<span>{text(box.category)}{conf}{label}</span></div>")


def _top(top: Sequence[tuple[str, float]]) -> str:
    if not top:
        return ""
    return '<ol class="top">' + "".join(f"<li>{text(label)} {score:.4f}</li>" for label, score in top) + "</ol>"


def _when(item: Item) -> str:
    """Capture time and, with ``--sequence-gap``, the burst the image belongs to."""
    parts = [str(item.extra["datetime"])] if item.extra.get("datetime") else []
    if item.extra.get("seq_id"):
        parts.append(f"sequence {item.extra['seq_id']}, frame {item.extra.get('frame_num', '?')} of {item.extra.get('seq_num_frames', '?')}")
    return f'<div class="note">{text("; ".join(parts))}</div>' if parts else ""

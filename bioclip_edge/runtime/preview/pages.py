"""The index page (what ran, the random-weights banner, files per label, the score histogram, the
failures count) and the failures pages (each failed file with its reason).

Facts a format does not record (CSV and JSON Lines hold no model or backend) are shown as
"not recorded", never guessed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from bioclip_edge.runtime.preview.charts import label_bars, score_histogram
from bioclip_edge.runtime.preview.items import Item
from bioclip_edge.runtime.preview.layout import href, page, pager, text

RANDOM_BANNER = ("RANDOM WEIGHTS: this output was made by a bundle exported from a randomly initialised model. "
                 "Its labels and scores mean nothing; use it to test the pipeline only.")
META_ROWS = (("model", "model"), ("architecture", "architecture"), ("variant", "variant"), ("precision", "precision"),
             ("engine", "engine"), ("backend", "backend"), ("labels", "labels"), ("top-k", "top_k"), ("mode", "mode"),
             ("detector", "detector"), ("decoding", "decode"), ("video sampling", "video_sampling"),
             ("video roll-up", "video_rollup"), ("bioclip-edge", "bioclip_edge_version"))
NOT_RECORDED = "not recorded in this output"


def banner_for(meta: dict[str, Any]) -> str | None:
    """The warning every page carries when the run's weights were random."""
    return RANDOM_BANNER if meta.get("random_weights") else None


def index_page(source: str, fmt: str, meta: dict[str, Any], items: Sequence[Item], counts: Sequence[tuple[str, int]],
               page_of: Callable[[str], str], failures: int) -> str:
    """The site's front page."""
    classified = [i for i in items if i.failure is None]
    videos = sum(1 for i in items if i.is_video)
    tiles = (_tile("files", len(items)) + _tile("classified", len(classified)) + (_tile("videos", videos) if videos else "")
             + _tile("labels seen", len(counts))
             + _tile("failed", f'<a href="failures.html">{failures}</a>' if failures else "0", raw=True))
    body = (f'<div class="tiles">{tiles}</div>'
            f"<section><h2>Run</h2>{_meta_table(source, fmt, meta)}</section>"
            f"<section><h2>Files per top-1 label</h2>{label_bars(counts, page_of)}</section>"
            f"<section><h2>Top-1 scores</h2>{score_histogram([i.score for i in classified])}"
            f'<p class="note">{_score_note(meta)}</p></section>'
            f'<section><h2>Failures</h2><p><a href="failures.html">{failures} file(s) failed</a></p></section>')
    return page(f"Preview: {source}", body, banner_for(meta))


def _tile(name: str, value: object, raw: bool = False) -> str:
    return f'<div class="tile"><b>{value if raw else text(value)}</b>{text(name)}</div>'


def _meta_table(source: str, fmt: str, meta: dict[str, Any]) -> str:
    rows = [("predictions", f"{source} ({fmt})")]
    rows += [(name, meta[key] if meta.get(key) not in (None, "") else NOT_RECORDED) for name, key in META_ROWS
             if key in meta or key in ("model", "variant", "backend")]
    if meta.get("warning"):
        rows.append(("warning", meta["warning"]))
    return '<table class="meta">' + "".join(f"<tr><td>{text(k)}</td><td>{text(v)}</td></tr>" for k, v in rows) + "</table>"


def _score_note(meta: dict[str, Any]) -> str:
    labels = meta.get("labels")
    chance = f" With {labels} labels, chance is {1 / labels:.3f}." if isinstance(labels, int) and labels > 0 else ""
    return "Scores are softmax probabilities over the whole label set; with many labels even a clear winner may score low." + chance


def failures_page(items: Sequence[Item], first: int, number: int, pages: int, name_of: Callable[[int], str],
                  original: Callable[[Item], "str | None"], banner: str | None, total: int) -> str:
    """Page ``number`` of the failed files, each with its reason."""
    nav = pager(number, pages, name_of)
    rows = "".join(_failure_row(i, first + n, original(i)) for n, i in enumerate(items))
    table = f'<table class="fail"><tr><th>#</th><th>file</th><th>reason</th></tr>{rows}</table>' if items else "<p>No file failed.</p>"
    body = f"<p>{total} file(s) failed.</p>{nav}{table}{nav}"
    return page(f"Failures ({total})", body, banner, crumbs='<a href="index.html">&larr; index</a>')


def _failure_row(item: Item, number: int, original: str | None) -> str:
    name = f'<a href="{href(original)}">{text(item.filepath)}</a>' if original else text(item.filepath)
    return f"<tr><td>{number}</td><td>{name}</td><td>{text(item.failure)}</td></tr>"

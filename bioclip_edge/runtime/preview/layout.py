"""The frame every preview page shares: the HTML skeleton with its inline style, escaping, links, pager.

Plain HTML with one inline ``<style>``: no script, no font, no file from anywhere else, so a page
renders the same from a mailed zip as from the disk it was made on. All text goes through
``text`` (``html.escape``) and every link through ``href`` (URL-quoted, relative), because
file paths and label names hold spaces, ``#``, ``&``, quotes and non-ASCII letters.
"""

from __future__ import annotations

import html
from typing import Callable
from urllib.parse import quote

STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f6f3;color:#222}
header{background:#2f4f3a;color:#fff;padding:10px 18px}header a{color:#d8f0d8}
header h1{font-size:20px;margin:0 0 4px 0}main{padding:12px 18px}
.banner{background:#b3261e;color:#fff;font-weight:bold;padding:10px 18px;font-size:15px}
table.meta td{padding:1px 10px 1px 0;vertical-align:top}table.meta td:first-child{color:#666}
.tiles{display:flex;gap:12px;flex-wrap:wrap;margin:10px 0}
.tile{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}.tile b{font-size:22px;display:block}
.bars{display:grid;grid-template-columns:minmax(120px,max-content) 1fr max-content;gap:3px 10px;align-items:center;max-width:900px}
.bar{background:#4f8a5b;height:14px;border-radius:2px;min-width:2px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:12px 0}
h2{font-size:16px;margin:0 0 8px 0}
.grid{display:flex;flex-wrap:wrap;gap:10px}
figure.card{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px;width:262px}
figure.video{width:auto;max-width:100%}
.pic{position:relative;display:inline-block;line-height:0;max-width:100%}.pic img{max-width:100%;display:block}
.box{position:absolute;z-index:1;border:2px solid #ffd400;box-shadow:0 0 0 1px #000;box-sizing:border-box}
.box span{position:absolute;left:-2px;top:-17px;background:#ffd400;color:#000;font-size:11px;line-height:15px;padding:0 3px;white-space:nowrap}
figcaption{font-size:12px;margin-top:4px;word-break:break-all}
.path{color:#555}.score{font-weight:bold}ol.top{margin:2px 0 0 18px;padding:0}
.strip{display:flex;gap:6px;overflow-x:auto;padding:18px 0 4px 0}.frame{flex:0 0 auto;width:180px;font-size:11px}
.frame .pic,.frame .pic img{width:100%}
.pager{margin:10px 0}.pager a,.pager b{display:inline-block;padding:2px 7px;margin:1px;border:1px solid #ccc;border-radius:3px;background:#fff}
table.fail{border-collapse:collapse}table.fail td,table.fail th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
.note{color:#666;font-size:12px}
"""


def text(value: object) -> str:
    """Any value as HTML text (quotes escaped too: safe inside attributes)."""
    return html.escape(str(value), quote=True)


def href(relative_path: str) -> str:
    """A relative link to a file in (or next to) the site, URL-quoted and attribute-safe."""
    return text(quote(relative_path.replace("\\", "/"), safe="/"))


def page(title: str, body: str, banner: str | None = None, crumbs: str = "") -> str:
    """A whole page: skeleton, inline style, header with the way back, optional warning banner."""
    warning = f'<div class="banner">{text(banner)}</div>' if banner else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{text(title)}</h1>{crumbs}</header>{warning}<main>{body}</main></body></html>\n"
    )


def pager(current: int, pages: int, name_of: Callable[[int], str], window: int = 4) -> str:
    """Links to the other pages (first, last, and a few around the current one); empty for one page."""
    if pages <= 1:
        return ""
    shown = sorted({1, pages, *range(max(1, current - window), min(pages, current + window) + 1)})
    parts, previous = [], 0
    if current > 1:
        parts.append(f'<a href="{href(name_of(current - 1))}">&larr; previous</a>')
    for number in shown:
        if number - previous > 1:
            parts.append("&hellip;")
        parts.append(f"<b>{number}</b>" if number == current else f'<a href="{href(name_of(number))}">{number}</a>')
        previous = number
    if current < pages:
        parts.append(f'<a href="{href(name_of(current + 1))}">next &rarr;</a>')
    return f'<nav class="pager">page {current} of {pages}: {" ".join(parts)}</nav>'

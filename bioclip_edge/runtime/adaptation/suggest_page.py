"""The page that goes with ``labels adapt --suggest``'s CSV: the frames to label next, to look at.

Built from ``runtime.preview``'s public parts (``make_thumbnails``, the gallery's ``card`` and the
shared ``page`` skeleton), so it looks and behaves like a ``preview`` site: plain HTML, inline
style, thumbnails in a folder beside it, every link relative. It is written next to the CSV as
``<name>.suggest.html`` with its thumbnails in ``<name>.suggest-thumbs/``; each card links to the
original frame, in the order of the CSV (least certain first), with its sequence and capture time.
"""

from __future__ import annotations

import os
from pathlib import Path

from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.adaptation.suggest import Suggestion


def page_paths(csv_path: Path) -> tuple[Path, Path]:
    """(the page, its thumbnail folder) for the suggestion list ``csv_path`` (``x.suggest.csv``)."""
    stem = csv_path.name[: -len(".csv")] if csv_path.name.endswith(".csv") else csv_path.name
    return csv_path.with_name(stem + ".html"), csv_path.with_name(stem + "-thumbs")


def write_suggestion_page(csv_path: Path, chosen: list[Suggestion], pool: Path, total: int) -> Path:
    """Write the page for ``chosen`` (paths relative to ``pool``); ``total``: frames scored."""
    from bioclip_edge.runtime.preview.gallery import Links, card
    from bioclip_edge.runtime.preview.items import Item
    from bioclip_edge.runtime.preview.layout import href, page, text
    from bioclip_edge.runtime.preview.site import relative_link
    from bioclip_edge.runtime.preview.thumbnails import ThumbConfig, make_thumbnails

    html_path, thumbs = page_paths(csv_path)
    sources = {s.filepath: pool / s.filepath for s in chosen}
    names = make_thumbnails({p: {None} for p in sources.values()}, thumbs, ThumbConfig(progress=False))
    items = [Item(s.filepath, s.top1, s.top1_probability, top=((s.top1, s.top1_probability), (s.top2, s.top2_probability)),
                  extra={"datetime": s.captured}) for s in chosen]
    links = Links(thumb=lambda item, frame: f"{thumbs.name}/{names[(str(sources[item.filepath]), None)]}",
                  original=lambda item: relative_link(sources[item.filepath], html_path.parent))
    cards = []
    for s, item in zip(chosen, items):
        note = (f'<div class="note">margin {s.margin:.4f} &middot; folder {text(s.group)} &middot; '
                f"sequence {text(s.sequence or s.filepath)}</div>")
        cards.append(card(item, links, note))
    body = (f"<p>The {len(chosen)} of {total} frame(s) in <code>{text(os.fspath(pool))}</code> that the adapted labels "
            "are least sure of (smallest gap between the two best labels), one per burst and folder before any "
            f'second. Label them, add them to the examples and adapt again. The list: <a href="{href(csv_path.name)}">'
            f'{text(csv_path.name)}</a>.</p><div class="grid">{"".join(cards)}</div>')
    write_atomic(html_path, page(f"Frames to label next ({len(chosen)})", body))
    return html_path

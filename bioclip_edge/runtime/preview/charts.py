"""The index page's two charts, drawn without any library: a bar chart of files per top-1 label
(HTML grid rows, each bar a link to the label's pages) and a histogram of top-1 scores (inline SVG).

Why no plotting library: the page must open offline and the runtime installs no matplotlib.
"""

from __future__ import annotations

from typing import Callable, Sequence

from bioclip_edge.runtime.preview.layout import href, text

HIST_BINS = 20
BAR_LIMIT = 60  # the chart shows the most frequent labels; the rest are listed below it


def label_bars(counts: Sequence[tuple[str, int]], page_of: Callable[[str], str]) -> str:
    """Files per top-1 label, most frequent first, as bars; labels past ``BAR_LIMIT`` as a plain list."""
    if not counts:
        return '<p class="note">no classified files</p>'
    top = max(n for _, n in counts)
    rows = []
    for label, n in counts[:BAR_LIMIT]:
        width = 100.0 * n / top
        rows.append(f'<a href="{href(page_of(label))}">{text(label)}</a>'
                    f'<div class="bar" style="width:{width:.1f}%" title="{text(label)}: {n}"></div><span>{n}</span>')
    rest = "".join(f'<li><a href="{href(page_of(label))}">{text(label)}</a> ({n})</li>' for label, n in counts[BAR_LIMIT:])
    more = f"<p>{len(counts) - BAR_LIMIT} more labels:</p><ul>{rest}</ul>" if rest else ""
    return f'<div class="bars">{"".join(rows)}</div>{more}'


def histogram_counts(scores: Sequence[float], bins: int = HIST_BINS) -> list[int]:
    """How many scores fall in each of ``bins`` equal bins of [0, 1] (1.0 in the last)."""
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(float(score) * bins)))] += 1
    return counts


def score_histogram(scores: Sequence[float], bins: int = HIST_BINS) -> str:
    """Top-1 scores in [0, 1] as an inline SVG bar histogram with its axes labelled."""
    counts = histogram_counts(scores, bins)
    width, height, left, bottom = 600, 200, 40, 30
    plot_w, plot_h = width - left - 10, height - bottom - 10
    top = max(counts) or 1
    step = plot_w / bins
    bars = []
    for i, n in enumerate(counts):
        h = plot_h * n / top
        lo, hi = i / bins, (i + 1) / bins
        bars.append(f'<rect x="{left + i * step + 1:.1f}" y="{10 + plot_h - h:.1f}" width="{step - 2:.1f}" height="{h:.1f}" '
                    f'fill="#4f8a5b"><title>{lo:.2f}-{hi:.2f}: {n}</title></rect>')
    ticks = "".join(f'<text x="{left + plot_w * t:.1f}" y="{height - 12}" text-anchor="middle">{t:.1f}</text>'
                    for t in (0, 0.25, 0.5, 0.75, 1.0))
    axes = (f'<line x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}" stroke="#444"/>'
            f'<line x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}" stroke="#444"/>'
            f'<text x="{left - 4}" y="16" text-anchor="end">{top}</text>'
            f'<text x="{left - 4}" y="{10 + plot_h}" text-anchor="end">0</text>'
            f'<text x="{left + plot_w / 2:.0f}" y="{height - 1}" text-anchor="middle">top-1 score</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'font-size="11" role="img" aria-label="histogram of top-1 scores">{"".join(bars)}{axes}{ticks}</svg>')

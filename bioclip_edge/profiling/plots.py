"""The report's two pictures, drawn with matplotlib's Agg backend (no display needed).

* throughput: items/sec against batch size, one line per backend and precision, one panel per
  thread count, so "does batching help, and which precision wins" reads at a glance;
* latency: the distribution of per-call latency for every target (box = middle half, whiskers
  = 5th-95th percentile, line = median), per item so batch sizes compare fairly.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series_label(row: dict[str, Any]) -> str:
    names = {"ort": "onnxruntime", "openvino": "OpenVINO", "torch": "PyTorch eager"}
    return f"{names.get(row['backend'], row['backend'])} {row['precision']}"


def _colours(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The same colour for a backend + precision in both plots."""
    plt = _pyplot()
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = sorted({_series_label(r) for r in rows})
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def throughput_plot(rows: list[dict[str, Any]], path: Path, title: str, unit: str = "images/sec") -> Path | None:
    ok = [r for r in rows if r.get("status") == "ok" and r.get("items_per_sec")]
    if not ok:
        return None
    plt = _pyplot()
    threads = sorted({int(r["threads"]) for r in ok})
    fig, axes = plt.subplots(1, len(threads), figsize=(max(8.0, 5.5 * len(threads)), 4.6), sharey=True, squeeze=False)
    styles = {}
    markers = "osD^vP*X"
    colours = _colours(ok)
    for ax, t in zip(axes[0], threads):
        series: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for r in ok:
            if int(r["threads"]) == t:
                series[_series_label(r)].append((int(r["batch"]), float(r["items_per_sec"])))
        for label in sorted(series):
            pts = sorted(series[label])
            style = styles.setdefault(label, markers[len(styles) % len(markers)])
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=style, label=label, color=colours[label])
        batches = sorted({int(r["batch"]) for r in ok})
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("batch size")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}")
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel(f"{unit} (higher is better)")
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    ncol = min(len(labels), 3 if len(threads) == 1 else 4)
    legend_rows = -(-len(labels) // ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.03 + 0.055 * legend_rows, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_plot(rows: list[dict[str, Any]], path: Path, title: str, unit: str = "image") -> Path | None:
    ok = [r for r in rows if r.get("status") == "ok" and r.get("latencies_ms")]
    if not ok:
        return None
    plt = _pyplot()
    ok = sorted(ok, key=lambda r: (r["backend"], r["precision"], int(r["threads"]), int(r["batch"])))
    data = [[x / int(r["batch"]) for x in r["latencies_ms"]] for r in ok]
    labels = [f"{_series_label(r)}  b{r['batch']} t{r['threads']}" for r in ok]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.38 * len(ok)))
    from matplotlib.ticker import FuncFormatter

    style = dict(whis=(5, 95), showfliers=True, widths=0.6, patch_artist=True,
                 flierprops={"markersize": 3, "alpha": 0.5}, medianprops={"color": "black"})
    try:
        boxes = ax.boxplot(data, orientation="horizontal", **style)  # matplotlib >= 3.10
    except TypeError:
        boxes = ax.boxplot(data, vert=False, **style)
    colours = _colours(ok)
    for box, r in zip(boxes["boxes"], ok):  # one colour per backend + precision, as in the throughput plot
        box.set_facecolor(colours[_series_label(r)])
        box.set_alpha(0.55)
    ax.set_yticks(range(1, len(labels) + 1), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel(f"milliseconds per {unit} (lower is better; log scale)")
    ax.grid(True, axis="x", alpha=0.3, which="both")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

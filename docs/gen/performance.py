"""The performance page, generated from benchmark results: nothing on it is typed by hand.

``make bench`` writes each benchmark's JSON into ``bench-out/<benchmark>/`` with ``run.json``
beside it (``benchmarks/run_all.py``: date, commit, machine, library versions). bench-out is not
committed (it holds bundles), so the runs the site shows are copied into ``docs/results/`` first:

    .venv/bin/python docs/gen/performance.py publish bench-out     # copies the JSON files only
    .venv/bin/python docs/gen/performance.py render                # the page, as the site builds it

Each benchmark's table is drawn from its JSON by a renderer here (``RENDERERS``); a benchmark
without one is shown as its flat list of figures, so a new benchmark appears without code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

DOCS = Path(__file__).resolve().parents[1]
RESULTS = DOCS / "results"
PROVENANCE = "run.json"


@dataclass
class Run:
    """One benchmark's published results and the record of how they were made."""

    name: str
    provenance: dict[str, Any]
    results: dict[str, dict[str, Any]]  # file name -> JSON


def collect(root: Path = RESULTS) -> list[Run]:
    """Every benchmark folder under ``root`` that holds JSON results, by name."""
    runs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        files = {f.name: json.loads(f.read_text(encoding="utf-8")) for f in sorted(folder.glob("*.json"))}
        provenance = files.pop(PROVENANCE, {})
        if files:
            runs.append(Run(folder.name, provenance, files))
    return runs


def publish(bench_out: Path, root: Path = RESULTS) -> list[Path]:
    """Copy each benchmark's top-level JSON files (results and run.json; no bundles, no images)."""
    written = []
    for folder in sorted(p for p in bench_out.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.json"))
        if not any(f.name != PROVENANCE for f in files):
            continue
        target = root / folder.name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, target / f.name)
            written.append(target / f.name)
    return written


def provenance_lines(prov: dict[str, Any]) -> list[str]:
    """Machine, date, versions and commit of a run, or a plain statement that they were not recorded."""
    if not prov:
        return ["*Run record missing: this result was published without `run.json` (machine, date, commit unknown).*"]
    m = prov.get("machine", {})
    cores = m.get("affinity_cores") or m.get("logical_cores")
    isa = ", ".join(m.get("isa", [])) or "ISA unknown"
    versions = ", ".join(f"{k} {v}" for k, v in sorted(m.get("versions", {}).items()))
    commit = prov.get("commit") or "unknown"
    dirty = " (with uncommitted changes)" if prov.get("uncommitted_changes") else ""
    return [f"- **Machine:** {m.get('cpu_model') or m.get('architecture', '?')}, {cores} cores"
            f"{' (virtual machine)' if m.get('hypervisor') else ''}, {isa}; {m.get('memory_total_gb', '?')} GB; {m.get('os', '?')}",
            f"- **Date:** {prov.get('date', 'unknown')}; **commit:** `{commit[:12]}`{dirty}; "
            f"**status:** {prov.get('status', '?')} in {prov.get('seconds', '?')} s",
            f"- **Versions:** Python {m.get('python', '?')}, {versions or 'not recorded'}",
            f"- **Script:** `{prov.get('script', '?')}`"]


def _num(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def render_adapt(results: dict[str, dict[str, Any]]) -> list[str]:
    """bench_adapt: top-1 accuracy per split, shots and method; the best of each row in bold."""
    data = results["results.json"]
    acc = data["accuracy"]
    methods = list(next(iter(next(iter(acc.values())).values())).keys())
    lines = [f"Model: {data['model']}; {data['classes']} classes, {data['test_per_class']} test crops per class, "
             f"mean of {data['draws']} draws of the examples.", "",
             "| train -> test | shots | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for split, by_shots in acc.items():
        for shots, row in by_shots.items():
            best = max(row.values())
            cells = [f"**{row[m]:.3f}**" if row[m] == best else f"{row[m]:.3f}" for m in methods]
            lines.append(f"| {split} | {shots} | " + " | ".join(cells) + " |")
    fit = data.get("clap_fit_6x16")
    if fit:
        lines += ["", "CLAP fit, 6 classes x 16 shots x 4 views (embedding excluded): "
                  + ", ".join(f"{k} {_num(v)}" for k, v in fit.items())]
    return lines


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flatten(v, f"{prefix}{k}.")]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [item for i, v in enumerate(value) for item in _flatten(v, f"{prefix}{i}.")]
    return [(prefix[:-1], value)]


def render_generic(results: dict[str, dict[str, Any]]) -> list[str]:
    """Any benchmark's JSON as a two-column table of its figures (machine records left to the header)."""
    lines = []
    for name, data in results.items():
        rows = [(k, v) for k, v in _flatten(data) if not k.startswith("machine")]
        lines += [f"`{name}`:", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_num(v)} |".replace("\n", " ") for k, v in rows]
        lines.append("")
    return lines


def render_memory(results: dict[str, dict[str, Any]]) -> list[str]:
    """bench_memory: peak RSS next to images/s for each backend and batch size."""
    data = results["results.json"]
    lines = [f"{data['frames']} 1920x1080 JPEGs through `classify`, each configuration in a fresh process; "
             f"medians of {data['rounds']} alternating round(s).", "",
             "| backend | --batch-size | batch run | peak RSS (MB) | estimate (MB) | images/s | vs best |",
             "|---|---|---|---|---|---|---|"]
    for backend, by_batch in data["table"].items():
        for batch, row in by_batch.items():
            lines.append(f"| {backend} | {batch} | {row['batch']} | {row['rss_mb']:.0f} | {row['estimate_mb']} | "
                         f"{row['images_per_s']:.2f} | {row['speed_vs_best']:.2f} |")
    verdict = data.get("verdict") or {}
    if verdict:
        met = verdict.get("rss_met") and verdict.get("speed_met")
        lines += ["", f"Target ({verdict['target']}): peak RSS {verdict['rss_mb']:.0f} MB, "
                  f"{verdict['speed_vs_best']:.3f} of the best: {'met' if met else 'NOT met'}."]
    return lines


def render_million(results: dict[str, dict[str, Any]]) -> list[str]:
    """bench_million: a million synthetic records through the classify job, per output format."""
    data = results["results.json"]
    targets = data["targets"]
    lines = [f"{data['records']:,} synthetic records (no model) through the classify job's runner, checkpoint "
             f"and writers. Targets: peak RSS < {targets['peak_rss_mb']} MB, checkpoint share < "
             f"{targets['checkpoint_share']:.0%}.", "",
             "| format | seconds | peak RSS (MB) | of which the input list (MB) | checkpoint share | encode share | met |",
             "|---|---|---|---|---|---|---|"]
    for row in data["formats"]:
        lines.append(f"| {row['format']} | {row['seconds']} | {row['peak_rss_mb']:.0f} | {row['rss_with_inputs_listed_mb']:.0f} | "
                     f"{row['checkpoint_share']:.2%} | {row['encode_share']:.1%} | {'yes' if row['meets_targets'] else 'NO'} |")
    return lines


def render_sort(results: dict[str, dict[str, Any]]) -> list[str]:
    """bench_sort: files per second of sort and undo, per mode, on the disk the run used."""
    data = results["sort.json"]
    lines = [f"1000 files of {data['size_mb']} MB each; every round trip checked byte for byte.", "",
             "| mode | journal batch | sort files/s | undo files/s | round trip exact |", "|---|---|---|---|---|"]
    for row in data["rows"]:
        lines.append(f"| {row['mode']} | {row['batch']} | {row['sort_files_per_s']:.0f} | {row['undo_files_per_s']:.0f} | "
                     f"{'yes' if row['round_trip_exact'] else 'NO'} |")
    return lines


RENDERERS: dict[str, Callable[[dict[str, dict[str, Any]]], list[str]]] = {
    "adapt": render_adapt, "memory": render_memory, "million": render_million, "sort": render_sort}
TITLES = {"adapt": "Adapting label rows to a site (`labels adapt`)", "defaults": "Defaults against the targets",
          "speed": "Every CPU configuration side by side", "labels": "Label building and scoring",
          "video": "Video", "ray": "Ray engine", "profile": "FLOPs and sizing",
          "memory": "Memory: peak RSS against images/s (`--max-memory`)",
          "million": "A million images: bounded memory, checkpoint cost", "sort": "Sorting into folders (`sort`)"}


def render(root: Path = RESULTS) -> str:
    """The whole performance page as Markdown."""
    runs = collect(root)
    lines = ["# Performance results", "",
             "Generated from the benchmark results published in `docs/results/` each time the site is built; "
             "every table names the machine, date, library versions and commit of its run. How the benchmarks "
             "measure, and how to read the figures: [Performance](../explanations/performance.md). To add a "
             "run: `make bench`, then `python docs/gen/performance.py publish bench-out`.", ""]
    if not runs:
        lines += ["No benchmark results are published yet."]
    for run in runs:
        lines += [f"## {TITLES.get(run.name, run.name)} {{#{run.name}}}", "", *provenance_lines(run.provenance), ""]
        lines += RENDERERS.get(run.name, render_generic)(run.results)
        lines += ["", "Raw results: " + ", ".join(f"[{f}](../results/{run.name}/{f})" for f in run.results), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True)
    pub = sub.add_parser("publish", help="copy bench-out's JSON results into docs/results")
    pub.add_argument("bench_out", type=Path)
    ren = sub.add_parser("render", help="print the page")
    ren.add_argument("--from", dest="root", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.action == "publish":
        for path in publish(args.bench_out):
            print(path)
        return 0
    sys.stdout.write(render(args.root))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A report folder a decision-maker can read without running anything.

    report.md                 what was measured, the answer first, then tables and assumptions
    report.json               everything, machine-readable (the ProfileRun plus the sizing)
    results.csv               one flat row per target (latency samples left out)
    throughput_vs_batch.png   items/sec against batch, per backend and precision
    latency.png               per-call latency distribution of every target

Written into ``<out>.partial`` and renamed, so an interrupted report never looks finished.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

from bioclip_edge.profiling.measure import ProfileRun
from bioclip_edge.profiling.sizing import PrecisionSizing, assumptions, duration
from bioclip_edge.runtime.common.files import write_atomic, write_errors

CSV_SKIP = ("latencies_ms",)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or x == "":
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def _range(pair, digits: int = 3) -> str:
    if not pair:
        return "–"
    lo, hi = pair
    return f"{_fmt(float(lo), digits)}–{_fmt(float(hi), digits)}"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out


def headline(run: ProfileRun, images_per_day: int | None) -> list[str]:
    ok = run.ok_rows(run.settings.get("tower", "vision"))
    if not ok:
        return ["No target ran successfully on this machine; see *Failed and skipped targets* below."]
    unit = "images" if run.settings.get("tower", "vision") == "vision" else "labels"
    best = max(ok, key=lambda r: r["items_per_sec"])
    lines = [
        f"On this machine the fastest configuration was **{best['target']}**: "
        f"**{_fmt(best['items_per_sec'])} {unit}/sec** ({_fmt(best['ms_per_item'])} ms per item at batch {best['batch']}, "
        f"{best['threads']} thread(s)).",
    ]
    torch_rows = [r for r in ok if r["backend"] == "torch"]
    if torch_rows:
        base = max(torch_rows, key=lambda r: r["items_per_sec"])
        lines.append(f"That is {best['items_per_sec'] / base['items_per_sec']:.2f}x the best PyTorch eager baseline "
                     f"measured in the same run ({_fmt(base['items_per_sec'])} {unit}/sec).")
    if images_per_day and unit == "images":
        hours = images_per_day / best["items_per_sec"] / 3600
        lines.append(f"At that rate {images_per_day:,} images take **{hours:.1f} hours** of model time "
                     "(decoding the JPEGs is extra unless it runs in parallel).")
    return [" ".join(lines)]


def _flops_section(run: ProfileRun) -> list[str]:
    rows = []
    for f in run.flops:
        what = "one image" if f["tower"] == "vision" else f"one label, {f['tokens']} tokens"
        check = "–"
        if f.get("analytic_matmul_only"):
            check = "agrees" if f["analytic_matmul_only"] == f["matmul_only"] else f"analytic {f['analytic_matmul_only'] / 1e9:.3f}"
        rows.append([f["tower"], what, round(f["matmul_only"] / 1e9, 3), round(f["with_attention"] / 1e9, 3), check])
    lines = ["## The model", ""]
    m = run.model
    lines.append(f"{m['id']} ({m['architecture']}): {m['params_vision'] / 1e6:.1f}M vision + {m['params_text'] / 1e6:.1f}M "
                 f"text parameters, {m['image_size'][0]}x{m['image_size'][1]} px input, {m['embed_dim']}-d embeddings.")
    lines += ["", *_table(["tower", "per", "GFLOPs (matmul only)", "GFLOPs (with attention)", "config cross-check"], rows), ""]
    lines.append("*matmul only* counts products with weights (the BioCLIP spec page's convention, used for every "
                 "rate below); *with attention* adds the Q·Kᵀ and attention·V products (open_clip's profile). "
                 "Counted from the bundle's own ONNX graphs; FLOPs = 2 x multiply-adds.")
    return lines


def _bench_section(run: ProfileRun) -> list[str]:
    ok = sorted(run.ok_rows(), key=lambda r: (r["tower"], r["backend"], r["precision"], r["threads"], r["batch"]))
    rows = [[r["target"], r["batch"], r["threads"], r["latency_ms_median"], r["latency_ms_p90"], r["items_per_sec"],
             r.get("effective_gflops"), None if r.get("efficiency") is None else f"{100 * r['efficiency']:.1f}%"]
            for r in ok]
    lines = ["## Throughput on this machine", ""]
    lines += _table(["target", "batch", "threads", "median ms/batch", "p90 ms/batch", "items/sec", "effective GFLOP/s",
                     "efficiency"], rows)
    lines += ["", "Targets were timed round-robin in one run after warm-up, so their ratios are reliable; absolute "
              "figures on shared machines drift 2-3x between runs. *Efficiency* = effective GFLOP/s / this machine's "
              "measured matmul peak for the same arithmetic and thread count (below; the peak kernel is timed in "
              "every round beside the targets)."]
    if any((r.get("efficiency") or 0) > 1 for r in ok):
        lines += ["", "**Efficiency above 100%** means the model ran faster than the test matmul did: other work on "
                  "the machine slowed the short peak kernel more than the model, or the model's kernels (e.g. fused "
                  "or AMX-tiled) beat it. Treat those efficiencies as unreliable; sizing caps them at 100%."]
    peaks = [[p["kind"], p["backend"], p["threads"] or "default", p["gflops"], p.get("error") or ""] for p in run.peaks]
    lines += ["", "### Matrix-multiply peak, measured in the same run", "",
              *_table(["arithmetic", "library", "threads", "sustained GFLOP/s", "note"], peaks)]
    return lines


def _sizing_section(sizings: list[PrecisionSizing]) -> list[str]:
    if not sizings:
        return []
    per_day = sizings[0].input.images_per_day
    lines = ["## Sizing: other hardware", "",
             f"Estimated from the efficiency measured above; a day = {per_day:,} images. Ranges follow the "
             "hardware table's broad GFLOP/s ranges (estimates, not measurements).", ""]
    for sizing in sizings:
        inp = sizing.input
        lines += [f"### {inp.precision}", "",
                  f"Efficiency {inp.efficiency:.1%} ({inp.efficiency_source}); needs {inp.memory_needed_gb:.2f} GB "
                  f"with {inp.n_labels:,} labels.", ""]
        rows = []
        for s in sizing.estimates:
            slow, fast = max(s.hours_for_day), min(s.hours_for_day)
            build = "–" if not s.label_build_hours else f"{duration(min(s.label_build_hours))}–{duration(max(s.label_build_hours))}"
            rows.append([s.hardware_name.split(" (")[0], _range(s.sustained_gflops), _range(s.images_per_sec),
                         f"{duration(fast)}–{duration(slow)}", build,
                         f"{_range(s.memory_gb, 2)} GB", s.fits])
        lines += _table(["hardware", "GFLOP/s (est.)", "images/sec", f"time for {per_day:,} images",
                         f"label matrix ({inp.n_labels:,})", "memory", "fits"], rows)
        if sizing.not_sized:
            lines += ["", "Not sized at this precision: " + "; ".join(n.split(":")[0] for n in sizing.not_sized)
                      + " (no figure for it in the hardware table)."]
        lines.append("")
    notes = sorted({n for p in sizings for s in p.estimates for n in s.notes})
    lines += ["### Assumptions", "", *[f"- {a}" for a in assumptions(sizings[0].input) + notes]]
    if len(sizings) > 1:
        lines.append("- The efficiency and memory figures above differ per precision; the first precision's are spelled out.")
    return lines


def _problems_section(run: ProfileRun) -> list[str]:
    bad = [r for r in run.rows if r.get("status") != "ok"]
    if not bad:
        return []
    return ["## Failed and skipped targets", "",
            *_table(["target", "status", "why"], [[r["target"], r["status"], r.get("error", "")] for r in bad])]


def _scale_out_section(scale: Any) -> list[str]:
    if scale is None:
        return []
    return ["## Many machines (Ray)", "",
            "From `benchmarks/bench_ray.py`'s measured end-to-end rate on one node and the Ray engine's measured "
            "efficiency (`--engine ray`: see the guide 'Many machines with Ray').", "", *scale.markdown(), ""]


def markdown(run: ProfileRun, sizings: list[PrecisionSizing], images_per_day: int, plots: dict[str, str], scale: Any = None) -> str:
    m = run.model
    lines = [f"# Speed and sizing report: {m['id']}", ""]
    if m.get("random_weights"):
        lines += ["> **Random weights.** This bundle's weights are random stand-ins for the real model: every "
                  "speed figure here is real, but the model's predictions would be meaningless.", ""]
    lines += ["## The answer", "", *headline(run, images_per_day), ""]
    mach = run.machine
    lines += ["## Where it was measured", "",
              f"{mach.get('cpu_model') or 'unknown CPU'}{' (virtual machine)' if mach.get('hypervisor') else ''}; "
              f"{mach.get('physical_cores')} cores / {mach.get('logical_cores')} threads; "
              f"{mach.get('memory_total_gb')} GB RAM; {mach.get('os')}; ISA: {', '.join(mach.get('isa', [])) or 'none read'}.",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in mach.get("versions", {}).items()) + f". Run at {run.created_at}.",
              ""]
    lines += _flops_section(run) + [""] + _bench_section(run) + [""]
    if plots.get("throughput"):
        lines += [f"![items per second against batch size]({plots['throughput']})", ""]
    if plots.get("latency"):
        lines += [f"![latency per item for every target]({plots['latency']})", ""]
    lines += _sizing_section(sizings) + [""]
    lines += _scale_out_section(scale)
    lines += _problems_section(run)
    return "\n".join(lines).rstrip() + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in CSV_SKIP]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def write_report(run: ProfileRun, out: str | Path, sizings: list[PrecisionSizing] = (), images_per_day: int = 0,
                 scale: Any = None) -> Path:
    """Write the report folder; returns its path. ``scale``: a ``scale_out.ScaleOutEstimate`` (many machines).
    It is written into ``<out>.partial`` and renamed: a full disk half-way leaves ``out`` as it was."""
    out = Path(out)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with write_errors(work, note=f"the unfinished report was removed; {out} was not changed"):
            _write_report_into(work, run, sizings, images_per_day, scale)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return out


def _write_report_into(work: Path, run: ProfileRun, sizings: list[PrecisionSizing], images_per_day: int,
                       scale: Any) -> None:
    from bioclip_edge.profiling.plots import latency_plot, throughput_plot

    work.mkdir(parents=True)
    tower = run.settings.get("tower", "vision")
    unit = "image" if tower == "vision" else "label"
    title = f"{run.model['architecture']} {tower} tower on {run.machine.get('cpu_model') or 'this machine'}"
    plots = {}
    if throughput_plot(run.rows, work / "throughput_vs_batch.png", title, f"{unit}s/sec"):
        plots["throughput"] = "throughput_vs_batch.png"
    if latency_plot(run.rows, work / "latency.png", title, unit):
        plots["latency"] = "latency.png"
    data = json.loads(run.to_json())
    data["sizing"] = {"images_per_day": images_per_day, "plans": [p.to_dict() for p in sizings]}  # "plans": the key readers know
    if scale is not None:
        data["scale_out"] = scale.to_dict()
    (work / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    write_csv(run.rows, work / "results.csv")
    (work / "report.md").write_text(markdown(run, list(sizings), images_per_day, plots, scale), encoding="utf-8")

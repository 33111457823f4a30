"""Profiling benchmark: FLOPs of the BioCLIP family and the ViT-B/16 sizing report on this machine.

    python benchmarks/bench_profile.py --out bench-out/profile

1. FLOPs and parameters of ViT-B-16, ViT-L-14 and ViT-H-14 (meta device, seconds), checked
   against the BioCLIP spec page's figures: flops.json / flops.md.
2. A random-weight ViT-B/16 bundle (fp32 + dynamic int8), exported once and reused.
3. ``profile report`` on it: onnxruntime fp32 and int8, plus OpenVINO bf16 and the PyTorch eager
   baseline where installed, batch 1 and 8, all cores, timed side by side: report/ (Markdown,
   JSON, CSV, plots, sizing for every hardware target).
Runs in a few minutes on two cores; exit code 1 if a step failed (its error is in summary.json).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from pathlib import Path


def flops_step(out: Path) -> dict:
    from bioclip_edge.profiling.flops import SEED_CONVENTION, compare_published, count_model

    rows, checks = [], []
    for name in ("ViT-B-16", "ViT-L-14", "ViT-H-14"):
        mf = count_model(name)
        rows.append(mf.row())
        checks += compare_published(mf)
    (out / "flops.json").write_text(json.dumps({"rows": rows, "published": checks,
                                                "seed_convention": SEED_CONVENTION}, indent=2) + "\n")
    lines = ["| model | quantity | published | matmul-only | diff % | with attention | diff % |", "|---|---|---|---|---|---|---|"]
    for c in checks:
        if "matmul_only" in c:
            lines.append(f"| {c['model']} | {c['quantity']} | {c['published']} | {c['matmul_only']} | "
                         f"{c['matmul_only_diff_pct']} | {c['with_attention']} | {c['with_attention_diff_pct']} |")
    (out / "flops.md").write_text("\n".join(lines) + "\n")
    images_ok = all(c["matmul_only_within_tolerance"] for c in checks if c["quantity"] == "GFLOPs/image")
    labels_ok = all(c["matmul_only_within_tolerance"] or c["with_attention_within_tolerance"]
                    for c in checks if c["quantity"].startswith("GFLOPs/label"))
    return {"images_within_3pct_matmul_only": images_ok, "labels_within_3pct_either": labels_ok}


def bundle_step(folder: Path) -> Path:
    from bioclip_edge.profiling.workflow import ensure_bundle

    return ensure_bundle(folder, "ViT-B-16", ("fp32", "int8"), parity_images=4,
                         progress=lambda m: print(f"  export: {m}", flush=True))


def report_step(bundle: Path, out: Path, seconds: float) -> dict:
    from bioclip_edge.profiling.bench import BenchSettings
    from bioclip_edge.profiling.workflow import report

    backends = ["ort"]
    precisions = ["fp32", "int8"]
    if importlib.util.find_spec("openvino"):
        backends.append("openvino")
        precisions.append("bf16")
    if importlib.util.find_spec("torch") and importlib.util.find_spec("open_clip"):
        backends.append("torch")
    folder = report(bundle, out / "report", backends, precisions, (1, 8), None, images_per_day=50_000,
                    settings=BenchSettings(warmup=1, min_runs=3, max_runs=12, seconds_per_target=seconds),
                    peak_seconds=0.5, progress=lambda m: print(f"  {m}", flush=True))
    data = json.loads((folder / "report.json").read_text())
    ok = [r for r in data["rows"] if r["status"] == "ok"]
    best = max(ok, key=lambda r: r["items_per_sec"]) if ok else None
    torch_rows = [r for r in ok if r["backend"] == "torch"]
    summary = {"report": str(folder / "report.md"), "targets_ok": len(ok),
               "targets_failed": sum(r["status"] == "error" for r in data["rows"])}
    if best:
        summary["fastest"] = {k: best[k] for k in ("target", "items_per_sec", "efficiency") if k in best}
    if best and torch_rows:
        base = max(torch_rows, key=lambda r: r["items_per_sec"])
        summary["fastest_vs_torch_eager"] = round(best["items_per_sec"] / base["items_per_sec"], 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/profile"))
    p.add_argument("--bundle", type=Path, help="ViT-B/16 bundle to use (default: OUT/bundle-vit-b16, exported if missing)")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per target (default %(default)s)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {}
    steps = (
        ("flops", lambda: flops_step(args.out)),
        ("bundle", lambda: {"bundle": str(bundle_step(args.bundle or args.out / "bundle-vit-b16"))}),
        ("report", lambda: report_step(Path(summary["bundle"]["bundle"]), args.out, args.seconds)),
    )
    failed = False
    for name, step in steps:
        started = time.perf_counter()
        print(f"-- {name}", flush=True)
        try:
            result = step()
            summary[name] = {**result, "seconds": round(time.perf_counter() - started, 1)}
        except Exception as exc:  # record and go on: a failed step is a row, not a lost run
            failed = True
            summary[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
            if name == "bundle":
                break
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "traceback"} for k, v in summary.items()}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

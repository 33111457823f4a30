"""``bioclip-edge profile``: FLOPs, throughput, sizing reports.

    profile flops ViT-B-16 ViT-L-14 ViT-H-14          # no weights needed (a bundle folder works too)
    profile bench BUNDLE --precision fp32,int8 --batch 1,8,32 --model-threads 1,2 [--backend ort,openvino,torch]
    profile report BUNDLE --out DIR                   # Markdown + JSON + CSV + plots
    profile size BUNDLE --images-per-day 50000 --hardware raspberry-pi-5

Only the standard library and our own stdlib-only modules are imported here; numpy, onnxruntime
and torch load inside ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bioclip_edge.profiling.flops import DEFAULT_TRIMMED_LENGTH
from bioclip_edge.runtime.cli.inference_options import add_model_threads_argument
from bioclip_edge.runtime.common.files import write_atomic

HELP = "count FLOPs, measure images/sec, and size hardware for a model or bundle"
DESCRIPTION = (
    "Profile a model or bundle: FLOPs and parameters per tower (two conventions, compared with the "
    "published BioCLIP figures), throughput per backend/precision/batch/model threads measured side by side, "
    "and sizing estimates for other hardware."
)
EPILOG = """examples:
  bioclip-edge profile flops ViT-B-16 ViT-L-14 ViT-H-14
  bioclip-edge profile size bundles/bioclip --images-per-day 50000 --hardware raspberry-pi-5"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="profile_command", metavar="SUBCOMMAND")
    sub.required = True

    p = sub.add_parser("flops", help="FLOPs and parameters per tower (no weights needed)",
                       description="Count FLOPs (2 x multiply-adds) and parameters of open_clip models or bundles. "
                                   "'matmul-only' counts products with weights (the BioCLIP spec page's convention); "
                                   "'with attention' adds Q.K^T and attention.V (open_clip's profile).",
                       formatter_class=parser.formatter_class, epilog="""examples:
  bioclip-edge profile flops ViT-B-16 ViT-L-14 ViT-H-14          # no weights needed
  bioclip-edge profile flops bundles/bioclip --json flops.json""")
    p.add_argument("models", nargs="+", help="open_clip names (ViT-B-16), registry names (bioclip) or bundle folders")
    p.add_argument("--text-length", type=int, default=DEFAULT_TRIMMED_LENGTH, help="trimmed label length in tokens (default %(default)s)")
    p.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    p.set_defaults(run=run_flops)

    p = sub.add_parser("bench", help="images/sec per backend, precision, batch and model threads, side by side",
                       formatter_class=parser.formatter_class, epilog="""examples:
  bioclip-edge profile bench bundles/bioclip --precision fp32,int8 --batch 1,8,32 --model-threads 1,2
  bioclip-edge profile bench bundles/bioclip --backend ort,openvino --json bench.json""")
    p.add_argument("bundle", type=Path, help="bundle folder")
    _bench_options(p)
    p.add_argument("--json", type=Path, help="write every row (with latency samples) and the machine to this file")
    p.add_argument("--csv", type=Path, help="write the rows as CSV")
    p.set_defaults(run=run_bench)

    p = sub.add_parser("report", help="measure and write a sizing report folder (Markdown, JSON, plots)",
                       formatter_class=parser.formatter_class, epilog="""examples:
  bioclip-edge profile report bundles/bioclip --out reports/bioclip-sizing""")
    p.add_argument("bundle", type=Path, help="bundle folder")
    p.add_argument("--out", type=Path, required=True, help="report folder to write (replaced if it exists)")
    p.add_argument("--ray-bench", type=Path, default=None, metavar="RESULT",
                   help="benchmarks/bench_ray.py's result.json: adds a many-machines estimate (images/day on N nodes)")
    _bench_options(p)
    _sizing_options(p)
    p.set_defaults(run=run_report)

    p = sub.add_parser("size", help="estimate images/sec, time per day and memory fit on other hardware",
                       formatter_class=parser.formatter_class, epilog="""examples:
  bioclip-edge profile size bundles/bioclip --images-per-day 50000 --hardware raspberry-pi-5
  bioclip-edge profile size bundles/bioclip --from reports/bioclip-sizing --images-per-day 200000""")
    p.add_argument("bundle", type=Path, help="bundle folder")
    p.add_argument("--precision", default="fp32", choices=("fp32", "int8", "fp16", "bf16"),
                   help="compute precision to size for (default fp32)")
    p.add_argument("--batch", type=int, default=8, help="batch size assumed for activation memory (default 8)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--efficiency", type=float, help="share of the matmul peak the model reaches (skip measuring)")
    src.add_argument("--from", dest="from_report", type=Path, help="take the measured efficiency from a report folder/JSON")
    _sizing_options(p)
    p.add_argument("--json", type=Path, help="also write the estimate to this JSON file")
    p.set_defaults(run=run_size)


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", default="fp32,int8", help="comma list: fp32, fp16, int8 (OpenVINO: the NNCF graph when the bundle has one), int8-static, int8-nncf, bf16 (default %(default)s)")
    p.add_argument("--batch", default="1,8", help="comma list of batch sizes (default %(default)s)")
    add_model_threads_argument(p, "comma list of intra-op thread counts (default: this machine's cores)")
    p.add_argument("--backend", default="ort", help="comma list: ort, openvino, torch (default %(default)s)")
    p.add_argument("--tower", default="vision", choices=("vision", "text"), help="tower to time (default vision)")
    p.add_argument("--text-length", type=int, default=DEFAULT_TRIMMED_LENGTH, help="tokens per label for --tower text")
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per target (default %(default)s)")
    p.add_argument("--sequential", action="store_true", help="time targets one by one (less memory) instead of interleaved")


def _sizing_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images-per-day", type=int, default=50_000, help="camera-trap images per day (default %(default)s)")
    p.add_argument("--hardware", default="all", help="comma list of hardware ids, or 'all' (see hardware.json)")
    p.add_argument("--hardware-file", help="your own hardware table in hardware.json's format")
    p.add_argument("--labels", type=int, default=1000, help="labels in the label matrix (default %(default)s)")


def _progress(msg: str) -> None:
    print(f"  {msg}", file=sys.stderr, flush=True)


def _settings(args):
    from bioclip_edge.profiling.bench import BenchSettings

    return BenchSettings(seconds_per_target=args.seconds, interleave=not args.sequential)


def _lists(args):
    from bioclip_edge.profiling.bench import parse_list

    model_threads = parse_list(args.model_threads, int, "--model-threads") if args.model_threads else None
    return (parse_list(args.backend, str, "--backend"), parse_list(args.precision, str, "--precision"),
            parse_list(args.batch, int, "--batch"), model_threads)


def _print_table(headers: list[str], rows: list[list]) -> None:
    cells = [[str(h) for h in headers]] + [["–" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def run_flops(args) -> int:
    from bioclip_edge.profiling.flops import compare_published, count_model

    rows, checks = [], []
    for name in args.models:
        if (Path(name) / "manifest.json").is_file():
            rows.append(_bundle_flops_row(Path(name), args.text_length))
            continue
        mf = count_model(name, args.text_length)
        rows.append(mf.row())
        checks += [c for c in compare_published(mf) if (c["model"], c["quantity"]) not in {(x["model"], x["quantity"]) for x in checks}]
    L = args.text_length
    table = []
    for r in rows:
        table.append([r["model"], r.get("image_gflops_matmul_only"), r.get("image_gflops_with_attention"),
                      r.get("label_77tok_gflops_matmul_only"), r.get("label_77tok_gflops_with_attention"),
                      r.get(f"label_{L}tok_gflops_matmul_only"), r.get(f"label_{L}tok_gflops_with_attention"),
                      r.get("params_vision_m"), r.get("params_text_m")])
    print("GFLOPs per image / per label (FLOPs = 2 x multiply-adds); mo = matmul-only, +att = with attention")
    _print_table(["model", "image mo", "image +att", "label77 mo", "label77 +att", f"label{L} mo", f"label{L} +att",
                  "params vision M", "params text M"], table)
    if checks:
        print("\nAgainst the published BioCLIP figures (within 3%?):")
        _print_table(["model", "quantity", "published", "matmul-only", "diff %", "with attention", "diff %"],
                     [[c["model"], c["quantity"], c["published"], c.get("matmul_only", c.get("counted")),
                       c.get("matmul_only_diff_pct", c.get("diff_pct")), c.get("with_attention"),
                       c.get("with_attention_diff_pct")] for c in checks])
        print("The page's per-image figures follow the matmul-only convention (products with weights only, within 1%);\n"
              "its per-label figures are whole numbers that both conventions round to.")
    if args.json:
        write_atomic(args.json, json.dumps({"rows": rows, "published": checks}, indent=2) + "\n")
    return 0


def _bundle_flops_row(folder: Path, length: int) -> dict:
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.profiling.measure import bundle_flops

    bundle = Bundle.open(folder)
    m = bundle.manifest
    row = {"model": str(folder), "architecture": m.model.architecture, "method": "onnx"}
    v = bundle_flops(bundle, "vision")
    row["image_gflops_matmul_only"], row["image_gflops_with_attention"] = round(v.matmul_only / 1e9, 3), round(v.with_attention / 1e9, 3)
    for n in dict.fromkeys((m.tokenizer.context_length, length)):
        t = bundle_flops(bundle, "text", n)
        row[f"label_{t.tokens}tok_gflops_matmul_only"] = round(t.matmul_only / 1e9, 3)
        row[f"label_{t.tokens}tok_gflops_with_attention"] = round(t.with_attention / 1e9, 3)
    row["params_vision_m"], row["params_text_m"] = round(m.model.params_vision / 1e6, 2), round(m.model.params_text / 1e6, 2)
    return row


def run_bench(args) -> int:
    from bioclip_edge.profiling.measure import profile_bundle
    from bioclip_edge.profiling.report import write_csv

    backends, precisions, batches, model_threads = _lists(args)
    run = profile_bundle(args.bundle, backends, precisions, batches, model_threads, args.tower, args.text_length,
                         _settings(args), progress=_progress)
    for note in run.notes:
        print(f"NOTE: {note}")
    print(f"machine: {run.machine.get('cpu_model')}; peaks: " + ", ".join(
        f"{p['kind']}@{p['threads'] or 'default'}t {p['gflops']}" for p in run.peaks if p.get("gflops")) + " GFLOP/s")
    _print_table(["target", "status", "median ms", "p90 ms", "items/sec", "eff. GFLOP/s", "efficiency", "error"],
                 [[r["target"], r["status"], r.get("latency_ms_median"), r.get("latency_ms_p90"), r.get("items_per_sec"),
                   r.get("effective_gflops"), None if r.get("efficiency") is None else f"{100 * r['efficiency']:.1f}%",
                   r.get("error")] for r in run.rows])
    if args.json:
        write_atomic(args.json, run.to_json())
    if args.csv:
        write_csv(run.rows, args.csv)
    return 0 if any(r["status"] == "ok" for r in run.rows) else 1


def run_report(args) -> int:
    from bioclip_edge.profiling.workflow import report

    backends, precisions, batches, model_threads = _lists(args)
    out = report(args.bundle, args.out, backends, precisions, batches, model_threads, args.images_per_day, args.labels,
                 args.hardware, args.tower, args.text_length, _settings(args), hardware_file=args.hardware_file,
                 progress=_progress, ray_bench=args.ray_bench)
    print(f"report written to {out} (open {out / 'report.md'})")
    return 0


def run_size(args) -> int:
    from bioclip_edge.profiling.sizing import assumptions, duration
    from bioclip_edge.profiling.workflow import size

    sizing = size(args.bundle, args.precision, args.images_per_day, args.hardware, args.labels, args.batch,
                  args.efficiency, args.from_report, args.hardware_file, progress=_progress)
    rows = []
    for s in sizing.estimates:
        fast, slow = min(s.hours_for_day), max(s.hours_for_day)
        build = "-" if not s.label_build_hours else \
            f"{duration(min(s.label_build_hours))}-{duration(max(s.label_build_hours))}"
        rows.append([s.hardware, f"{s.sustained_gflops[0]:g}-{s.sustained_gflops[1]:g}",
                     f"{s.images_per_sec[0]:.3g}-{s.images_per_sec[1]:.3g}", f"{duration(fast)}-{duration(slow)}", build,
                     f"{s.memory_needed_gb:.2f} / {s.memory_gb[0]:g}-{s.memory_gb[1]:g}", s.fits])
    print(f"{sizing.input.model}, {args.precision}, {args.images_per_day:,} images/day, {args.labels:,} labels:")
    _print_table(["hardware", "GFLOP/s (est.)", "images/sec", "time per day's images", "label matrix build",
                  "memory GB need / have", "fits"], rows)
    for note in sizing.not_sized:
        print(f"not sized: {note}")
    print("\nAssumptions:")
    for a in assumptions(sizing.input):
        print(f"  - {a}")
    if args.json:
        write_atomic(args.json, json.dumps(sizing.to_dict(), indent=2) + "\n")
    return 0 if sizing.estimates else 1


def run(args) -> int:  # the group itself: argparse requires a subcommand, so this only prints help
    print("usage: bioclip-edge profile {flops,bench,report,size} ...", file=sys.stderr)
    return 2

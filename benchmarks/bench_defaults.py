"""Defaults benchmark: what `export` then `classify` with their defaults give, against the targets.

Every bundle here is made by `bioclip-edge export MODEL --allow-random` with no other option (no
`--calibration`: the NNCF int8 graph is calibrated on the built-in photos), in its own process, so
the manifest's `export_resources` is that export's own time and peak resident memory. Bundles are
reused when they exist (`--reuse`, default) because a ViT-H/14 export takes 20-60 minutes here (19 min on 2026-12-03).

Targets (each a ratio measured in one run, configurations alternating round by round):
1. ViT-B/16, `classify` defaults end to end on 1920x1080 JPEGs >= 1.27x OpenVINO bf16 on the fp32
   graph, inference only (random pixels in memory, no decoding).
2. ViT-B/16 on 12 MP (4000x3000) JPEGs: `classify` defaults end to end >= 10x pybioclip's way
   (open_clip's preprocessing on PIL images opened from the files + PyTorch eager), both from files.
3. ViT-L/14, `classify` defaults end to end on 1080p JPEGs >= 1.4x OpenVINO bf16 inference only.
4. ViT-H/14's int8 tower (OpenVINO IR) >= 1.5x OpenVINO bf16, min cosine >= 0.995 on the parity set.
5. First prediction of a `classify` run <= 3 s from process start, `--help` <= 0.1 s (bench_speed's
   `cli_times`, on the ViT-B/16 bundle).
6. Export peak resident memory < 4x the fp32 weights, per model (from the manifests).

Weights are random (no hub here): speed does not depend on their values, but which NNCF preset
passes the export's gate does, so the results say which graph `--precision auto` ran.

    python benchmarks/bench_defaults.py --out bench-out/defaults [--models b16,l14,h14] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_speed import cli_times, write_photos  # noqa: E402 (beside this script)

MODELS = {"b16": "bioclip", "l14": "bioclip-2", "h14": "bioclip-2.5-huge"}
LABELS = ["lion", "leopard", "cheetah", "spotted hyena", "plains zebra", "empty savanna"]
TARGETS = {"b16_e2e_vs_bf16": 1.27, "b16_12mp_vs_pybioclip": 10.0, "l14_e2e_vs_bf16": 1.4,
           "h14_int8_vs_bf16": 1.5, "h14_min_cosine": 0.995, "first_prediction_s": 3.0, "help_s": 0.1,
           "export_memory_ratio": 4.0}


def export_default(model: str, folder: Path, reuse: bool, parity_images: int | None) -> dict:
    """`bioclip-edge export MODEL --allow-random --out folder` in its own process; the manifest's
    export record (time, peak memory) is that process's."""
    if not (reuse and (folder / "manifest.json").is_file()):
        cmd = [sys.executable, "-m", "bioclip_edge.cli", "export", model, "--allow-random", "--out", str(folder), "--overwrite"]
        cmd += ["--parity-images", str(parity_images)] if parity_images else []
        print("  " + " ".join(cmd[2:]), flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"export {model} failed (exit {done.returncode}): {done.stderr[-2000:]}")
    data = json.loads((folder / "manifest.json").read_text())
    nncf = next((v for v in data["variants"] if v["name"] == "vision.int8-nncf"), None)
    return {"bundle": str(folder), "export_resources": data.get("export_resources"),
            "nncf": None if nncf is None else {"format": nncf.get("format", "onnx"), "preset": nncf["quantization"].get("preset"),
                                               "gate_passed": nncf["quantization"].get("gate_passed"),
                                               "parity_cosine_min": nncf["parity"]["cosine_min"]}}


def tower(bundle, variant: str, backend: str, threads: int):
    """One vision graph of the bundle on a backend: pixels -> embeddings (the runtime's session factory)."""
    from bioclip_edge.profiling.runners import open_plan
    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.inference.selection import make_plan

    plan = make_plan(bundle, "vision", "auto", SessionOptions(model_threads=threads, backend=backend), variant_name=variant)
    session, name = open_plan(plan, bundle)
    return lambda x: session.run(None, {name: x})[0]


def classifier(bundle, threads: int):
    """`classify` with its defaults (`--precision auto --backend auto --decode auto`)."""
    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest, Classifier

    return Classifier(bundle, LABELS, ClassifyRequest(session=SessionOptions(model_threads=threads, backend="auto")))


def alternate(runs: dict, rounds: int) -> dict[str, float]:
    """Median seconds per image of each ``name -> (callable, images)``, round by round after a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(rounds + 1):
        for name, (run, images) in runs.items():
            t = time.perf_counter()
            run()
            if round_:
                times[name].append((time.perf_counter() - t) / images)
    return {name: statistics.median(v) for name, v in times.items()}


def e2e_vs_bf16(bundle, photos: Path, batch: int, threads: int, rounds: int) -> dict:
    """Defaults end to end from files against OpenVINO bf16 on the fp32 graph, inference only."""
    clf = classifier(bundle, threads)
    bf16 = tower(bundle, "vision.fp32", "openvino", threads)
    files = sorted(photos.glob("*.jpg"))
    x = np.random.default_rng(0).standard_normal((batch, 3, *clf.embedder.image_size), dtype=np.float32)
    n = max(1, len(files) // batch)
    per_image = alternate({"bf16_inference_only": (lambda: [bf16(x) for _ in range(n)], n * batch),
                           "defaults_end_to_end": (lambda: list(clf.iter_predict([photos])), len(files))}, rounds)
    rates = {k: 1.0 / v for k, v in per_image.items()}
    return {"images": len(files), "batch": batch, "graph": clf.embedder.variant.name, "provider": clf.embedder.provider,
            "decode": clf.embedder.decode_choice.mode,
            "images_per_s": rates, "ratio": rates["defaults_end_to_end"] / rates["bf16_inference_only"]}


def pybioclip_way(bundle, threads: int):
    """What pybioclip runs per batch of files: PIL open, open_clip's transform, PyTorch eager encode."""
    import open_clip
    import torch
    from PIL import Image

    torch.manual_seed(bundle.manifest.model.source.seed or 0)
    model, _, preprocess = open_clip.create_model_and_transforms(bundle.manifest.model.architecture)
    model.eval()
    torch.set_num_threads(threads)

    def run(files: list[Path], batch: int) -> None:
        for i in range(0, len(files), batch):
            pixels = torch.stack([preprocess(Image.open(f).convert("RGB")) for f in files[i:i + batch]])
            with torch.inference_mode():
                torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)

    return run


def twelve_mp(bundle, photos: Path, batch: int, threads: int, rounds: int) -> dict:
    """Defaults end to end from 12 MP files against pybioclip's way, with the graph ``classify`` picked
    timed alone on pixels in the same rounds: the ceiling no decoding work can lift the ratio past."""
    clf = classifier(bundle, threads)
    pyb = pybioclip_way(bundle, threads)
    graph = tower(bundle, clf.embedder.variant.name, "openvino", threads)
    files = sorted(photos.glob("*.jpg"))
    x = np.random.default_rng(0).standard_normal((batch, 3, *clf.embedder.image_size), dtype=np.float32)
    n = max(1, len(files) // batch)
    per_image = alternate({"pybioclip_way": (lambda: pyb(files, batch), len(files)),
                           "defaults_end_to_end": (lambda: list(clf.iter_predict([photos])), len(files)),
                           "graph_inference_only": (lambda: [graph(x) for _ in range(n)], n * batch)}, rounds)
    rates = {k: 1.0 / v for k, v in per_image.items()}
    return {"images": len(files), "image_size": "4000x3000 JPEG", "graph": clf.embedder.variant.name,
            "images_per_s": rates, "ratio": rates["defaults_end_to_end"] / rates["pybioclip_way"],
            "share_of_graph_alone": rates["defaults_end_to_end"] / rates["graph_inference_only"],
            "ceiling_ratio": rates["graph_inference_only"] / rates["pybioclip_way"]}


def int8_vs_bf16(bundle, batch: int, threads: int, rounds: int) -> dict:
    """The int8 tower against OpenVINO bf16 on the fp32 graph, and both against fp32 on the parity photos."""
    from bioclip_edge.export.parity import Reference

    ref = Reference.load(bundle.path(bundle.manifest.parity_reference))
    int8, bf16 = tower(bundle, "vision.int8-nncf", "auto", threads), tower(bundle, "vision.fp32", "openvino", threads)
    x = np.resize(ref.pixels, (batch, *ref.pixels.shape[1:])).astype(np.float32)
    per_image = alternate({"bf16": (lambda: bf16(x), batch), "int8": (lambda: int8(x), batch)}, rounds)
    rates = {k: 1.0 / v for k, v in per_image.items()}

    def cos(run) -> np.ndarray:
        got = np.concatenate([run(ref.pixels[i:i + batch]) for i in range(0, len(ref.pixels), batch)])
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        return (got * ref.image_embeddings).sum(axis=1)

    return {"batch": batch, "images_per_s": rates, "ratio": rates["int8"] / rates["bf16"],
            "parity_images": len(ref.pixels), "int8_min_cosine_as_run": float(cos(int8).min()),
            "bf16_min_cosine_as_run": float(cos(bf16).min())}


def verdicts(result: dict) -> dict[str, dict]:
    """Each target with its measured figure and whether it was met (None: not measured in this run)."""
    got = {"b16_e2e_vs_bf16": result.get("b16", {}).get("e2e", {}).get("ratio"),
           "b16_12mp_vs_pybioclip": result.get("b16", {}).get("12mp", {}).get("ratio"),
           "l14_e2e_vs_bf16": result.get("l14", {}).get("e2e", {}).get("ratio"),
           "h14_int8_vs_bf16": result.get("h14", {}).get("int8", {}).get("ratio"),
           "h14_min_cosine": (result.get("h14", {}).get("export", {}).get("nncf") or {}).get("parity_cosine_min"),
           "first_prediction_s": result.get("cli", {}).get("first_prediction_cold_s"),
           "help_s": result.get("cli", {}).get("help_s_median"),
           "export_memory_ratio": max((r["export"]["export_resources"]["peak_rss_bytes"] / r["export"]["export_resources"]["fp32_weights_bytes"]
                                       for k, r in result.items() if k in MODELS and r.get("export", {}).get("export_resources")
                                       and k != "b16"), default=None)}
    lower_is_better = {"first_prediction_s", "help_s", "export_memory_ratio"}
    return {k: {"target": TARGETS[k], "measured": v,
                "met": None if v is None else (v <= TARGETS[k] if k in lower_is_better else v >= TARGETS[k])}
            for k, v in got.items()}


def markdown(result: dict) -> str:
    lines = ["# Defaults: `export` then `classify` with no options", "",
             f"Machine: {result['machine']}. Random weights. Ratios measured within one run, alternating.", "",
             "| target | goal | measured | met |", "|---|---|---|---|"]
    for k, v in result["verdicts"].items():
        m = "-" if v["measured"] is None else f"{v['measured']:.4f}"
        lines.append(f"| {k} | {'<=' if k in ('first_prediction_s', 'help_s', 'export_memory_ratio') else '>='} "
                     f"{v['target']} | {m} | {'-' if v['met'] is None else ('yes' if v['met'] else 'NO')} |")
    for key in MODELS:
        r = result.get(key)
        if not r:
            continue
        lines += ["", f"## {MODELS[key]}", "", "```", json.dumps(r, indent=1), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/defaults"))
    p.add_argument("--models", default="b16,l14,h14", help="which of b16,l14,h14 (h14: 20-60 minutes of export on 2 cores)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--model-threads", "--threads", dest="model_threads", type=int, default=os.cpu_count() or 2,
                   help="intra-op threads of the model (and of PyTorch) (default: all CPUs)")
    p.add_argument("--bundle", action="append", default=[], metavar="KEY=PATH",
                   help="use an existing default export for a model, e.g. h14=/data/bioclip25 (not re-exported)")
    p.add_argument("--no-reuse", action="store_true", help="export again even where bundles exist")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from bioclip_edge.runtime.inference.bundle import Bundle

    given = dict(item.split("=", 1) for item in args.bundle)
    from bioclip_edge.profiling.machine import machine_info

    info = machine_info()
    result: dict = {"machine": f"{info.cpu_model or platform.machine()}, {info.logical_cores} logical cores, "
                               f"{', '.join(info.isa)}", "threads": args.model_threads, "versions": info.versions}
    # Folders of 48 and 24 frames: a run's steady state, where decoding the next batch overlaps the
    # tower on this one (a single batch would time decoding and inference back to back).
    frames = write_photos(args.out / "frames-1080p", size=(1920, 1080), copies=6)
    for key in [m.strip() for m in args.models.split(",") if m.strip()]:
        folder = Path(given.get(key, args.out / f"bundle-{key}"))
        print(f"== {MODELS[key]}", flush=True)
        r = result[key] = {"export": export_default(MODELS[key], folder, key in given or not args.no_reuse,
                                                    16 if key == "h14" else None)}
        bundle = Bundle.open(folder)
        if key in ("b16", "l14"):
            r["e2e"] = e2e_vs_bf16(bundle, frames, 8, args.model_threads, args.rounds)
        if key == "b16":
            r["12mp"] = twelve_mp(bundle, write_photos(args.out / "frames-12mp", size=(4000, 3000), copies=3), 8,
                                  args.model_threads, args.rounds)
            result["cli"] = cli_times(folder, next(frames.glob("*.jpg")), args.out)
        if key == "h14":
            r["int8"] = int8_vs_bf16(bundle, 4, args.model_threads, args.rounds)
        print(json.dumps(r, indent=1), flush=True)
    result["verdicts"] = verdicts(result)
    (args.out / "defaults.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "defaults.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

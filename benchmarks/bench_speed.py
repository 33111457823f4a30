"""Speed benchmark: every CPU configuration for the BioCLIP image tower, side by side in one run.

Configurations alternate round by round after a warm-up, so machine drift hits all of them
alike; figures are medians and ratios to PyTorch eager fp32 (what pybioclip runs) = 1.0.
Also measured: zero-shot top-1 agreement of each configuration with PyTorch fp32 on the images
with a clear margin (``bioclip_edge.export.parity.clear_top1``, the exporter's own rule), end-to-end
throughput from a folder of 1920x1080 JPEGs against the tower's own throughput, ``--help`` time and
time to the first prediction of a ``classify`` run. Weights are random (no hub here): speed and
agreement with fp32 do not depend on their values.

    python benchmarks/bench_speed.py --out bench-out/speed [--rounds 5] [--batch 10]
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

CONFIGS = (  # name, backend, variant ({shipped}/{other}: the NNCF presets, filled in at run time)
    ("torch eager fp32 (open_clip, inference mode)", "torch", "vision.fp32"),
    ("onnxruntime fp32", "onnxruntime", "vision.fp32"),
    ("OpenVINO fp32", "openvino-f32", "vision.fp32"),
    ("onnxruntime int8 static QDQ (MatMul)", "onnxruntime", "vision.int8-static"),
    ("OpenVINO on that QDQ model", "openvino", "vision.int8-static"),
    ("onnxruntime int8 dynamic (MatMul)", "onnxruntime", "vision.int8"),
    ("OpenVINO bf16 (default on AMX)", "openvino", "vision.fp32"),
    ("OpenVINO NNCF int8, {shipped} preset (shipped vision.int8-nncf)", "openvino", "vision.int8-nncf"),
    ("OpenVINO NNCF int8, {other} preset (for comparison)", "openvino", "file:vision.int8-nncf-{other}.onnx"),
    ("onnxruntime NNCF int8 ({shipped})", "onnxruntime", "vision.int8-nncf"),
    ("runtime default (--precision auto --backend auto)", "auto", "auto"),
)


TOP1_BOUND = 0.99  # "fastest" counts configurations whose clear-margin top-1 agreement reaches this


def ensure_bundle(folder: Path, calibration: Path) -> Path:
    """The random-weight ViT-B/16 bundle, exported once; re-exported when it predates the NNCF
    preset gate (its int8-nncf entry has no ``preset_note``) or clear-margin top-1 (no ``top1``)."""
    from bioclip_edge.profiling.workflow import ensure_bundle as ensure

    def current(bundle) -> bool:
        nncf = next((v for v in bundle.manifest.variants if v.name == "vision.int8-nncf"), None)
        return nncf is not None and "preset_note" in (nncf.quantization or {}) and bool(nncf.parity and nncf.parity.top1)

    return ensure(folder / "bioclip-b16", "bioclip", ("fp32", "fp16", "int8"), random=False, calibration=calibration,
                  is_current=current, progress=lambda m: print(f"  {m}", flush=True))


def presets(bundle) -> dict[str, str]:
    """{"shipped": the bundle's NNCF preset, "other": the one it did not ship}."""
    shipped = bundle.variant("vision", name="vision.int8-nncf").quantization["preset"]
    return {"shipped": shipped, "other": "transformer" if shipped == "performance" else "performance"}


def ensure_other_nncf(bundle, folder: Path, preset: str) -> None:
    """The NNCF preset the bundle did not ship, written beside it for the side-by-side table."""
    target = folder / f"vision.int8-nncf-{preset}.onnx"
    if target.exists():
        return
    from bioclip_edge.export.parity import Reference
    from bioclip_edge.export.precision import QuantSettings, nncf_available, quantize_nncf_int8

    if not nncf_available():
        return
    ref = Reference.load(bundle.path(bundle.manifest.parity_reference))
    pixels = ref.pixels[:12]  # the 8 calibration photos + 4 samples, as the README's figures were calibrated
    quantize_nncf_int8(bundle.path(bundle.variant("vision", "fp32").file), target,
                       [pixels[i:i + 1] for i in range(len(pixels))], "pixels", QuantSettings("static"), preset=preset)


def agreement_pixels(bundle, n: int, seed: int = 1) -> np.ndarray:
    """``n`` zero-shot test inputs: the exporter's random crops of the scikit-image sample photos
    (another seed than the bundle's parity crops), preprocessed by the bundle's own transform."""
    from bioclip_edge.export.reference import photo_crops
    from bioclip_edge.runtime.images.transform import ImageTransform

    transform = ImageTransform.from_manifest(bundle.manifest.preprocess)
    return np.stack([transform(crop) for crop in photo_crops(n, seed)]).astype(np.float32)


def write_photos(folder: Path, size: tuple[int, int] | None = None, copies: int = 1) -> Path:
    """The sample photos as camera-card JPEGs, resized to ``size`` (e.g. 1080p) and copied ``copies`` times."""
    from PIL import Image

    from bioclip_edge.export.reference import sample_photo

    folder.mkdir(parents=True, exist_ok=True)
    names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel", "retina", "hubble_deep_field")
    for c in range(copies):
        for name in names:
            im = sample_photo(name)
            if size:
                im = im.resize(size, Image.BICUBIC)
            im.save(folder / f"{name}-{c}.jpg", quality=90)
    return folder


def make_runner(bundle, backend: str, variant_name: str, threads: int):
    """A callable embedding a pixel batch -> embeddings, and a label for what runs: PyTorch, or the
    inference plan of a configuration opened by the runtime's one session factory."""
    if backend == "torch":
        return torch_runner(bundle, threads)
    from bioclip_edge.profiling.runners import open_plan
    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.inference.selection import make_plan, plan_file

    options = SessionOptions(model_threads=threads, backend=backend)
    if variant_name.startswith("file:"):  # a graph beside the bundle, not in its manifest
        plan, owner = plan_file(bundle.root.parent / variant_name[5:], options), None
    else:  # "auto": what `classify` runs with no options
        precision, named = ("auto", None) if variant_name == "auto" else ("auto", variant_name)
        plan, owner = make_plan(bundle, "vision", precision, options, variant_name=named), bundle
    session, input_name = open_plan(plan, owner)
    provider = session.get_providers()[0]
    label = f"{plan.variant} on {provider}" if backend == "auto" else provider
    return (lambda x: session.run(None, {input_name: x})[0]), label


def torch_runner(bundle, threads: int):
    """open_clip eager with the export's own random weights (same seed), normalised like the graphs."""
    import open_clip
    import torch

    torch.manual_seed(bundle.manifest.model.source.seed or 0)  # the export's random weights, again
    model = open_clip.create_model(bundle.manifest.model.architecture).eval()
    torch.set_num_threads(threads)

    def run(x):
        with torch.inference_mode():
            out = model.encode_image(torch.from_numpy(x))
        return torch.nn.functional.normalize(out, dim=-1).numpy()

    return run, f"torch {torch.__version__}"


def tower_speed(bundle, batch: int, rounds: int, threads: int, agreement_images: int) -> list[dict]:
    """Every configuration: zero-shot top-1 agreement with PyTorch fp32 on ``agreement_images``
    photo crops x the parity reference's labels, then speed in alternating rounds."""
    from bioclip_edge.export.parity import Reference

    ref = Reference.load(bundle.path(bundle.manifest.parity_reference))
    x = np.ascontiguousarray(np.resize(ref.pixels, (batch, *ref.pixels.shape[1:])))
    crops = agreement_pixels(bundle, agreement_images)
    names = presets(bundle)
    rows, runners, want = [], {}, None
    for template, backend, variant_template in CONFIGS:
        name, variant = template.format(**names), variant_template.format(**names)
        try:
            run, provider = make_runner(bundle, backend, variant, threads)
            run(x)  # warm-up (OpenVINO compiles for the shape here)
            run(x)
            runners[name] = run
            got = np.concatenate([run(crops[i:i + batch]) for i in range(0, len(crops), batch)])
            got /= np.linalg.norm(got, axis=1, keepdims=True)
            logits = got @ ref.text_embeddings.T
            if want is None:  # the first configuration is PyTorch fp32: the reference
                want, want_emb = logits, got
                on_ref = run(ref.pixels)
                if float((on_ref * ref.image_embeddings).sum(1).min()) < 0.99999:
                    raise RuntimeError("the PyTorch baseline does not reproduce the bundle's weights")
            cos = (got * want_emb).sum(1)
            rows.append({"config": name, "backend": backend, "variant": variant, "provider": provider, "times": [],
                         **agreement(want, logits), "labels": len(ref.labels), "agreement_images": len(crops),
                         "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())})
        except Exception as exc:  # keep the row: a failed configuration is a result too
            rows.append({"config": name, "backend": backend, "variant": variant, "error": f"{type(exc).__name__}: {exc}"})
    time_rounds(rows, runners, x, rounds)
    base_row = rows[0]
    base = statistics.median(base_row["times"]) if base_row.get("times") else None
    bf16 = next((r for r in rows if r["config"].startswith("OpenVINO bf16") and r.get("times")), None)
    for r in rows:
        if r.get("times"):
            med = statistics.median(r["times"])
            r.update(median_s=med, images_per_s=batch / med, ratio_vs_torch=(base / med) if base else None,
                     ratio_vs_openvino_bf16=(statistics.median(bf16["times"]) / med) if bf16 else None)
    return rows


def time_rounds(rows: list[dict], runners: dict, x: np.ndarray, rounds: int) -> None:
    """``rounds`` timed calls per configuration with profiling's round-robin timer (its pause lets
    the previous configuration's threads go idle), into each row's ``times`` (seconds)."""
    from bioclip_edge.profiling.bench import BenchSettings, time_round_robin

    by_name = {r["config"]: r for r in rows}
    timed = [((lambda run=run: run(x)), {"status": "ok", "name": name}) for name, run in runners.items()]
    time_round_robin(timed, BenchSettings(min_runs=rounds, max_runs=rounds))
    for _, row in timed:
        by_name[row["name"]]["times"] = [ms / 1000 for ms in row["latencies_ms"]]
        if row["status"] != "ok":
            by_name[row["name"]]["error"] = row["error"]


def agreement(want: np.ndarray, got: np.ndarray) -> dict:
    """Top-1 of ``got`` against PyTorch fp32's ``want`` (cosine scores, image x label): over every
    crop, and on the crops with a clear margin (the exporter's rule, held to TOP1_BOUND); a flip's
    margin is how far fp32's own top-1 led the label the configuration picked."""
    import dataclasses

    from bioclip_edge.export.parity import clear_top1

    check = clear_top1(want, got, TOP1_BOUND)
    picked, rows = got.argmax(1), np.arange(len(want))
    flipped = picked != want.argmax(1)
    margin = want.max(1) - want[rows, picked]
    return {"top1_agreement": float((~flipped).mean()), "top1_clear": dataclasses.asdict(check),
            "top1_clear_text": check.text(), "top1_passed": bool(check.measurable and check.passed),
            "flips_largest_fp32_margin": float(margin[flipped].max()) if flipped.any() else None}


def end_to_end(bundle, photos: Path, batch: int, threads: int, rounds: int = 3) -> dict:
    """Folder of 1920x1080 JPEGs -> predictions with the runtime's defaults (``--precision auto
    --backend auto``), exact and ``--fast-decode``, against that tower's own throughput, all
    measured round by round in one run so machine drift hits them alike."""
    import dataclasses

    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest, Classifier

    labels = ["lion", "leopard", "cheetah", "spotted hyena", "zebra", "empty savanna"]
    request = ClassifyRequest(precision="auto", batch_size=batch, session=SessionOptions(model_threads=threads, backend="auto"))
    modes = {"exact": Classifier(bundle, labels, dataclasses.replace(request, decode="exact")),
             "fast": Classifier(bundle, labels, dataclasses.replace(request, decode="draft"))}
    clf = modes["exact"]
    provider, variant = clf.embedder.provider, clf.embedder.variant.name
    files = sorted(photos.glob("*.jpg"))
    x = np.zeros((batch, 3, *clf.embedder.image_size), dtype=np.float32)
    n_batches = max(1, len(files) // batch)
    times: dict[str, list[float]] = {"tower": [], **{m: [] for m in modes}}
    results: dict[str, list] = {}
    for round_ in range(rounds + 1):  # round 0 warms up every path
        clf.embedder.embed(x)
        t = time.perf_counter()
        for _ in range(n_batches):
            clf.embedder.embed(x)
        times["tower"].append((time.perf_counter() - t) / (n_batches * batch))
        for mode, classifier in modes.items():
            t = time.perf_counter()
            results[mode] = list(classifier.iter_predict([photos]))
            times[mode].append((time.perf_counter() - t) / len(results[mode]))
    per_image = {k: statistics.median(v[1:]) for k, v in times.items()}
    tower = 1.0 / per_image["tower"]
    top1 = [r["predictions"][0]["index"] if r["predictions"] else None for r in results["exact"]]
    fast_top1 = [r["predictions"][0]["index"] if r["predictions"] else None for r in results["fast"]]
    out = {"provider": provider, "variant": variant, "images": len(results["exact"]),
           "failed": sum(bool(r["failures"]) for r in results["exact"]), "tower_images_per_s": tower,
           "decode_threads": clf.embedder.flow.decode_threads, "image_size": "1920x1080 JPEG", "rounds": rounds,
           "fast_decode_draft_size": list(clf.transform.draft_size),
           "fast_top1_agreement_with_exact": float(np.mean([a == b for a, b in zip(top1, fast_top1)]))}
    for mode in modes:
        rate = 1.0 / per_image[mode]
        out[f"{mode}_images_per_s"] = rate
        out[f"{mode}_fraction_of_tower"] = rate / tower
    out["end_to_end_images_per_s"], out["fraction_of_tower"] = out["exact_images_per_s"], out["exact_fraction_of_tower"]
    return out


def cli_times(bundle: Path, photo: Path, out: Path) -> dict:
    """``--help`` time, and process start to the first (one-image) prediction of ``classify``:
    cold (empty caches: every used file hashed, the model compiled, the labels embedded) and warm
    (the same command again: checksum stamps, OpenVINO's compiled-model cache, cached labels)."""
    import tempfile

    exe = [sys.executable, "-m", "bioclip_edge.cli"]
    helps = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run(exe + ["--help"], check=True, capture_output=True)
        helps.append(time.perf_counter() - t)
    result = {"help_s_median": statistics.median(helps)}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "BIOCLIP_EDGE_CACHE_DIR": cache}
        for run in ("cold", "warm"):
            t = time.perf_counter()
            proc = subprocess.run(exe + ["classify", str(bundle), str(photo), "--labels", "lion,leopard", "--out",
                                         str(out / "first.json"), "--no-progress", "--overwrite"], capture_output=True, text=True, env=env)
            result[f"first_prediction_{run}_s"] = time.perf_counter() - t
            result[f"classify_exit_{run}"] = proc.returncode
    result["first_prediction_s"] = result["first_prediction_cold_s"]
    return result


def markdown(result: dict) -> str:
    lines = [f"# Speed: BioCLIP ViT-B/16 image tower, batch {result['batch']}, {result['threads']} threads",
             "", f"Machine: {result['machine']}. Random weights (speed and agreement do not depend on them).",
             "Ratios are to PyTorch eager fp32 measured in the same run (medians over alternating rounds).", "",
             f"Top-1 and cosines: against PyTorch fp32 on {result['agreement_images']} photo crops x "
             f"{result['tower'][0].get('labels', '?')} labels. Random weights put labels close together: top-1 is "
             "counted on the crops whose fp32 top-1 leads by more than 2x the configuration's score error E "
             "(k/n; m near-ties not judged), as the exporter does. All crops: agreement over every crop.", "",
             "A flip's margin is how far fp32's own top-1 led the label the configuration picked (cosine).", "",
             "| configuration | provider | images/s | vs PyTorch | vs OpenVINO bf16 | top-1, clear margins (unclear) | "
             "top-1, all crops | largest flipped margin / 2E | min / mean cosine |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["tower"]:
        if "error" in r:
            lines.append(f"| {r['config']} | - | failed: {r['error'][:80]} | | | | | | |")
            continue
        vs_bf16 = f"{r['ratio_vs_openvino_bf16']:.2f}" if r.get("ratio_vs_openvino_bf16") else "-"
        vs_torch = f"{r['ratio_vs_torch']:.2f}" if r.get("ratio_vs_torch") else "-"  # the baseline may have failed
        c = r["top1_clear"]
        clear = f"{c['agree']}/{c['clear']} ({c['unclear']})" if c["clear"] >= c["min_clear"] else "not measurable"
        flip = f"{r['flips_largest_fp32_margin']:.4f}" if r.get("flips_largest_fp32_margin") is not None else "no flips"
        lines.append(f"| {r['config']} | {r['provider']} | {r['images_per_s']:.2f} | {vs_torch} | {vs_bf16} | "
                     f"{clear} | {r['top1_agreement']:.3f} | {flip} / {2 * c['score_error']:.4f} | "
                     f"{r['cosine_min']:.4f} / {r['cosine_mean']:.5f} |")
    f = result.get("fastest")
    if f:
        lines += ["", f"Fastest shipped configuration with clear-margin top-1 >= {TOP1_BOUND}: {f['config']}: "
                      f"{f['ratio_vs_torch'] or 0:.2f}x PyTorch eager, {f['ratio_vs_openvino_bf16'] or 0:.2f}x OpenVINO bf16 "
                      f"({f['top1_clear_text']})."]
    e = result.get("end_to_end")
    if e:
        lines += ["", f"End to end ({e['images']} x {e['image_size']} -> predictions, {e['provider']} {e['variant']}, "
                      f"{e['decode_threads']} decode threads, medians of {e['rounds']} alternating rounds):", "",
                      "| decoding | images/s | fraction of the tower's own throughput |", "|---|---|---|",
                      f"| tower alone (batch {result['batch']}, no decoding) | {e['tower_images_per_s']:.2f} | 100% |",
                      f"| exact (default; open_clip parity) | {e['exact_images_per_s']:.2f} | {100 * e['exact_fraction_of_tower']:.0f}% |",
                      f"| --fast-decode (JPEG draft >= {e['fast_decode_draft_size'][0]} px) | {e['fast_images_per_s']:.2f} | "
                      f"{100 * e['fast_fraction_of_tower']:.0f}% |", "",
                      f"--fast-decode top-1 agreement with exact decoding on these frames: {e['fast_top1_agreement_with_exact']:.3f}."]
    c = result.get("cli")
    if c:
        lines += ["", f"`bioclip-edge --help`: {c['help_s_median'] * 1000:.0f} ms (median of 5). "
                      f"First prediction of a `classify` run (process start to exit, one image): "
                      f"{c['first_prediction_cold_s']:.2f} s on first use (empty caches), "
                      f"{c['first_prediction_warm_s']:.2f} s after."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/speed"))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--model-threads", "--threads", dest="model_threads", type=int, default=os.cpu_count() or 2,
                   help="intra-op threads of the model (and of PyTorch) (default: all CPUs)")
    p.add_argument("--e2e-copies", type=int, default=5, help="copies of the 8 sample photos as 1920x1080 JPEGs")
    p.add_argument("--agreement-images", type=int, default=200, help="photo crops for top-1 agreement (default 200)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from bioclip_edge.runtime.inference.bundle import Bundle

    folder = ensure_bundle(args.out, write_photos(args.out / "calibration"))
    bundle = Bundle.open(folder)
    ensure_other_nncf(bundle, args.out, presets(bundle)["other"])
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
              "batch": args.batch, "threads": args.model_threads, "agreement_images": args.agreement_images,
              "nncf_preset_shipped": bundle.variant("vision", name="vision.int8-nncf").quantization}
    result["tower"] = tower_speed(bundle, args.batch, args.rounds, args.model_threads, args.agreement_images)
    ok = [r for r in result["tower"] if r.get("images_per_s") and r["backend"] != "torch" and r["top1_passed"]
          and not r["variant"].startswith("file:")]  # what the bundle ships
    if ok:
        best = max(ok, key=lambda r: r["images_per_s"])
        result["fastest"] = {k: best[k] for k in ("config", "backend", "variant", "images_per_s", "ratio_vs_torch",
                                                  "ratio_vs_openvino_bf16", "top1_agreement", "top1_clear_text")}
    photos = write_photos(args.out / "frames-1080p", size=(1920, 1080), copies=args.e2e_copies)
    result["end_to_end"] = end_to_end(bundle, photos, args.batch, args.model_threads, rounds=args.rounds)
    result["cli"] = cli_times(folder, next(photos.glob("*.jpg")), args.out)
    (args.out / "speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "speed.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

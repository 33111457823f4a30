"""Label-matrix benchmark: trimmed-context build speed-up, and block scoring of an 867k x 768 matrix.

1. Build: the same random-weight ViT-B-16 text tower embeds the same label texts three ways,
   side by side in one run: open_clip ``encode_text`` at 77 tokens (what open_clip users run),
   our ONNX graph at 77 tokens, and ``TextEncoder`` on trimmed contexts (sorted by length, each
   batch cut to its longest label). Speed-ups are ratios within this run; the cosine between
   trimmed and open_clip embeddings is reported with them.
2. Score: a synthetic fp16 label file the size of BioCLIP 2's TreeOfLife matrix (867,000 x 768)
   is written, opened memory-mapped and scored in fp32 blocks, in a child process so its peak
   memory is its own: time to open, top-5 time for 1 and 64 images, labels x images per second,
   tracemalloc peak (numpy allocations) and the peak resident set split into anonymous memory
   and file pages (the mapped matrix is page cache, not process memory).
3. Scorers vs the image tower: the same matrix scored by each label scorer
   (numpy fp32 blocks; OpenVINO f32; OpenVINO in the CPU's fastest precision with exact fp32 rescoring;
   ``openvino-bf16`` / ``openvino-f16`` force a precision) at the job's scoring window
   (``LabelMatrix.scoring_window``: the vectors ``classify`` scores per pass, 64 at this size), each in
   its own child process for its peak memory and its agreement with numpy; then the non-numpy
   scorers at windows 1, 16 and the job's, alternated in one process with two ViT-L/14 image towers
   (random weights, OpenVINO as ``--backend auto`` picks it, at the job's batch of 16): the NNCF int8
   graph (``vision.int8-nncf``, what ``--precision auto`` runs) and bf16 on the fp32 graph. ms per
   image for each, and the ratios scoring / tower (goal: under 0.10 of the int8 tower at the job's
   window). ``openvino`` runs as ``classify`` does, ranking on the matrix's int8 ranking copy
   (``labels.ranking``, made once per matrix file; its making is ``setup_s``);
   ``openvino:stored-rows`` ranks the fp16 rows themselves. The tower bundle is exported once and
   cached (``--tower-bundle``, used as it is when it exists; a few minutes).

Usage: python benchmarks/bench_labels.py --out bench-out/labels   (a folder, or a .json file)
       ... --skip-build --scorers-only --scorers numpy,openvino:stored-rows,openvino   (part 3 alone)
Takes about 4-8 minutes on 2 cores (plus the one-time ViT-L/14 export).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from label_scorers import _proc_status, bench_scorers, ensure_tower_bundle  # noqa: E402 (beside this script)

HERE = Path(__file__).resolve().parent
LABELS_FILE = HERE.parent / "tests" / "data" / "labels_tokenizer.txt"
TOL_TAXA = [
    "Animalia Chordata Mammalia Carnivora Felidae Panthera leo lion",
    "Animalia Chordata Mammalia Artiodactyla Bovidae Syncerus caffer African buffalo",
    "Animalia Chordata Aves Passeriformes Corvidae Corvus corax common raven",
    "Plantae Tracheophyta Magnoliopsida Fagales Fagaceae Quercus robur English oak",
]


def make_text_bundle(folder: Path, seed: int = 0):
    """A bundle holding only a random ViT-B-16 text tower (fp32), exported as the exporter does it."""
    import open_clip
    import torch

    from bioclip_edge.export.onnx_export import export_tower
    from bioclip_edge.export.tokenizer_files import write_tokenizer_files
    from bioclip_edge.export.towers import text_tower_for
    from bioclip_edge.runtime.inference.bundle import Bundle, sha256_file
    from bioclip_edge.runtime.inference.manifest import SCHEMA_VERSION, Manifest, ModelInfo, Preprocess, Variant, WeightsSource

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-16").eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    cfg = open_clip.get_model_config("ViT-B-16")
    tower, dynamic = text_tower_for(model)
    example = tokenizer(["a photo of a lion.", "Panthera leo"])[:, :8].to(torch.int32)
    f = export_tower(tower, example, folder / "text.fp32.onnx", "input_ids", "ids", dynamic_length=77 if dynamic else None)
    spec = write_tokenizer_files(tokenizer, cfg, folder)
    variant = Variant(name="text.fp32", tower="text", precision="fp32", file=f.graph.name, sha256=sha256_file(f.graph),
                      size_bytes=f.graph.stat().st_size, opset=18, input_name="input_ids", output_name="embeddings",
                      dynamic_length=dynamic)
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        model=ModelInfo(id="ViT-B-16", architecture="ViT-B-16", embed_dim=512, logit_scale=float(model.logit_scale.exp()),
                        logit_bias=None, params_vision=0, params_text=sum(p.numel() for p in tower.parameters()),
                        source=WeightsSource(kind="random", ref="ViT-B-16", random_weights=True, seed=seed)),
        preprocess=Preprocess(image_size=(224, 224), resize_mode="shortest", interpolation="bicubic",
                              mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)),
        tokenizer=spec, variants=(variant,),
    )
    manifest.write(folder)
    return Bundle.open(folder), model, tokenizer


def bench_build(n_texts: int, batch_size: int, rounds: int = 2) -> dict:
    import torch

    from bioclip_edge.runtime.text.recipes import OPENAI_IMAGENET_TEMPLATES
    from bioclip_edge.runtime.text.encoder import TextEncoder

    names = [line for line in LABELS_FILE.read_text(encoding="utf-8").split("\n") if line.strip()]
    workloads = {
        "names": names[:n_texts],
        "tol_templates": [t.format(x) for x in TOL_TAXA for t in OPENAI_IMAGENET_TEMPLATES][:n_texts],
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle, model, tokenizer = make_text_bundle(Path(tmp))
        export_s = time.perf_counter() - t0
        encoder = TextEncoder(bundle)
        out = {"export_text_tower_s": round(export_s, 1), "batch_size": batch_size, "rounds_best_of": rounds, "torch_threads": torch.get_num_threads(),
               "model": "ViT-B-16 text tower, random weights (seed 0)", "workloads": {}}

        def torch_77(texts):
            embs = []
            with torch.inference_mode():
                for s in range(0, len(texts), batch_size):
                    e = model.encode_text(tokenizer(texts[s : s + batch_size]))
                    embs.append(torch.nn.functional.normalize(e, dim=-1).numpy())
            return np.concatenate(embs)

        def onnx_77(texts):
            ids = encoder.tokenizer.encode(texts)
            return np.concatenate([_run_full(encoder, ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)])

        methods = [("open_clip_encode_text_77", torch_77), ("onnx_77", onnx_77),
                   ("onnx_trimmed", lambda t: encoder.encode(t, batch_size=batch_size))]
        for name, texts in workloads.items():
            lengths = [len(x) for x in encoder.tokenizer.encode(texts)]
            timings, results = _time_methods(methods, texts, rounds)
            cos = (results["onnx_trimmed"] * results["open_clip_encode_text_77"]).sum(axis=1)
            out["workloads"][name] = {
                "texts": len(texts), "tokens_mean": round(float(np.mean(lengths)), 1), "tokens_max": int(max(lengths)),
                "seconds": {k: round(v, 3) for k, v in timings.items()},
                "texts_per_s": {k: round(len(texts) / v, 1) for k, v in timings.items()},
                "speedup_trimmed_vs_open_clip_77": round(timings["open_clip_encode_text_77"] / timings["onnx_trimmed"], 2),
                "speedup_trimmed_vs_onnx_77": round(timings["onnx_77"] / timings["onnx_trimmed"], 2),
                "cosine_trimmed_vs_open_clip_min": float(cos.min()),
            }
    return out


def _time_methods(methods, texts, rounds: int) -> tuple[dict[str, float], dict]:
    """Each method's best time over ``rounds`` calls on profiling's round-robin timer, and its result."""
    from bioclip_edge.profiling.bench import BenchSettings, time_round_robin

    results = {label: fn(texts) for label, fn in methods}  # untimed: the results, and the warm-up
    timed = [((lambda fn=fn: fn(texts)), {"status": "ok", "name": label}) for label, fn in methods]
    time_round_robin(timed, BenchSettings(min_runs=rounds, max_runs=rounds))
    return {row["name"]: min(row["latencies_ms"]) / 1000 for _, row in timed}, results


def _run_full(encoder, ids):
    """The text graph on ids padded to the full context (what open_clip runs), through the encoder's session."""
    from bioclip_edge.runtime.text.tokenizer import pad_ids

    padded = pad_ids(ids, encoder.tokenizer.pad_id, encoder.context_length)
    dtype = np.int64 if "int64" in encoder.session.get_inputs()[0].type else np.int32
    (emb,) = encoder.session.run([encoder.variant.output_name], {encoder.variant.input_name: padded.astype(dtype)})
    return emb


def write_synthetic_matrix(path: Path, n: int, dim: int, seed: int = 0) -> float:
    from bioclip_edge.runtime.labels.store import write_label_file

    rng = np.random.default_rng(seed)
    block = 50_000

    def rows():
        for s in range(0, n, block):
            x = rng.standard_normal((min(block, n - s), dim), dtype=np.float32)
            yield x / np.linalg.norm(x, axis=1, keepdims=True)

    info = {"model_id": "synthetic", "architecture": "ViT-L-14", "embed_dim": dim, "logit_scale": 100.0, "logit_bias": None,
            "random_weights": True, "seed": seed, "text_variant": None, "text_sha256": None, "text_tower_sha256s": []}
    start = time.perf_counter()
    write_label_file(path, (n, dim), "fp16", rows(), {"name": [f"species {i}" for i in range(n)]},
                     {"recipe": "plain", "bundle": info, "note": "synthetic benchmark matrix"})
    return time.perf_counter() - start


def _score_child(path: str, batch: int, queue) -> None:
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    before = _proc_status()
    tracemalloc.start()
    t0 = time.perf_counter()
    m = LabelMatrix.load(path)
    open_s = time.perf_counter() - t0
    _, open_peak = tracemalloc.get_traced_memory()
    rng = np.random.default_rng(1)
    rows = rng.integers(0, m.n, batch)
    images = np.asarray(m.matrix[np.sort(rows)], dtype=np.float32)
    images += 0.02 * rng.standard_normal(images.shape, dtype=np.float32)
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    m.topk(images[:1], k=5)
    one_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx, probs = m.topk(images, k=5)
    batch_s = time.perf_counter() - t0
    _, score_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    hits = float((idx[:, 0] == np.sort(rows)).mean())
    sub = 20_000  # why blocks are converted to fp32: numpy's fp16 matmul on a slice
    t0 = time.perf_counter()
    np.asarray(m.matrix[:sub]) @ images.T.astype(np.float16)
    fp16_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    np.asarray(m.matrix[:sub], dtype=np.float32) @ images.T
    fp32_s = time.perf_counter() - t0
    queue.put({
        "labels": m.n, "dim": m.dim, "dtype": m.dtype, "file_MB": round(m.matrix.nbytes / 1e6, 1),
        "scorer": m.summary().get("scorer"),
        "open_s": round(open_s, 4), "open_tracemalloc_peak_MB": round(open_peak / 1e6, 2),
        "top5_1_image_s": round(one_s, 3), f"top5_{batch}_images_s": round(batch_s, 3),
        "images_per_s_batched": round(batch / batch_s, 1),
        "label_image_scores_per_s": round(m.n * batch / batch_s / 1e6, 1), "label_image_scores_per_s_unit": "millions",
        "score_tracemalloc_peak_MB": round(score_peak / 1e6, 1),
        "self_top1_recovered": hits,
        "numpy_fp16_matmul_vs_fp32_block_slowdown": round(fp16_s / max(fp32_s, 1e-9), 1),
        "process_before": before, "process_after": _proc_status(),
    })


def bench_scoring(n: int, dim: int, batch: int, folder: Path, scorers_cfg: dict | None = None,
                  scorers_only: bool = False) -> dict:
    from bioclip_edge.runtime.labels.openvino_scoring import openvino_block_rows
    from bioclip_edge.runtime.labels.scoring import numpy_block_rows

    path = folder / "synthetic_867k.npz"
    write_s = write_synthetic_matrix(path, n, dim)
    result: dict = {}
    if not scorers_only:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_score_child, args=(str(path), batch, queue))
        proc.start()
        result = queue.get(timeout=900)
        proc.join()
    result["write_s"] = round(write_s, 1)
    result["block_rows"] = numpy_block_rows(dim)
    result["openvino_block_rows"] = openvino_block_rows(dim)
    result["fp32_brute_force_matrix_MB"] = round(n * dim * 4 / 1e6, 1)
    if scorers_cfg is not None:
        try:
            bundle = ensure_tower_bundle(scorers_cfg["tower_bundle"]) if scorers_cfg["tower_bundle"] else None
            result["scorers_vs_tower"] = bench_scorers(path, bundle, scorers_cfg["scorers"], scorers_cfg["batch"],
                                                       scorers_cfg["rounds"], scorers_cfg["windows"],
                                                       scorers_cfg["tower_batch"])
        except Exception as exc:  # noqa: BLE001 - keep the scoring figures already measured
            result["scorers_vs_tower"] = {"error": f"{type(exc).__name__}: {exc}"}
    from bioclip_edge.runtime.labels.ranking import forget

    forget(path)  # the throw-away matrix's int8 ranking copy in the user cache
    path.unlink()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="output folder, or a .json file")
    p.add_argument("--texts", type=int, default=128, help="texts per build workload (default 128)")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per method, order alternated, best kept (default 2)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--labels", type=int, default=867_000, help="rows of the synthetic scoring matrix")
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--scorers", "--engines", default="numpy,openvino-f32,openvino:stored-rows,openvino",
                   help="label scorers to compare at --score-batch (comma-separated; empty to skip)")
    p.add_argument("--scorers-only", "--engines-only", action="store_true",
                   help="skip part 2 (numpy block scoring at --images); still writes the matrix for part 3")
    p.add_argument("--score-batch", type=int, default=None,
                   help="vectors per scoring call (default: the job's scoring window for this matrix size)")
    p.add_argument("--score-windows", default="1,16",
                   help="more scoring windows timed against the towers, beside --score-batch (default 1,16)")
    p.add_argument("--tower-batch", type=int, default=16, help="images per tower call (default 16: classify's --batch-size)")
    p.add_argument("--score-rounds", type=int, default=3, help="alternated rounds, medians kept (default 3)")
    p.add_argument("--tower-bundle", type=Path, default=Path(tempfile.gettempdir()) / "bioclip-edge-bench" / "vit-l-14",
                   help="random-weight ViT-L/14 bundle for the tower timing (exported there once if missing)")
    p.add_argument("--skip-tower", action="store_true", help="compare scorers without the ViT-L/14 tower")
    args = p.parse_args(argv)
    from bioclip_edge.runtime.labels.scoring import scoring_window
    out = args.out if args.out.suffix == ".json" else args.out / "bench_labels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                    "note": "ratios measured side by side in this run; absolute times drift 2-3x between runs"}
    if not args.skip_build:
        try:
            report["build"] = bench_build(args.texts, args.batch_size, args.rounds)
        except Exception as exc:  # noqa: BLE001 - a failed part is a result row, not a lost report
            report["build"] = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(report["build"], indent=2), flush=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        try:
            scorers = [e for e in args.scorers.split(",") if e.strip()]
            batch = args.score_batch or scoring_window(args.labels, args.dim)
            windows = sorted({batch, *(int(w) for w in args.score_windows.split(",") if w.strip())})
            scorers_cfg = None if not scorers else {
                "scorers": scorers, "batch": batch, "windows": windows, "tower_batch": args.tower_batch,
                "rounds": args.score_rounds, "tower_bundle": None if args.skip_tower else args.tower_bundle}
            report["scoring"] = bench_scoring(args.labels, args.dim, args.images, Path(tmp), scorers_cfg, args.scorers_only)
        except Exception as exc:  # noqa: BLE001
            report["scoring"] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report["scoring"], indent=2), flush=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all("error" not in report.get(k, {}) for k in ("build", "scoring")) else 1


if __name__ == "__main__":
    sys.exit(main())

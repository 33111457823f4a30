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
3. Engines vs the image tower (issue 6): the same matrix scored at batch 16 by each scoring engine
   (numpy fp32 blocks; ``openvino-old``, the engine before its rework, kept here to be timed side
   by side; OpenVINO f32; OpenVINO in the CPU's fastest precision with exact fp32 rescoring;
   ``openvino-bf16`` / ``openvino-f16`` force a precision), each in its own child process for its
   peak memory and its agreement with numpy,
   then all of them alternated in one process with the ViT-L/14 image tower (random weights,
   OpenVINO as ``--backend auto`` picks it) at the same batch: ms per image for each, and the
   ratio scoring / tower (goal: under 0.10). The tower bundle is exported once and cached
   (``--tower-bundle``; a few minutes).

Usage: python benchmarks/bench_labels.py --out bench-out/labels   (a folder, or a .json file)
       ... --skip-build --engines-only --engines numpy,openvino-old,openvino   (part 3 alone)
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
    from bioclip_edge.runtime.engine.bundle import Bundle, sha256_file
    from bioclip_edge.runtime.engine.manifest import SCHEMA_VERSION, Manifest, ModelInfo, Preprocess, Variant, WeightsSource

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

        for name, texts in workloads.items():
            torch_77(texts[:8]), onnx_77(texts[:8]), encoder.encode(texts[:8])  # warm-up
            lengths = [len(x) for x in encoder.tokenizer.encode(texts)]
            timings: dict[str, float] = {}
            results = {}
            methods = [("open_clip_encode_text_77", torch_77), ("onnx_77", onnx_77),
                       ("onnx_trimmed", lambda t: encoder.encode(t, batch_size=batch_size))]
            for round_ in range(rounds):  # alternate the order; keep each method's best time
                for label, fn in (methods if round_ % 2 == 0 else methods[::-1]):
                    start = time.perf_counter()
                    results[label] = fn(texts)
                    timings[label] = min(timings.get(label, float("inf")), time.perf_counter() - start)
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


def _run_full(encoder, ids):
    from bioclip_edge.runtime.text.tokenizer import pad_ids

    padded = pad_ids(ids, encoder.tokenizer.pad_id, encoder.context_length)
    (emb,) = encoder.session.run([encoder.variant.output_name], {encoder.variant.input_name: padded.astype(encoder._id_dtype)})
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


def _proc_status() -> dict:
    fields = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                fields[key + "_MB"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return fields


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
        "engine": m.summary().get("scoring_engine"),
        "open_s": round(open_s, 4), "open_tracemalloc_peak_MB": round(open_peak / 1e6, 2),
        "top5_1_image_s": round(one_s, 3), f"top5_{batch}_images_s": round(batch_s, 3),
        "images_per_s_batched": round(batch / batch_s, 1),
        "label_image_scores_per_s": round(m.n * batch / batch_s / 1e6, 1), "label_image_scores_per_s_unit": "millions",
        "score_tracemalloc_peak_MB": round(score_peak / 1e6, 1),
        "self_top1_recovered": hits,
        "numpy_fp16_matmul_vs_fp32_block_slowdown": round(fp16_s / max(fp32_s, 1e-9), 1),
        "process_before": before, "process_after": _proc_status(),
    })


def _queries(m, batch: int, seed: int = 2) -> np.ndarray:
    """Image-like queries: cosine ~0.3 to one label and ~0 to the rest (as BioCLIP photos score)."""
    rng = np.random.default_rng(seed)
    target = np.asarray(m.matrix[np.sort(rng.integers(0, m.n, batch))], dtype=np.float32)
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    noise = rng.standard_normal(target.shape, dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    q = 0.3 * target + 0.95 * noise
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# ---- the engine before issue 6's rework, kept here only to be timed side by side ("openvino-old") ----
LEGACY_ENGINE = "openvino-old"


def _legacy_graphs(precision: str):
    """Per block: an f16 -> f32 Convert + MatMul graph in ``precision``, then an f32 TopK / softmax-sum graph."""
    import openvino as ov
    import openvino.opset13 as ops
    from openvino import opset11

    rows = ops.parameter([-1, -1], ov.Type.f16, name="rows")
    queries = ops.parameter([-1, -1], ov.Type.f32, name="queries")
    product = ops.matmul(ops.convert(rows, ov.Type.f32), queries, False, True)
    core = ov.Core()
    first = core.compile_model(ov.Model([product.output(0)], [rows, queries]), "CPU",
                               {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})
    products = ops.parameter([-1, -1], ov.Type.f32, name="products")
    factor = ops.parameter([-1], ov.Type.f32, name="factor")
    k = ops.parameter([], ov.Type.i64, name="k")
    logits = ops.multiply(products, ops.unsqueeze(factor, ops.constant(np.int64(1))))
    top = opset11.topk(logits, k, 0, "max", "value", ov.Type.i64, stable=True)
    peak = ops.reduce_max(logits, ops.constant(np.int64(0)), True)
    sums = ops.reduce_sum(ops.exp(ops.subtract(logits, peak)), ops.constant(np.int64(0)), False)
    second = core.compile_model(ov.Model([top.output(0), top.output(1), peak.output(0), sums.output(0)], [products, factor, k]),
                                "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"})
    return first.create_infer_request(), second.create_infer_request()


_LEGACY_REQUESTS: dict = {}  # precision -> (product, reduce) infer requests, compiled once per process


def legacy_topk(matrix, emb: np.ndarray, k: int, spec, precision: str = "f16", block_rows: int = 5461):
    """The previous OpenVINO engine for fp16 rows (16 MB fp32 blocks, TopK in OpenVINO), same exact rescoring."""
    from bioclip_edge.runtime.labels import scoring_engine as se

    if precision not in _LEGACY_REQUESTS:
        _LEGACY_REQUESTS[precision] = _legacy_graphs(precision)
    product_req, reduce_req = _LEGACY_REQUESTS[precision]
    emb = np.ascontiguousarray(np.atleast_2d(np.asarray(emb, dtype=np.float32)))
    n = matrix.shape[0]
    keep = min(n, k + {"f32": 4, "f16": 16, "bf16": 32}[precision])
    rows = se._in_place_rows(matrix)
    scale = np.array([spec.logit_scale], dtype=np.float32)
    cand_val, cand_idx, peaks, sums = [], [], [], []
    for start in range(0, n, block_rows):
        block = rows[start : start + block_rows]
        products = product_req.infer([block, emb], share_inputs=True)[0]
        out = reduce_req.infer([products, scale, np.array(min(keep, block.shape[0]), dtype=np.int64)], share_inputs=True)
        cand_val.append(np.array(out[0], dtype=np.float32).T)
        cand_idx.append(np.array(out[1], dtype=np.int64).T + start)
        peaks.append(np.array(out[2], dtype=np.float64)[0])
        sums.append(np.array(out[3], dtype=np.float64))
    approx, index = se._best(np.concatenate(cand_val, axis=1), np.concatenate(cand_idx, axis=1), keep)
    peak = np.max(peaks, axis=0)
    total = np.sum(np.asarray(sums) * np.exp(np.asarray(peaks) - peak), axis=0)
    exact = se._exact_logits(matrix, None, emb, index, spec.logit_scale)
    tail = total - np.exp(approx.astype(np.float64) - peak[:, None]).sum(axis=1)
    total = np.maximum(tail, 0.0) + np.exp(exact.astype(np.float64) - peak[:, None]).sum(axis=1)
    best_logit, best_index = se._best(exact, index, k)
    probs = np.exp(best_logit.astype(np.float64) - (peak + np.log(total))[:, None]).astype(np.float32)
    return best_index, probs, best_logit


def run_engine(m, q: np.ndarray, k: int, engine: str):
    """``scoring.topk`` with ``engine``, or the legacy engine (fp16 matrices, in the CPU's old choice: f16)."""
    from bioclip_edge.runtime.labels import scoring

    if engine == LEGACY_ENGINE:
        return legacy_topk(m.matrix, q, k, m.score_spec)
    return scoring.topk(m.matrix, m.scales, q, k, m.score_spec, engine=engine)


def engine_label(m, engine: str) -> str:
    from bioclip_edge.runtime.labels import scoring

    if engine == LEGACY_ENGINE:
        return "previous engine: OpenVINO f16 product graph + f32 TopK graph per 16 MB block, exact fp32 rescoring"
    return scoring.engine_summary(m.n, m.dim, engine)


def _engine_child(path: str, engine: str, batch: int, queue) -> None:
    """One engine alone: time for a batch, peak memory, and its top-5 for the agreement check."""
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    m = LabelMatrix.load(path)
    q = _queries(m, batch)
    t0 = time.perf_counter()
    run_engine(m, q[:1], 5, engine)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        idx, probs, _ = run_engine(m, q, 5, engine)
        times.append(time.perf_counter() - t0)
    queue.put({"engine": engine_label(m, engine), "first_call_1_image_s": round(first_s, 3),
               f"batch_{batch}_s": round(min(times), 3), "ms_per_image": round(min(times) / batch * 1000, 1),
               "process": _proc_status(), "idx": idx.tolist(), "probs": probs.tolist()})


def _agreement(ref: dict, other: dict) -> dict:
    a, b = np.asarray(ref["idx"]), np.asarray(other["idx"])
    pa, pb = np.asarray(ref["probs"]), np.asarray(other["probs"])
    same = a[:, 0] == b[:, 0]
    rel = np.abs(pb[same, 0] / np.maximum(pa[same, 0], 1e-30) - 1)
    return {"top1_equal_to_numpy": float(same.mean()),
            "top5_overlap_with_numpy": float(np.mean([len(set(x) & set(y)) / 5 for x, y in zip(a, b)])),
            "top5_identical_order": bool((a == b).all()),
            "top1_prob_max_rel_diff": float(rel.max()) if rel.size else None}


def ensure_tower_bundle(folder: Path) -> Path:
    """The random-weight ViT-L/14 bundle (fp32 ONNX), exported once and reused."""
    if (folder / "manifest.json").is_file():
        return folder
    from bioclip_edge.export.build import ExportConfig, export_bundle
    from bioclip_edge.export.sources import ModelRequest

    print(f"exporting a random-weight ViT-L-14 to {folder} (once; a few minutes)", flush=True)
    export_bundle(ExportConfig(request=ModelRequest("ViT-L-14", random=True), out=folder, precisions=("fp32",), parity_images=2))
    return folder


def _alternating_child(path: str, bundle_dir: str, engines: list[str], batch: int, rounds: int, queue) -> None:
    """Tower and every engine in one process, alternated round by round; medians per image."""
    from bioclip_edge.runtime.engine.backends import choose_backend
    from bioclip_edge.runtime.engine.bundle import Bundle
    from bioclip_edge.runtime.labels.matrix import LabelMatrix
    from bioclip_edge.runtime.engine.session import SessionOptions, make_session

    bundle = Bundle.open(bundle_dir)
    variant = bundle.variant("vision", "fp32")
    choice = choose_backend("auto")
    session = make_session(bundle.path(variant.file), SessionOptions(backend="auto"))
    size = bundle.manifest.preprocess.image_size
    pixels = np.random.default_rng(3).standard_normal((batch, 3, *size)).astype(np.float32)
    m = LabelMatrix.load(path)
    q = _queries(m, batch)

    def tower():
        session.run(None, {variant.input_name: pixels})

    jobs = [("vit_l14_tower", tower)] + [
        (e, lambda e=e: run_engine(m, q, 5, e)) for e in engines]
    for _, fn in jobs:  # warm-up (graph compiles, page cache)
        fn()
    times: dict[str, list[float]] = {name: [] for name, _ in jobs}
    for round_ in range(rounds):
        for name, fn in (jobs if round_ % 2 == 0 else jobs[::-1]):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    ms = {name: float(np.median(t)) / batch * 1000 for name, t in times.items()}
    tower_ms = ms.pop("vit_l14_tower")
    queue.put({
        "tower": {"model": f"{bundle.manifest.model.id} image tower, random weights", "backend": choice.backend,
                  "backend_reason": choice.reason, "providers": session.get_providers(), "ms_per_image": round(tower_ms, 1)},
        "batch": batch, "rounds": rounds,
        "scoring_ms_per_image": {e: round(v, 2) for e, v in ms.items()},
        "scoring_over_tower": {e: round(v / tower_ms, 4) for e, v in ms.items()},
        "goal": "scoring_over_tower < 0.10",
        "process": _proc_status(),
    })


def bench_engines(path: Path, bundle_dir: Path | None, engines: list[str], batch: int, rounds: int) -> dict:
    ctx = mp.get_context("spawn")
    out: dict = {"batch": batch, "engines": {}}
    for engine in engines:  # alone, each in a fresh process: peak memory is its own
        queue = ctx.Queue()
        proc = ctx.Process(target=_engine_child, args=(str(path), engine, batch, queue))
        proc.start()
        try:
            out["engines"][engine] = queue.get(timeout=900)
        except Exception as exc:  # noqa: BLE001 - an engine that fails is a result row
            out["engines"][engine] = {"error": f"{type(exc).__name__}: {exc}"}
        proc.join()
    ref = out["engines"].get("numpy")
    for engine, res in out["engines"].items():
        if ref and "idx" in ref and "idx" in res and engine != "numpy":
            res["agreement"] = _agreement(ref, res)
    for res in out["engines"].values():
        res.pop("idx", None), res.pop("probs", None)
    if bundle_dir is not None:
        queue = ctx.Queue()
        proc = ctx.Process(target=_alternating_child, args=(str(path), str(bundle_dir), engines, batch, rounds, queue))
        proc.start()
        out["vs_tower"] = queue.get(timeout=1800)
        proc.join()
    return out


def bench_scoring(n: int, dim: int, batch: int, folder: Path, engines_cfg: dict | None = None,
                  engines_only: bool = False) -> dict:
    from bioclip_edge.runtime.labels.scoring import block_rows_for
    from bioclip_edge.runtime.labels.scoring_engine import block_rows_for as engine_block_rows_for

    path = folder / "synthetic_867k.npz"
    write_s = write_synthetic_matrix(path, n, dim)
    result: dict = {}
    if not engines_only:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_score_child, args=(str(path), batch, queue))
        proc.start()
        result = queue.get(timeout=900)
        proc.join()
    result["write_s"] = round(write_s, 1)
    result["block_rows"] = block_rows_for(dim)
    result["engine_block_rows"] = engine_block_rows_for(dim)
    result["fp32_brute_force_matrix_MB"] = round(n * dim * 4 / 1e6, 1)
    if engines_cfg is not None:
        try:
            bundle = ensure_tower_bundle(engines_cfg["tower_bundle"]) if engines_cfg["tower_bundle"] else None
            result["engines_vs_tower"] = bench_engines(path, bundle, engines_cfg["engines"], engines_cfg["batch"],
                                                       engines_cfg["rounds"])
        except Exception as exc:  # noqa: BLE001 - keep the scoring figures already measured
            result["engines_vs_tower"] = {"error": f"{type(exc).__name__}: {exc}"}
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
    p.add_argument("--engines", default=f"numpy,{LEGACY_ENGINE},openvino-f32,openvino",
                   help="scoring engines to compare at --score-batch (comma-separated; empty to skip); "
                        f"{LEGACY_ENGINE} is the engine before issue 6's rework, for a side-by-side ratio")
    p.add_argument("--engines-only", action="store_true",
                   help="skip part 2 (numpy block scoring at --images); still writes the matrix for part 3")
    p.add_argument("--score-batch", type=int, default=16, help="batch for the engines-vs-tower comparison (default 16)")
    p.add_argument("--score-rounds", type=int, default=3, help="alternated rounds, medians kept (default 3)")
    p.add_argument("--tower-bundle", type=Path, default=Path(tempfile.gettempdir()) / "bioclip-edge-bench" / "vit-l-14",
                   help="random-weight ViT-L/14 bundle for the tower timing (exported there once if missing)")
    p.add_argument("--skip-tower", action="store_true", help="compare engines without the ViT-L/14 tower")
    args = p.parse_args(argv)
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
            engines = [e for e in args.engines.split(",") if e.strip()]
            engines_cfg = None if not engines else {
                "engines": engines, "batch": args.score_batch, "rounds": args.score_rounds,
                "tower_bundle": None if args.skip_tower else args.tower_bundle}
            report["scoring"] = bench_scoring(args.labels, args.dim, args.images, Path(tmp), engines_cfg, args.engines_only)
        except Exception as exc:  # noqa: BLE001
            report["scoring"] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report["scoring"], indent=2), flush=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0 if all("error" not in report.get(k, {}) for k in ("build", "scoring")) else 1


if __name__ == "__main__":
    sys.exit(main())

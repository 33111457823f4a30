"""Part 3 of ``bench_labels.py``: the scoring engines alone and against the ViT-L/14 image tower.

Each scoring engine is a plan (``scoring_engine.EngineChoice``) chosen once per matrix and timed as
given; the tower is an engine plan opened by the runtime's session factory; both are timed on
profiling's round-robin timer. Kept apart from the script so each file holds one concern.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

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


def _queries(m, batch: int, seed: int = 2) -> np.ndarray:
    """Image-like queries: cosine ~0.3 to one label and ~0 to the rest (as BioCLIP photos score)."""
    rng = np.random.default_rng(seed)
    target = np.asarray(m.matrix[np.sort(rng.integers(0, m.n, batch))], dtype=np.float32)
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    noise = rng.standard_normal(target.shape, dtype=np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    q = 0.3 * target + 0.95 * noise
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def scoring_plan(m, engine: str):
    """The scoring engine ``engine`` names, chosen once for the matrix (plain data: timed as given)."""
    from bioclip_edge.runtime.labels.scoring_engine import choose_engine

    return choose_engine(engine, m.n, m.dim)


def run_engine(m, q: np.ndarray, k: int, plan):
    """``scoring.topk`` on the planned engine."""
    from bioclip_edge.runtime.labels import scoring

    return scoring.topk(m.matrix, m.scales, q, k, m.score_spec, engine=plan)


def _engine_child(path: str, engine: str, batch: int, queue) -> None:
    """One engine alone: time for a batch, peak memory, and its top-5 for the agreement check."""
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    m = LabelMatrix.load(path)
    q = _queries(m, batch)
    plan = scoring_plan(m, engine)
    t0 = time.perf_counter()
    run_engine(m, q[:1], 5, plan)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        idx, probs, _ = run_engine(m, q, 5, plan)
        times.append(time.perf_counter() - t0)
    queue.put({"engine": f"{plan.label} ({plan.reason})", "plan": plan.to_dict(), "first_call_1_image_s": round(first_s, 3),
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
    from bioclip_edge.profiling.workflow import ensure_bundle

    return ensure_bundle(folder, "ViT-L-14", ("fp32",), parity_images=2, progress=lambda m: print(m, flush=True))


def _alternating_child(path: str, bundle_dir: str, engines: list[str], batch: int, rounds: int, queue) -> None:
    """Tower and every engine in one process, timed round-robin by profiling's timer; medians per image."""
    from bioclip_edge.profiling.bench import BenchSettings, time_round_robin
    from bioclip_edge.profiling.runners import open_plan
    from bioclip_edge.runtime.engine.bundle import Bundle
    from bioclip_edge.runtime.engine.plan import SessionOptions
    from bioclip_edge.runtime.engine.selection import make_plan
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    bundle = Bundle.open(bundle_dir)
    tower_plan = make_plan(bundle, "vision", "fp32", SessionOptions(backend="auto"))  # as --backend auto picks it
    session, input_name = open_plan(tower_plan, bundle)
    pixels = np.random.default_rng(3).standard_normal((batch, 3, *bundle.manifest.preprocess.image_size)).astype(np.float32)
    m = LabelMatrix.load(path)
    q = _queries(m, batch)
    plans = {e: scoring_plan(m, e) for e in engines}
    jobs = [("vit_l14_tower", lambda: session.run(None, {input_name: pixels}))] + [
        (e, lambda p=p: run_engine(m, q, 5, p)) for e, p in plans.items()]
    timed = [(fn, {"status": "ok", "name": name}) for name, fn in jobs]
    for fn, _ in timed:  # warm-up (graph compiles, page cache)
        fn()
    time_round_robin(timed, BenchSettings(min_runs=rounds, max_runs=rounds))
    ms = {row["name"]: float(np.median(row["latencies_ms"])) / batch for _, row in timed}
    tower_ms = ms.pop("vit_l14_tower")
    queue.put({
        "tower": {"model": f"{bundle.manifest.model.id} image tower, random weights", "backend": tower_plan.backend,
                  "backend_reason": tower_plan.reason, "plan": tower_plan.to_dict(), "providers": session.get_providers(),
                  "ms_per_image": round(tower_ms, 1)},
        "batch": batch, "rounds": rounds,
        "scoring_plans": {e: p.to_dict() for e, p in plans.items()},
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

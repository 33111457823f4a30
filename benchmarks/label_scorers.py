"""Part 3 of ``bench_labels.py``: the label scorers alone and against the ViT-L/14 image tower.

Each scorer is an ``openvino_scoring.ScorerChoice`` chosen once per matrix and timed as given; the
tower is an inference plan opened by the runtime's session factory; both are timed on
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


STORED_ROWS = ":stored-rows"  # scorer-name suffix: rank the stored rows, not the int8 ranking copy


def scorer_setup(m, scorer: str):
    """(scorer choice, ranking copy or None) for ``scorer``, chosen once for the matrix (plain data:
    timed as given). As ``LabelMatrix.topk`` runs it: OpenVINO in bf16/f16 ranks the int8 copy of
    a large matrix (``labels.ranking``) unless the name ends in ``:stored-rows``."""
    from bioclip_edge.runtime.labels.ranking import ranking_for
    from bioclip_edge.runtime.labels.openvino_scoring import choose_scorer

    name = scorer.removesuffix(STORED_ROWS)
    choice = choose_scorer(name, m.n, m.dim)
    return choice, (None if scorer.endswith(STORED_ROWS) else ranking_for(choice, m.matrix, m.scales, m.path))


def _setup_dict(setup) -> dict:
    choice, ranked = setup
    return {**choice.to_dict(), "ranks": "int8 ranking copy" if ranked is not None else "stored rows"}


def run_scorer(m, q: np.ndarray, k: int, setup):
    """``scoring.topk`` on the scorer set up for the matrix."""
    from bioclip_edge.runtime.labels import scoring

    choice, ranked = setup
    return scoring.topk(m.matrix, m.scales, q, k, m.score_spec, scorer=choice, ranking=ranked)


def _scorer_child(path: str, scorer: str, batch: int, queue) -> None:
    """One scorer alone: time for a batch, peak memory, and its top-5 for the agreement check."""
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    m = LabelMatrix.load(path)
    q = _queries(m, batch)
    t0 = time.perf_counter()
    setup = scorer_setup(m, scorer)  # makes the int8 ranking copy on first use (then cached)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_scorer(m, q[:1], 5, setup)
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        idx, probs, _ = run_scorer(m, q, 5, setup)
        times.append(time.perf_counter() - t0)
    queue.put({"scorer": f"{setup[0].label} ({setup[0].reason})", "setup": _setup_dict(setup), "setup_s": round(setup_s, 2),
               "first_call_1_image_s": round(first_s, 3),
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
    """The random-weight ViT-L/14 bundle, used as it is when ``folder`` holds one (never re-exported
    over: it may be someone else's), else exported once with fp32 and int8 (NNCF included)."""
    from bioclip_edge.profiling.workflow import ensure_bundle

    return ensure_bundle(folder, "ViT-L-14", ("fp32", "int8"), parity_images=2, progress=lambda m: print(m, flush=True))


# The NNCF int8 graph (what --precision auto runs when it is the performance preset and passed its
# gate; "auto_runs" says what auto runs on this bundle) and OpenVINO bf16 on the fp32 graph.
TOWERS = {"int8": "int8-nncf", "bf16": "fp32"}


def _quantization(bundle, variant: str) -> dict:
    """The variant's quantization record as the manifest holds it (NNCF preset, calibration)."""
    import json

    doc = json.loads((Path(bundle.root) / "manifest.json").read_text(encoding="utf-8"))
    found = [v for v in doc.get("variants", []) if v.get("name") == variant]
    return (found[0].get("quantization") or {}) if found else {}


def _tower_jobs(bundle, batch: int) -> tuple[list, dict]:
    """(name, callable) per ViT-L/14 tower at the job's batch, and each tower's plan (a missing one says why)."""
    from bioclip_edge.profiling.runners import open_plan
    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.inference.selection import make_plan

    pixels = np.random.default_rng(3).standard_normal((batch, 3, *bundle.manifest.preprocess.image_size)).astype(np.float32)
    jobs, info = [], {"auto_runs": make_plan(bundle, "vision", "auto", SessionOptions(backend="auto")).to_dict()}
    for name, precision in TOWERS.items():
        try:
            plan = make_plan(bundle, "vision", precision, SessionOptions(backend="auto"))  # as --backend auto picks it
        except Exception as exc:  # noqa: BLE001 - a bundle without int8-nncf still times bf16
            info[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        session, input_name = open_plan(plan, bundle)
        jobs.append((f"tower_{name}", lambda s=session, i=input_name: s.run(None, {i: pixels})))
        info[name] = {"plan": plan.to_dict(), "backend_reason": plan.reason,
                      "calibration_method": (_quantization(bundle, plan.variant).get("calibration") or {}).get("method")}
    return jobs, info


def _alternating_child(path: str, bundle_dir: str, scorers: list[str], windows: list[int], tower_batch: int,
                       rounds: int, queue) -> None:
    """Towers and every scorer x scoring window in one process, timed round-robin by profiling's
    timer; medians per image. Scoring is timed at the windows a job may score (``windows``), the
    towers at the job's batch."""
    from bioclip_edge.profiling.bench import BenchSettings, time_round_robin
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    bundle = Bundle.open(bundle_dir)
    towers, tower_info = _tower_jobs(bundle, tower_batch)
    m = LabelMatrix.load(path)
    q = _queries(m, max(windows))
    setups = {e: scorer_setup(m, e) for e in scorers}
    jobs = towers + [(f"{e}@{w}", lambda p=p, w=w: run_scorer(m, q[:w], 5, p)) for e, p in setups.items() for w in windows]
    timed = [(fn, {"status": "ok", "name": name}) for name, fn in jobs]
    for fn, _ in timed:  # warm-up (graph compiles, page cache)
        fn()
    time_round_robin(timed, BenchSettings(min_runs=rounds, max_runs=rounds))
    medians = {row["name"]: float(np.median(row["latencies_ms"])) for _, row in timed}
    tower_ms = {name: medians.pop(f"tower_{name}") / tower_batch for name in TOWERS if f"tower_{name}" in medians}
    for name, ms in tower_ms.items():
        tower_info[name]["ms_per_image"] = round(ms, 2)
    scoring_ms = {e: {w: medians[f"{e}@{w}"] / w for w in windows} for e in scorers}
    queue.put({
        "towers": {"model": f"{bundle.manifest.model.id} image tower, random weights", "batch": tower_batch, **tower_info},
        "job_window": m.scoring_window, "windows": windows, "rounds": rounds,
        "scorer_setups": {e: _setup_dict(p) for e, p in setups.items()},
        "scoring_ms_per_image": {e: {w: round(v, 2) for w, v in by_w.items()} for e, by_w in scoring_ms.items()},
        **{f"scoring_over_{name}_tower": {e: {w: round(v / ms, 4) for w, v in by_w.items()} for e, by_w in scoring_ms.items()}
           for name, ms in tower_ms.items()},
        "goal": "scoring at the job's window / int8 tower < 0.10",
        "process": _proc_status(),
    })


def bench_scorers(path: Path, bundle_dir: Path | None, scorers: list[str], batch: int, rounds: int,
                  windows: list[int] | None = None, tower_batch: int = 16) -> dict:
    """Each scorer alone at ``batch`` (agreement with numpy, peak memory), then, with a tower
    bundle, the towers alternated with the non-numpy scorers at ``windows`` (numpy, ~10x slower,
    is the agreement reference only)."""
    ctx = mp.get_context("spawn")
    out: dict = {"batch": batch, "scorers": {}}
    for scorer in scorers:  # alone, each in a fresh process: peak memory is its own
        queue = ctx.Queue()
        proc = ctx.Process(target=_scorer_child, args=(str(path), scorer, batch, queue))
        proc.start()
        try:
            out["scorers"][scorer] = queue.get(timeout=900)
        except Exception as exc:  # noqa: BLE001 - a scorer that fails is a result row
            out["scorers"][scorer] = {"error": f"{type(exc).__name__}: {exc}"}
        proc.join()
    ref = out["scorers"].get("numpy")
    for scorer, res in out["scorers"].items():
        if ref and "idx" in ref and "idx" in res and scorer != "numpy":
            res["agreement"] = _agreement(ref, res)
    for res in out["scorers"].values():
        res.pop("idx", None), res.pop("probs", None)
    if bundle_dir is not None:
        queue = ctx.Queue()
        timed = [e for e in scorers if e != "numpy"] or scorers
        args = (str(path), str(bundle_dir), timed, sorted(set(windows or [batch])), tower_batch, rounds, queue)
        proc = ctx.Process(target=_alternating_child, args=args)
        proc.start()
        out["vs_tower"] = queue.get(timeout=1800)
        proc.join()
    return out

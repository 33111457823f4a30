"""Throughput per target, measured side by side, one flat dict per run (timm benchmark.py style).

Timings on shared machines drift 2-3x between runs, so targets are timed *interleaved*: every
target is loaded and warmed up, then timed calls go round-robin, one call per target per round,
so slow drift hits all of them alike and their ratios hold. The machine's matmul peak is measured
in the same run (``peak.py``) and each target's efficiency is its effective GFLOP/s over the peak
of the arithmetic it runs in (fp32, int8 or bf16) at the same thread count.

Effective GFLOP/s uses the ``matmul_only`` FLOP count (the convention of the BioCLIP spec page),
so ``images/sec = efficiency x sustained GFLOP/s / page GFLOPs per image`` holds in sizing.
A target that fails to load or run is an error row; one that makes no sense (PyTorch int8) is a
skipped row with the reason. No row is dropped.
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Sequence

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.profiling.runners import RUNNERS, Target, profile_plan

log = logging.getLogger(__name__)

BACKENDS = ("ort", "openvino", "torch")
FLOP_CONVENTION = "matmul_only"


class BenchError(UserError, ValueError):
    """A benchmark request that cannot be run as given."""


@dataclass(frozen=True)
class BenchSettings:
    warmup: int = 2  # untimed calls per target (the first call plans memory, so it is slow)
    min_runs: int = 3
    max_runs: int = 30
    seconds_per_target: float = 4.0  # timed budget per target; runs = budget / warm-up call time
    interleave: bool = True  # round-robin timing (False: one target at a time, less memory)
    # Idle time before each timed call: onnxruntime's pool threads spin after a run and slowed
    # whatever came next (an OpenVINO int8 kernel read 1.7 instead of 3.7 TFLOP/s right after one).
    pause_s: float = 0.1


def parse_list(text: str | Sequence[Any], kind: Callable[[str], Any] = str, what: str = "list") -> tuple:
    items = text.split(",") if isinstance(text, str) else [str(x) for x in text]
    try:
        out = tuple(kind(x.strip()) for x in items if str(x).strip())
    except ValueError:
        raise BenchError(f"{what} {text!r}: expected comma-separated values like 1,8,32") from None
    if not out:
        raise BenchError(f"{what} is empty")
    return out


def plan_targets(bundle: Bundle, backends: Iterable[str], precisions: Iterable[str], batches: Iterable[int],
                 threads: Iterable[int], tower: str = "vision", length: int | None = None) -> tuple[list[Target], list[dict]]:
    """Targets to time, and skipped rows (with the reason) for combinations that cannot run."""
    targets: list[Target] = []
    skipped: list[dict] = []
    context = int(bundle.manifest.tokenizer.context_length)
    for backend in backends:
        if backend not in BACKENDS:
            raise BenchError(f"--backend {backend!r}: choose from {', '.join(BACKENDS)}")
        for precision in precisions:
            resolved = _resolve(bundle, backend, tower, precision)
            if isinstance(resolved, str):  # one row per backend x precision says why it cannot run
                skipped.append(_skip_row(backend, precision, tower, list(batches), list(threads), resolved))
                continue
            for b in batches:
                for t in threads:
                    variant, compute = resolved
                    n = length if tower == "text" else None
                    if tower == "text" and (backend == "torch" or not _dynamic(bundle, variant)):
                        n = context  # open_clip and fixed-length graphs always run the full context
                    targets.append(Target(backend, variant, precision, compute, int(b), int(t), tower, n))
    return targets, skipped


def _dynamic(bundle: Bundle, variant: str) -> bool:
    return any(v.name == variant and v.dynamic_length for v in bundle.manifest.variants)


def _resolve(bundle: Bundle, backend: str, tower: str, precision: str) -> tuple[str, str] | str:
    """(variant, compute dtype) of the target's inference plan, or the reason it cannot run here."""
    if backend == "torch":
        if precision != "fp32":
            return "the PyTorch baseline runs fp32 only (open_clip eager, as pybioclip does)"
        return "torch.fp32", "fp32"
    plan = profile_plan(bundle, backend, tower, precision)
    return plan if isinstance(plan, str) else (plan.variant, plan.compute)


def _skip_row(backend: str, precision: str, tower: str, batches: list, threads: list, reason: str) -> dict:
    return {"target": f"{backend}:{precision} {tower}", "backend": backend, "precision": precision, "tower": tower,
            "batch": ",".join(map(str, batches)), "threads": ",".join(map(str, threads)), "status": "skipped",
            "error": reason}


def backend_available(backend: str) -> str | None:
    """None when the backend can run here, else why not (a skipped row, never a crash)."""
    import importlib.util

    need = {"ort": ("onnxruntime",), "openvino": ("openvino",), "torch": ("torch", "open_clip")}[backend]
    missing = [m for m in need if importlib.util.find_spec(m) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def _base_row(t: Target) -> dict[str, Any]:
    row = {"target": t.name}
    row.update(asdict(t))
    return row


def _load(bundle: Bundle, t: Target, settings: BenchSettings, torch_models: dict) -> tuple[Callable | None, dict]:
    row = _base_row(t)
    why = backend_available(t.backend)
    if why:
        row.update(status="skipped", error=why)
        return None, row
    try:
        if t.backend == "torch":
            from bioclip_edge.profiling.runners import torch_model, torch_runner

            if "model" not in torch_models:  # one model shared by every PyTorch target
                torch_models["model"] = torch_model(bundle)
            fn = torch_runner(bundle, t, torch_models["model"])
        else:
            fn = RUNNERS[t.backend](bundle, t)
        t0 = time.perf_counter()
        for _ in range(max(1, settings.warmup)):
            t0 = time.perf_counter()
            fn()
        row["warmup_call_s"] = time.perf_counter() - t0
    except Exception as exc:  # failed loads and runs are kept as error rows
        row.update(status="error", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        return None, row
    row["status"] = "ok"
    return fn, row


def _runs_for(row: dict, settings: BenchSettings) -> int:
    per_call = max(row.get("warmup_call_s", 1.0), 1e-4)
    return max(settings.min_runs, min(settings.max_runs, int(settings.seconds_per_target / per_call)))


def time_round_robin(loaded: list[tuple[Callable, dict]], settings: BenchSettings,
                      probes: Sequence[tuple[Callable, dict]] = ()) -> None:
    """Time (callable, row) pairs round-robin, one call each per round after ``settings.pause_s``
    idle, into ``row["latencies_ms"]``: each row gets ``_runs_for`` calls (``min_runs`` =
    ``max_runs``: exactly that many). The one timer of profiling and the benchmarks."""
    remaining = {id(row): _runs_for(row, settings) for _, row in loaded}
    rounds = max(remaining.values(), default=0)
    remaining.update({id(row): rounds for _, row in probes})  # probes run in every round
    loaded = list(loaded) + list(probes)
    for _, row in loaded:
        row.setdefault("latencies_ms", [])
    while any(remaining.values()):
        for fn, row in loaded:
            if not remaining[id(row)] or row["status"] != "ok":
                continue
            try:
                time.sleep(settings.pause_s)
                t0 = time.perf_counter()
                fn()
                row["latencies_ms"].append(round((time.perf_counter() - t0) * 1000, 3))
            except Exception as exc:
                row.update(status="error", error=f"{type(exc).__name__} while timing: {str(exc)[:300]}")
            remaining[id(row)] -= 1


def summarise(row: dict, flops_per_item: float | None, peak_gflops: float | None) -> dict:
    """Median/p90 latency, items/sec, effective GFLOP/s and efficiency from a row's latencies."""
    import numpy as np

    lat = row.get("latencies_ms") or []
    if row.get("status") != "ok" or not lat:
        return row
    median = statistics.median(lat) / 1000
    row.update(
        runs=len(lat),
        latency_ms_median=round(median * 1000, 3),
        latency_ms_p90=round(float(np.percentile(lat, 90)), 3),
        latency_ms_min=round(min(lat), 3),
        items_per_sec=round(row["batch"] / median, 3),
        ms_per_item=round(median * 1000 / row["batch"], 3),
    )
    if flops_per_item:
        row["gflops_per_item"] = round(flops_per_item / 1e9, 4)
        row["flop_convention"] = FLOP_CONVENTION
        row["effective_gflops"] = round(flops_per_item * row["batch"] / median / 1e9, 2)
        if peak_gflops:
            row["peak_gflops"] = peak_gflops
            row["efficiency"] = round(row["effective_gflops"] / peak_gflops, 4)
    return row


def run_targets(bundle: Bundle, targets: Sequence[Target], flops_per_item: Callable[[Target], float | None],
                peak_of: Callable[[Target], float | None], settings: BenchSettings = BenchSettings(),
                progress: Callable[[str], None] = lambda m: log.info(m),
                after_timing: Callable[[], None] | None = None,
                probes: Sequence[tuple[Callable, dict]] = ()) -> list[dict]:
    """Load, warm up and time every target (interleaved); one summarised row per target.

    ``probes`` (callable, row) are extra kernels timed in every round beside the targets (the
    matmul peak); their rows collect ``latencies_ms`` and are not returned. ``after_timing`` runs
    once the timing is done, before ``peak_of`` is asked for each target's peak.
    """
    for fn, row in probes:
        for _ in range(max(1, settings.warmup)):
            fn()
    torch_models: dict = {}
    rows: list[dict] = []
    groups = [list(targets)] if settings.interleave else [[t] for t in targets]
    for group in groups:
        loaded = []
        for t in group:
            progress(f"loading and warming up {t.name}")
            fn, row = _load(bundle, t, settings, torch_models)
            rows.append(row)
            if fn is not None:
                loaded.append((fn, row))
        progress(f"timing {len(loaded)} target(s) round-robin")
        time_round_robin(loaded, settings, probes)
        loaded.clear()
    if after_timing is not None:
        after_timing()
    by_name = {t.name: t for t in targets}
    for row in rows:
        t = by_name[row["target"]]
        summarise(row, flops_per_item(t), peak_of(t))
        row.pop("warmup_call_s", None)
    return rows

"""One profiling run of a bundle: machine, FLOPs, matmul peaks and targets, measured together.

The result (``ProfileRun``) is everything a report or a sizing estimate needs, as plain data:
its JSON is the machine-readable report, and ``sizing`` and ``report`` read only this.
FLOPs come from the bundle's own fp32 ONNX graphs (no torch), cross-checked against the
analytic count from the manifest's open_clip config where that config is a plain ViT.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.profiling.bench import BenchSettings, plan_targets, run_targets
from bioclip_edge.profiling.flops import DEFAULT_TRIMMED_LENGTH
from bioclip_edge.profiling.runners import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundleFlops:
    """FLOPs of one item (image or label) through one tower of a bundle, both conventions."""

    tower: str
    tokens: int | None  # text length; None for images
    matmul_only: int
    with_attention: int
    source: str  # onnx:<file> | analytic
    analytic_matmul_only: int | None = None  # cross-check from the open_clip config
    uncounted: tuple[str, ...] = ()


def bundle_flops(bundle: Bundle, tower: str, length: int | None = None) -> BundleFlops:
    """Count one item through the tower's fp32 graph (batch 1; ``length`` tokens for text)."""
    from bioclip_edge.profiling.flops import count_from_config
    from bioclip_edge.profiling.flops_onnx import count_onnx

    variant = bundle.variant(tower, "fp32")
    shapes = None
    tokens = None
    if tower == "text":
        tokens = int(length or bundle.manifest.tokenizer.context_length)
        if not variant.dynamic_length:
            tokens = int(bundle.manifest.tokenizer.context_length)
        shapes = {variant.input_name: (1, tokens)}
    counted = count_onnx(bundle.path(variant.file), shapes)
    analytic = None
    try:
        a = count_from_config("bundle", bundle.manifest.model.open_clip_config, trimmed_length=tokens)
        analytic = (a.vision if tower == "vision" else (a.text_trimmed or a.text)).matmul_only
    except Exception:  # not a plain ViT: the graph count stands alone
        analytic = None
    return BundleFlops(tower, tokens, counted.matmul_only, counted.with_attention, f"onnx:{variant.file}",
                       analytic, counted.uncounted)


def _all_counts(bundle: Bundle, targets: Sequence[Target], length: int) -> dict[tuple[str, int | None], BundleFlops]:
    """Vision, text at the full context and at the trimmed length, plus whatever a target runs."""
    context = int(bundle.manifest.tokenizer.context_length)
    keys: list[tuple[str, int | None]] = [("vision", None), ("text", context), ("text", min(length, context))]
    keys += [(t.tower, t.length) for t in targets]
    counts: dict[tuple[str, int | None], BundleFlops] = {}
    for tower, n in keys:
        if (tower, n) in counts:
            continue
        try:
            counts[(tower, n)] = bundle_flops(bundle, tower, n)
        except Exception as exc:  # a text graph that cannot be counted must not stop the vision benchmark
            if any(t.tower == tower for t in targets):
                raise
            log.warning("could not count %s FLOPs at %s tokens: %s", tower, n, exc)
    return counts


@dataclass
class ProfileRun:
    bundle: str
    model: dict[str, Any]  # id, architecture, random_weights, params
    machine: dict[str, Any]
    peaks: list[dict[str, Any]]
    flops: list[dict[str, Any]]
    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    created_at: str = ""
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ProfileRun":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def ok_rows(self, tower: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("status") == "ok" and (tower is None or r.get("tower") == tower)]


def model_summary(bundle: Bundle) -> dict[str, Any]:
    m = bundle.manifest.model
    sizes = {v.name: v.total_bytes for v in bundle.manifest.variants}
    return {"id": m.id, "architecture": m.architecture, "random_weights": m.source.random_weights,
            "weights_note": m.source.note, "params_vision": m.params_vision, "params_text": m.params_text,
            "embed_dim": m.embed_dim, "image_size": list(bundle.manifest.preprocess.image_size),
            "context_length": bundle.manifest.tokenizer.context_length, "variant_bytes": sizes}


def profile_bundle(bundle_path: str | Path, backends: Sequence[str] = ("ort",), precisions: Sequence[str] = ("fp32", "int8"),
                   batches: Sequence[int] = (1, 8), threads: Sequence[int] | None = None, tower: str = "vision",
                   length: int = DEFAULT_TRIMMED_LENGTH, settings: BenchSettings = BenchSettings(),
                   peak_seconds: float = 0.5, progress: Callable[[str], None] = lambda m: log.info(m)) -> ProfileRun:
    """Measure one bundle on this machine: plan targets, measure peaks, time targets, summarise."""
    from bioclip_edge.profiling.machine import machine_info
    from bioclip_edge.profiling.peak import Peak, numpy_peak_guarded, peak_for, peak_probes, probe_peak

    bundle = Bundle.open(bundle_path)
    machine = machine_info()
    threads = tuple(threads or (machine.affinity_cores or machine.physical_cores or 1,))
    targets, skipped = plan_targets(bundle, backends, precisions, batches, threads, tower, length)
    progress("counting FLOPs from the bundle's ONNX graphs")
    counts = _all_counts(bundle, targets, length)
    kinds = tuple(sorted({t.compute for t in targets})) or ("fp32",)
    progress(f"matmul peaks ({', '.join(kinds)}) at {', '.join(map(str, threads))} thread(s) are timed beside the targets")
    with tempfile.TemporaryDirectory(prefix="bioclip-edge-peak-") as tmp:
        probes, peak_errors = peak_probes(threads, kinds, Path(tmp))
        peaks: list[Peak] = []

        def collect_peaks() -> None:
            peaks[:] = [probe_peak(row) for _, row in probes] + peak_errors

        rows = run_targets(
            bundle, targets,
            flops_per_item=lambda t: counts[(t.tower, t.length)].matmul_only,
            peak_of=lambda t: (p.gflops if (p := peak_for(peaks, t.compute, t.threads)) else None),
            settings=settings, progress=progress, after_timing=collect_peaks, probes=probes,
        )
        del probes  # release the sessions before the temporary graphs go
    peaks.insert(0, numpy_peak_guarded(peak_seconds))
    notes = []
    if bundle.random_weights:
        notes.append("This bundle has RANDOM WEIGHTS: speed figures are real, its predictions would be meaningless.")
    return ProfileRun(
        bundle=str(bundle_path), model=model_summary(bundle), machine=machine.to_dict(),
        peaks=[p.row() for p in peaks], flops=[asdict(c) for c in counts.values()], rows=rows + skipped,
        settings={"backends": list(backends), "precisions": list(precisions), "batches": list(batches),
                  "threads": list(threads), "tower": tower, "length": length, **asdict(settings),
                  "peak_seconds": peak_seconds},
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), notes=notes,
    )


"""Will this model keep up on that hardware? Images/sec, hours per day's images, memory fit.

The BioCLIP spec page's rule of thumb gives an upper bound:

    images/sec <= sustained effective GFLOP/s / vision GFLOPs per image

Real runtimes reach only a fraction of the matmul rate (small matrices, memory traffic, non-matmul
ops, framework overhead), so the estimate multiplies the bound by an *efficiency* measured on a
real machine (``profile bench``: the model's effective GFLOP/s over that machine's measured matmul
peak, same precision). The hardware's sustained rate comes from ``hardware.json``: broad ranges,
marked as estimates, with the vendor figures they derive from. Every assumption is written into
the estimate so a reader can redo the arithmetic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError

USABLE_MEMORY = 0.8  # share of RAM/VRAM a model can count on (the OS, decoders and buffers need the rest)
RUNTIME_OVERHEAD_GB = 0.4  # Python + numpy + onnxruntime + a batch of decoded images
# the table's arithmetic classes a precision may be sized with (bf16 and fp16 run at the same rate on GPUs)
PRECISION_RATES = {"bf16": ("bf16", "fp16"), "fp16": ("fp16", "bf16"), "int8": ("int8",), "fp32": ("fp32",)}


class SizingError(UserError, ValueError):
    """A sizing request that cannot be answered; says which input to fix."""


@dataclass(frozen=True)
class Hardware:
    id: str
    name: str
    kind: str  # cpu | gpu
    sustained_gflops: dict[str, tuple[float, float]]
    memory_gb: tuple[float, float]
    peak_note: str
    estimate: bool = True

    def rate(self, precision: str) -> tuple[str, tuple[float, float]]:
        """(arithmetic used, GFLOP/s range); no silent fallback to another precision's rate.

        An efficiency is measured against the peak of one kind of arithmetic, so pairing an int8
        efficiency with an fp32 rate would be off by the int8/fp32 speed ratio.
        """
        for p in PRECISION_RATES.get(precision, (precision,)):
            if p in self.sustained_gflops:
                return p, self.sustained_gflops[p]
        have = ", ".join(self.sustained_gflops)
        raise SizingError(f"hardware {self.id!r} has no sustained GFLOP/s figure for {precision} (it has {have}); "
                          "size it at one of those precisions")


def load_hardware(path: str | Path | None = None) -> list[Hardware]:
    """The shipped table (profiling/hardware.json) or a user's file in the same format."""
    if path is None:
        text = resources.files("bioclip_edge.profiling").joinpath("hardware.json").read_text(encoding="utf-8")
        where = "hardware.json (shipped)"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SizingError(f"--hardware-file {path}: cannot read it ({exc.strerror})") from None
        where = str(path)
    try:
        data = json.loads(text)
        return [Hardware(t["id"], t["name"], t.get("kind", "cpu"),
                         {k: (float(v[0]), float(v[1])) for k, v in t["sustained_gflops"].items()},
                         (float(t["memory_gb"][0]), float(t["memory_gb"][1])), t.get("peak_note", ""),
                         bool(t.get("estimate", True))) for t in data["targets"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise SizingError(f"{where}: not a hardware table ({type(exc).__name__}: {exc}); see the shipped hardware.json") from None


def find_hardware(ids: str, table: list[Hardware]) -> list[Hardware]:
    """Comma-separated ids (or 'all') -> table entries; an unknown id names the valid ones."""
    if ids.strip().lower() == "all":
        return list(table)
    by_id = {h.id: h for h in table}
    out = []
    for i in (x.strip() for x in ids.split(",") if x.strip()):
        if i not in by_id:
            raise SizingError(f"--hardware {i!r} is not in the table; choose from: {', '.join(by_id)}, all")
        out.append(by_id[i])
    return out


@dataclass(frozen=True)
class SizingInput:
    """What the estimate is made from; every field is printed in the assumptions."""

    model: str
    precision: str  # fp32 | int8 | fp16 | bf16
    gflops_per_image: float  # vision tower, matmul_only convention (the spec page's)
    efficiency: float  # effective / sustained matmul rate, from a measurement (0-1]
    efficiency_source: str
    images_per_day: int
    weights_gb: float  # vision graph of this precision as loaded
    n_labels: int = 1000
    embed_dim: int = 512
    label_bytes: int = 2  # fp16 label matrix
    activations_gb: float = 0.0  # for one batch
    batch: int = 8
    gflops_per_label: float | None = None  # text tower, to estimate building the label matrix
    label_tokens: int | None = None  # the label length gflops_per_label was counted at
    random_weights: bool = False

    @property
    def label_matrix_gb(self) -> float:
        return self.n_labels * self.embed_dim * self.label_bytes / 1e9

    @property
    def memory_needed_gb(self) -> float:
        return self.weights_gb + self.label_matrix_gb + self.activations_gb + RUNTIME_OVERHEAD_GB


@dataclass(frozen=True)
class SizingEstimate:
    hardware: str
    hardware_name: str
    precision_used: str
    sustained_gflops: tuple[float, float]
    upper_bound_images_per_sec: tuple[float, float]  # the rule of thumb alone (efficiency 1)
    images_per_sec: tuple[float, float]  # x measured efficiency
    hours_for_day: tuple[float, float]  # images_per_day at that rate (low rate -> most hours)
    memory_needed_gb: float
    memory_gb: tuple[float, float]
    fits: str  # yes | only with the larger memory options | no
    label_build_hours: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("sustained_gflops", "upper_bound_images_per_sec", "images_per_sec", "hours_for_day", "memory_gb",
                    "label_build_hours"):
            if d.get(key) is not None:
                d[key] = list(d[key])
        d["notes"] = list(self.notes)
        return d


def estimate(inp: SizingInput, hw: Hardware) -> SizingEstimate:
    if not inp.efficiency > 0:
        raise SizingError(f"efficiency {inp.efficiency} must be above 0: it is a measured share of the matmul peak")
    efficiency = min(inp.efficiency, 1.0)
    if inp.gflops_per_image <= 0 or inp.images_per_day < 0:
        raise SizingError("GFLOPs per image must be positive and --images-per-day not negative")
    used, (lo, hi) = hw.rate(inp.precision)
    notes = []
    if inp.efficiency > 1:
        notes.append(f"measured efficiency {inp.efficiency:.2f} is above 1 (the peak measurement was disturbed, or the "
                     "model's matmuls beat the test matmul); capped at 1, the spec page's upper bound")
    bound = (lo / inp.gflops_per_image, hi / inp.gflops_per_image)
    ips = (bound[0] * efficiency, bound[1] * efficiency)
    hours = (inp.images_per_day / ips[0] / 3600, inp.images_per_day / ips[1] / 3600)
    need = inp.memory_needed_gb
    if need <= hw.memory_gb[0] * USABLE_MEMORY:
        fits = "yes"
    elif need <= hw.memory_gb[1] * USABLE_MEMORY:
        fits = f"only with the larger memory options (needs {need:.1f} GB; from {need / USABLE_MEMORY:.0f} GB)"
    else:
        fits = "no"
    if hours[0] > 24:
        notes.append("at the low end of the range a day's images take more than a day")
    build = None
    if inp.gflops_per_label:
        build = tuple(inp.n_labels * inp.gflops_per_label / (r * efficiency) / 3600 for r in (lo, hi))
    return SizingEstimate(hw.id, hw.name, used, (lo, hi), _r(bound), _r(ips), _r(hours), round(need, 2), hw.memory_gb,
                          fits, None if build is None else _r(build), tuple(notes))


@dataclass(frozen=True)
class PrecisionSizing:
    """One precision sized on several hardware targets (those without a figure for it listed)."""

    input: SizingInput
    estimates: tuple[SizingEstimate, ...]
    not_sized: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"input": asdict(self.input), "estimates": [e.row() for e in self.estimates],
                "not_sized": list(self.not_sized), "assumptions": assumptions(self.input)}


def size_all(inp: SizingInput, hardware: list[Hardware]) -> PrecisionSizing:
    estimates, skipped = [], []
    for hw in hardware:
        try:
            estimates.append(estimate(inp, hw))
        except SizingError as exc:
            skipped.append(f"{hw.id}: {exc}")
    return PrecisionSizing(inp, tuple(estimates), tuple(skipped))


def duration(hours: float) -> str:
    """Readable time: 40 s, 12 min, 3.4 h, 2.1 days."""
    seconds = hours * 3600
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 1 else "<1 s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def _r(pair, digits: int = 6) -> tuple[float, float]:
    return tuple(float(f"{x:.{digits}g}") for x in pair)  # type: ignore[return-value]


def assumptions(inp: SizingInput) -> list[str]:
    """The estimate's inputs, in sentences."""
    lines = [
        f"Model {inp.model}, {inp.precision}: {inp.gflops_per_image:.2f} GFLOPs per image through the vision tower "
        "(weights-only matmul count, the convention of the BioCLIP spec page).",
        "Upper bound (spec page rule of thumb): images/sec = sustained GFLOP/s / GFLOPs per image.",
        f"Estimate = upper bound x efficiency {inp.efficiency:.3f} ({inp.efficiency_source}). Efficiency measured on "
        "one machine is assumed to carry over; GPUs at large batches usually do better than CPUs, small CPUs worse.",
        "Sustained GFLOP/s per hardware are broad estimates from vendor peak figures (hardware.json says which), "
        "not measurements; the range is carried through to images/sec and hours.",
        f"A day is {inp.images_per_day:,} images; hours = images / images-per-sec / 3600 (tower only: decoding "
        "and resizing large camera-trap JPEGs add to this unless done in parallel).",
        f"Memory: vision graph {inp.weights_gb:.2f} GB + label matrix {inp.n_labels:,} x {inp.embed_dim} x "
        f"{inp.label_bytes} bytes = {inp.label_matrix_gb:.3f} GB + activations for batch {inp.batch} "
        f"{inp.activations_gb:.2f} GB + runtime {RUNTIME_OVERHEAD_GB} GB = {inp.memory_needed_gb:.2f} GB, "
        f"held to {USABLE_MEMORY:.0%} of the device's memory. The text tower is not counted: labels can be "
        "embedded once on another machine and copied.",
    ]
    if inp.gflops_per_label:
        lines.append(f"Building the label matrix once costs {inp.gflops_per_label:.2f} GFLOPs per label "
                     f"({inp.label_tokens or '?'} tokens; the runtime trims each batch to its longest label) "
                     "at the same efficiency.")
    if inp.random_weights:
        lines.append("The bundle measured has random weights: speed is representative, predictions are not.")
    return lines


def activations_gb(model_cfg: dict, batch: int) -> float:
    """Rough peak activation memory of a ViT batch: a few live [tokens x MLP] buffers plus attention scores."""
    v = model_cfg.get("vision_cfg", {})
    if not isinstance(v.get("layers", 12), int) or v.get("timm_model_name"):
        return 0.25 * batch  # not a plain ViT: a flat allowance
    size = v.get("image_size", 224)
    size = size[0] if isinstance(size, (list, tuple)) else size
    tokens = (int(size) // int(v.get("patch_size", 16))) ** 2 + 1
    width = int(v.get("width", 768))
    heads = max(1, width // int(v.get("head_width", 64)))
    hidden = int(width * float(v.get("mlp_ratio", 4.0)))
    per_image = 4 * (3 * tokens * hidden + 2 * heads * tokens * tokens)  # fp32 bytes
    return batch * per_image / 1e9


def efficiency_from_rows(rows: list[dict[str, Any]], precision: str) -> tuple[float, str] | None:
    """Best measured vision efficiency for the arithmetic a precision runs in, with where it came from."""
    compute = {"fp16": "fp32", "int8": "int8", "bf16": "bf16"}.get(precision, "fp32")
    accepted = {compute, "int8-ov"} if compute == "int8" else {compute}  # OpenVINO int8, held to its own peak
    candidates = [r for r in rows if r.get("status") == "ok" and r.get("tower", "vision") == "vision"
                  and r.get("compute") in accepted and r.get("efficiency")]
    if not candidates and compute == "bf16":
        return efficiency_from_rows(rows, "fp32")
    if not candidates:
        return None
    best = max(candidates, key=lambda r: r["efficiency"])
    return best["efficiency"], f"best measured: {best['target']}, {best['effective_gflops']} of {best['peak_gflops']} GFLOP/s"


def input_for_bundle(bundle, precision: str, images_per_day: int, efficiency: tuple[float, str], n_labels: int = 1000,
                     batch: int = 8, flops: list[dict[str, Any]] | None = None, label_tokens: int | None = None) -> SizingInput:
    """A SizingInput from a bundle (weights, config) and FLOP counts (counted now when not given)."""
    from bioclip_edge.profiling.flops import DEFAULT_TRIMMED_LENGTH
    from bioclip_edge.profiling.measure import bundle_flops

    m = bundle.manifest
    label_tokens = label_tokens or DEFAULT_TRIMMED_LENGTH
    flops = list(flops or [])
    vision = next((f for f in flops if f["tower"] == "vision"), None) or asdict(bundle_flops(bundle, "vision"))
    texts = sorted((f for f in flops if f["tower"] == "text"), key=lambda f: f["tokens"] or 0)
    text = next((f for f in texts if f["tokens"] == label_tokens), texts[0] if texts else None)  # the trimmed count
    if text is None:
        try:
            text = asdict(bundle_flops(bundle, "text", label_tokens))
        except Exception:  # no text graph, or one that cannot be counted: skip the label-build estimate
            text = None
    name = {"bf16": "fp32", "fp16": "fp16"}.get(precision, precision)
    variant = next((v for v in m.variants if v.tower == "vision" and v.precision == name), None)
    if variant is None:
        raise SizingError(f"{bundle.root}: no vision {name} variant to size (it has "
                          f"{', '.join(v.name for v in m.variants)}); pick --precision from those")
    weights = variant.total_bytes * (2 if variant.storage == "fp16" and variant.compute == "fp32" else 1) / 1e9
    return SizingInput(
        model=f"{m.model.id} ({m.model.architecture})", precision=precision,
        gflops_per_image=vision["matmul_only"] / 1e9, efficiency=efficiency[0], efficiency_source=efficiency[1],
        images_per_day=int(images_per_day), weights_gb=round(weights, 3), n_labels=int(n_labels),
        embed_dim=m.model.embed_dim, activations_gb=round(activations_gb(m.model.open_clip_config, batch), 3),
        batch=batch, gflops_per_label=(text["matmul_only"] / 1e9) if text else None,
        label_tokens=text["tokens"] if text else None,
        random_weights=m.model.source.random_weights,
    )

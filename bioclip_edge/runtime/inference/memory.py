"""``--max-memory``: how many images go to the model at once, and how many are decoded ahead, within a memory budget.

Why: a camera-trap box (Raspberry Pi class, Jetson) has 1-4 GB shared with everything else, and
the batch size is what moves peak resident memory (RSS) most: on onnxruntime's dynamic int8
ViT-B/16 each image of a batch costs ~31 MB with onnxruntime's memory pattern on, ~18 MB with it
off (``InferencePlan.memory_pattern``), while that backend gains little past small batches.
OpenVINO runs 1.5x faster from batch 8 on. So the batch is not a fixed number but a choice: the
batch sizes whose estimated peak fits the budget are ranked by the measured speed of this backend
(``Profile.speed`` in ``PROFILES``), and the smallest within ``TOLERANCE`` of the fastest is taken.

The estimate (``Workload.estimate``), calibrated by ``benchmarks/bench_memory.py`` on ViT-B/16 and
scaled by the vision tower's parameters and input size for other models (an upper estimate for
larger ViTs, whose activations grow more slowly than their weights):

    peak = base (Python, the runtime, the job)
         + graph file size x weight factor (the loaded graph, prepacked weights)
         + batch x activations per image
         + window x one model input (decoded images waiting for the model, as float32)
         + decode threads x one frame being decoded (a 12 MP still; drafted JPEGs at their reduction)

``choose_flow`` is pure (a ``Workload`` and a budget in, a ``FlowChoice`` out), so it is tested
with given tables; ``runtime.images.pipeline.Flow`` carries the choice to the embedder, the jobs,
the command line's closing summary and the Ray workers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field

from bioclip_edge.errors import OptionError

MB = 1 << 20  # sizes are binary: "1G" is 1024 MB, as RSS tools and board specs count them
DEFAULT_BUDGET = 1024 * MB  # "auto": fits a 1 GB board (less where less memory is available)
BATCH_SIZES = (1, 2, 4, 8, 16, 32)
TOLERANCE = 0.05  # a larger batch is taken only when it is more than this much faster (timing noise here)
PLANNING_FRAME = 12_000_000  # pixels of the largest frame planned for: a 12 MP camera-trap still
REFERENCE_PARAMS = 86_000_000  # ViT-B/16's vision tower: what the profiles were measured on
REFERENCE_PIXELS = 224 * 224

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": MB, "k": 1 << 10, "m": MB, "g": 1 << 30, "t": 1 << 40}


class MemoryBudgetError(OptionError):
    """A ``--max-memory`` that is malformed or too small for even one image at a time."""


def parse_size(text: str | int | None) -> int:
    """``"1G"``, ``"512M"``, ``"768MB"``, ``"1.5GiB"`` or a bare number of MB -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise MemoryBudgetError(f"--max-memory must be positive (got {text})")
        return text
    match = _SIZE.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise MemoryBudgetError(f"--max-memory {text!r}: give a size such as 512M, 1G or 1.5G (a bare number is MB), or auto")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def is_auto(max_memory: str | int | None) -> bool:
    return max_memory is None or str(max_memory).strip().lower() == "auto"


def mb(n: float) -> str:
    return f"{n / MB:,.0f} MB"


@dataclass(frozen=True)
class Budget:
    """How much memory a run may use, and where the figure came from (said in the output)."""

    bytes: int
    source: str  # "--max-memory 512M" | "auto: ..."
    explicit: bool  # the user named it: a budget too small is an error, not a warning
    available: int | None = field(default=None, compare=False)  # auto: what this process could grow to (None: unknown)


def resolve_budget(max_memory: str | int | None, available: int | None = None) -> Budget:
    """``None``/``"auto"``: the smaller of 1 GB and the memory this process may have (available
    memory plus what it already holds, capped by a cgroup limit); otherwise the size given."""
    if not is_auto(max_memory):
        return Budget(parse_size(max_memory), f"--max-memory {max_memory}", True)
    have = available_memory() if available is None else available
    if have is None or have >= DEFAULT_BUDGET:
        return Budget(DEFAULT_BUDGET, "auto: fits a 1 GB board", False, have)
    return Budget(have, f"auto: {mb(have)} available here", False, have)


def available_memory() -> int | None:
    """Bytes this process could grow to: MemAvailable plus its own RSS, capped by a cgroup v2
    ``memory.max``; None where neither can be read (not Linux)."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024 + (current_rss() or 0))
                    break
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as fh:
            limit = fh.read().strip()
        if limit.isdigit():
            found.append(int(limit))
    except OSError:
        pass
    return min(found) if found else None


def current_rss() -> int | None:
    """This process's resident memory now, in bytes (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss() -> int | None:
    """This process's peak resident memory so far, in bytes (None where ``resource`` is missing)."""
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS counts bytes, Linux KiB


def closing_line(choice: "FlowChoice | None") -> str:
    """The closing summary's memory line: the peak reached, against the budget and what it chose."""
    peak = peak_rss()
    reached = "peak RSS not measurable here" if peak is None else f"peak RSS {mb(peak)}"
    if choice is None:
        return f"memory: {reached}"
    return (f"memory: {reached} (budget {mb(choice.budget.bytes)}, {choice.budget.source}; batch {choice.batch_size}, "
            f"{choice.window} images decoded ahead; estimated {mb(choice.estimate)})")


@dataclass(frozen=True)
class Profile:
    """What one backend's arithmetic costs in memory and how its speed moves with the batch,
    measured on ViT-B/16 (224 px) by ``benchmarks/bench_memory.py``."""

    base: int  # bytes: Python, the runtime's libraries, the job, before the graph
    weight_factor: float  # resident bytes per byte of graph file once loaded
    per_image: int  # bytes of activations per image of a batch
    speed: dict[int, float] = field(default_factory=dict)  # batch -> images/s relative to batch 1
    measured: bool = True  # False: a stand-in (no measurement for this backend)

    def relative_speed(self, batch: int) -> float:
        """Measured speed at ``batch``; between measured sizes, the nearest smaller one's."""
        known = [b for b in sorted(self.speed) if b <= batch]
        return self.speed[known[-1]] if known else 1.0


# Measured on a 2-core AMD EPYC (AVX-512 VNNI and BF16, no AMX) shared with other work, ViT-B/16,
# 1920x1080 JPEGs (benchmarks/bench_memory.py; docs/explanations/memory.md has the tables). Memory:
# peak RSS of whole classify runs at batch 1, 8 and 32. Speed: inference only, wall time, best of
# 4 alternating rounds (onnxruntime int8: the mean of two such runs). Keyed by (backend, compute).
PROFILES: dict[tuple[str, str], Profile] = {
    ("onnxruntime", "int8"): Profile(base=110 * MB, weight_factor=1.0, per_image=17 * MB,
                                     speed={1: 1.0, 2: 0.92, 4: 1.12, 8: 1.01, 16: 1.04, 32: 1.03}),
    ("onnxruntime", "fp32"): Profile(base=110 * MB, weight_factor=1.3, per_image=19 * MB,  # speed not measured: flat assumed
                                     speed={1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0, 16: 1.0, 32: 1.0}, measured=False),
    ("openvino", "int8-ov"): Profile(base=200 * MB, weight_factor=1.3, per_image=3 * MB,
                                     speed={1: 1.0, 2: 1.06, 4: 1.21, 8: 1.50, 16: 1.51, 32: 1.49}),
    ("openvino", "bf16"): Profile(base=200 * MB, weight_factor=1.7, per_image=4 * MB,  # speed: int8-ov's, not measured
                                  speed={1: 1.0, 2: 1.06, 4: 1.21, 8: 1.50, 16: 1.51, 32: 1.49}, measured=False),
}
PROFILES[("openvino", "fp32")] = dataclasses.replace(PROFILES[("openvino", "bf16")], measured=False)  # openvino-f32: bf16's
# GPU providers: activations live on the device, bigger batches are faster there (not measured here).
GPU_PROFILE = Profile(base=400 * MB, weight_factor=1.0, per_image=1 * MB,
                      speed={1: 1.0, 2: 1.6, 4: 2.4, 8: 3.2, 16: 3.8, 32: 4.0}, measured=False)


def profile_for(backend: str, compute: str, gpu: bool = False) -> Profile:
    """The measured profile for a backend and its arithmetic (``InferencePlan.backend``/``compute``);
    an unmeasured pair borrows the closest measured one (same backend, else onnxruntime int8)."""
    if gpu:
        return GPU_PROFILE
    key = ("openvino" if backend.startswith("openvino") else backend, compute)
    if key in PROFILES:
        return PROFILES[key]
    same = [p for (b, _), p in PROFILES.items() if b == key[0]]
    stand_in = same[0] if same else PROFILES[("onnxruntime", "int8")]
    return Profile(stand_in.base, stand_in.weight_factor, stand_in.per_image, dict(stand_in.speed), measured=False)


@dataclass(frozen=True)
class Workload:
    """What a run's peak memory depends on besides the batch and the window."""

    profile: Profile
    graph_bytes: int  # the vision graph on disk (external data included)
    params: int  # vision tower parameters: activations are scaled from ViT-B/16's by these...
    input_pixels: int  # ... and by the model's input size (H x W)
    decode_threads: int
    draft: bool = False  # JPEGs draft-decoded (--decode): a 12 MP frame decodes at 1/4 scale
    label: str = "this backend"  # for messages: "onnxruntime int8"

    @property
    def per_image(self) -> int:
        """Activations per image of a batch, scaled from the profile's ViT-B/16 figure."""
        scale = max(self.params, 1) / REFERENCE_PARAMS * self.input_pixels / REFERENCE_PIXELS
        return int(self.profile.per_image * max(scale, 0.05))

    @property
    def input_bytes(self) -> int:
        """One decoded image waiting for the model: float32 [3, H, W]."""
        return 3 * self.input_pixels * 4

    @property
    def decode_bytes(self) -> int:
        """One frame being decoded: RGB at the draft's reduction, twice over (decode, then the resize's copy)."""
        reduction = 16 if self.draft else 1
        return 2 * 3 * PLANNING_FRAME // reduction

    @property
    def fixed(self) -> int:
        """What the run holds whatever the batch: runtime, graph, frames being decoded."""
        return self.profile.base + int(self.graph_bytes * self.profile.weight_factor) + self.decode_threads * self.decode_bytes

    def estimate(self, batch: int, window: int) -> int:
        """Estimated peak RSS for ``batch`` images per model call and ``window`` decoded ahead."""
        return self.fixed + batch * self.per_image + window * self.input_bytes


def preferred_window(batch: int, decode_threads: int) -> int:
    """Images decoded ahead of the model when memory allows: two batches, and eight per decode
    thread (0.6 MB each at 224 px). Eight rather than four: onnxruntime int8 at batch 4 ran 3%
    faster with 16 images ahead than with 8 on 2 cores (decoding and inference share them, and a
    deeper queue rides out a slow frame), for 5 MB."""
    return max(2 * batch, 8 * max(decode_threads, 1))


def minimal_window(batch: int, decode_threads: int) -> int:
    """The smallest window that still overlaps decoding with inference: one batch plus one image per thread."""
    return batch + max(decode_threads, 1)


@dataclass(frozen=True)
class FlowChoice:
    """The batch and decode window chosen, the estimate they were chosen on, and why."""

    batch_size: int
    window: int
    estimate: int  # bytes: estimated peak RSS
    budget: Budget
    reason: str
    over_budget: bool = False  # an explicit --batch-size (or an auto budget) the estimate does not fit

    def text(self) -> str:
        """One line for the console: what was chosen, against which budget."""
        return (f"memory: batch {self.batch_size}, {self.window} images decoded ahead, estimated peak "
                f"{mb(self.estimate)} of {mb(self.budget.bytes)} ({self.budget.source}); {self.reason}")


def choose_flow(workload: Workload, budget: Budget, batch_size: int | None = None) -> FlowChoice:
    """The batch size and decode window for ``workload`` within ``budget``.

    ``batch_size`` given (``--batch-size``): taken as asked, the window shrunk towards the minimum
    to fit, ``over_budget`` when even that does not. Otherwise: of ``BATCH_SIZES`` whose estimate
    fits with at least the minimal window, the smallest within ``TOLERANCE`` of the fastest (a
    larger batch only where it is measurably faster); the window as large as preferred and fits.
    Raises ``MemoryBudgetError`` when an explicit budget cannot hold even batch 1.
    """
    threads = workload.decode_threads
    if batch_size is not None:
        window = _window_within(workload, budget, batch_size)
        estimate = workload.estimate(batch_size, window)
        over = estimate > budget.bytes
        why = "--batch-size as asked" + (f", over the budget (batch 1 would need {mb(_need(workload, 1))})" if over else "")
        return FlowChoice(batch_size, window, estimate, budget, why, over)
    budget = _grown(workload, budget)
    fits = [b for b in BATCH_SIZES if _need(workload, b) <= budget.bytes]
    if not fits:
        return _too_small(workload, budget)
    speed = workload.profile.relative_speed
    best = max(speed(b) for b in fits)
    batch = min(b for b in fits if speed(b) >= best * (1 - TOLERANCE))
    window = _window_within(workload, budget, batch)
    return FlowChoice(batch, window, workload.estimate(batch, window), budget, _why(workload, batch, fits))


def _grown(workload: Workload, budget: Budget) -> Budget:
    """An auto budget for a model that does not fit a 1 GB board even one image at a time (ViT-L,
    ViT-H): no small board runs it, so the run may use the memory the machine has."""
    if budget.explicit or budget.available is None or _need(workload, 1) <= budget.bytes:
        return budget
    if budget.available <= budget.bytes:
        return budget
    return Budget(budget.available, f"auto: this model needs more than {mb(DEFAULT_BUDGET)}, so up to the "
                  f"{mb(budget.available)} available here", False, budget.available)


def _need(workload: Workload, batch: int) -> int:
    return workload.estimate(batch, minimal_window(batch, workload.decode_threads))


def _window_within(workload: Workload, budget: Budget, batch: int) -> int:
    """The preferred window, shrunk (not below the minimal one) until the estimate fits."""
    low, high = minimal_window(batch, workload.decode_threads), preferred_window(batch, workload.decode_threads)
    room = budget.bytes - workload.estimate(batch, 0)
    return max(low, min(high, room // max(workload.input_bytes, 1)))


def _why(workload: Workload, batch: int, fits: list[int]) -> str:
    profile = workload.profile
    measured = "measured" if profile.measured else "assumed (not measured for this backend)"
    larger = [b for b in fits if b > batch]
    if larger:
        ratio = profile.relative_speed(larger[-1]) / profile.relative_speed(batch)
        return f"larger batches are no faster on {workload.label} ({measured}: batch {larger[-1]} runs at {ratio:.2f}x batch {batch}'s speed)"
    bigger = [b for b in BATCH_SIZES if b > batch]
    if bigger and profile.relative_speed(bigger[0]) > profile.relative_speed(batch) * (1 + TOLERANCE):
        return (f"the largest batch that fits; batch {bigger[0]} would be faster on {workload.label} ({measured}) "
                f"but needs {mb(_need(workload, bigger[0]))}")
    return f"the fastest batch on {workload.label} ({measured})"


def _too_small(workload: Workload, budget: Budget) -> FlowChoice:
    need = _need(workload, 1)
    if budget.explicit:
        raise MemoryBudgetError(
            f"{budget.source}: too small for this model even one image at a time (about {mb(need)} needed: "
            f"{mb(workload.fixed)} for the runtime, the graph and decoding, {mb(workload.per_image)} per image); "
            f"use --max-memory {math.ceil(need / MB / 64) * 64}M or more")
    window = minimal_window(1, workload.decode_threads)
    where = "this machine has free" if budget.available is not None else "the auto budget; pass --max-memory to allow more"
    return FlowChoice(1, window, workload.estimate(1, window), budget, f"batch 1 needs about {mb(need)}, more than {where}", True)


def workload_for(plan, variant, manifest, decode_threads: int, draft: bool) -> Workload:
    """The workload of a vision ``plan`` (``InferencePlan``) for one bundle ``variant`` and ``manifest``."""
    gpu = any(p.lower() not in ("cpu", "cpuexecutionprovider") for p in plan.providers) and plan.backend == "onnxruntime"
    height, width = manifest.preprocess.image_size
    return Workload(profile_for(plan.backend, plan.compute, gpu), graph_bytes=int(variant.total_bytes),
                    params=int(manifest.model.params_vision or REFERENCE_PARAMS), input_pixels=int(height) * int(width),
                    decode_threads=decode_threads, draft=draft, label=f"{plan.backend} {plan.compute}")

"""Which vision variant runs on which backend: ``--precision auto`` and ``--backend auto``.

A bundle ships several vision graphs (fp32, fp16 storage, onnxruntime's dynamic int8, static
QDQ int8, NNCF int8 for OpenVINO). Which is fastest depends on what is installed and on the CPU,
so the runtime picks, from the manifest and the machine alone, and says what it picked and why
(the reason goes to the console and into every output's info block).

``auto`` only picks a variant whose parity with PyTorch passed its bound at export (the
manifest's ``parity.passed``): speed never silently costs accuracy beyond what the bundle was
verified for. Measured order on a 2-core Xeon with AMX (benchmarks/bench_speed.py, ViT-B/16,
ratios to PyTorch eager): OpenVINO on NNCF int8 (performance preset) 7.8x, OpenVINO bf16 on the
fp32 graph 4.6x, NNCF int8 transformer preset 4.5x, onnxruntime dynamic int8 3.3x, fp32 ~1x. So:

1. OpenVINO installed and its CPU plugin computes int8, and the bundle's ``vision.int8-nncf``
   passed its preset gate and is a fast preset (performance, performance-sq), or the transformer preset on a CPU
   without AMX (``_nncf_pays``): that graph on OpenVINO.
2. OpenVINO installed and the CPU computes bf16 (AMX / AVX-512 BF16): the fp32 graph on OpenVINO,
   which runs it in bf16 (with AMX the transformer-preset NNCF graph is no faster than that).
3. Otherwise (no OpenVINO, or ``--backend onnxruntime``, ARM, older x86): onnxruntime's dynamic
   int8 (portable: VNNI, AVX2 and ARM dot-product kernels), else fp32.

A named precision (``fp32``, ``int8``, ``int8-nncf``...) is taken as asked; ``--backend auto`` then
picks the backend for it (``backends.choose_backend``). GPU providers (``--providers cuda``) keep
fp32 under ``auto``: the int8 graphs here are tuned for CPUs.

``make_plan`` is the one function that turns a request into an ``InferencePlan`` (``plan.py``); the
machine's capabilities are read once per plan (or passed in: tests simulate machines).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference import backends
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.runtime.inference.plan import PRECISION_CHOICES, InferencePlan, SessionOptions

Caps = tuple[str, ...]


class SelectionError(UserError):
    """A precision or variant the bundle cannot provide."""


@dataclass(frozen=True)
class Selection:
    variant: Variant
    backend: str  # onnxruntime | openvino | openvino-f32: the resolved backend a plan carries
    reason: str  # one line for people: why this variant on this backend


def select_vision(bundle: Bundle, precision: str = "auto", backend: str = "auto",
                  providers: tuple[str, ...] = ("cpu",), variant_name: str | None = None,
                  caps: Caps | None = None) -> Selection:
    """The vision variant and backend to run for ``precision`` x ``backend`` on this machine
    (``variant_name``: one graph by its manifest name, whatever ``precision`` says; ``caps``:
    OpenVINO's CPU capabilities, read from this machine when None)."""
    caps = machine_caps(backend, caps)
    if variant_name is not None:
        variant = bundle.variant("vision", name=variant_name)
        choice = backend_for(variant, backend, caps)
        return Selection(variant, choice.backend, f"variant {variant_name} as named; {choice.reason}")
    if precision not in PRECISION_CHOICES:
        raise SelectionError(f"--precision {precision!r}: choose one of {', '.join(PRECISION_CHOICES)}")
    if precision != "auto":
        variant = named_variant(bundle, "vision", precision)
        choice = backend_for(variant, backend, caps)
        return Selection(variant, choice.backend, f"--precision {precision}; {choice.reason}")
    return _auto(bundle, backend, providers, caps)


def backend_for(variant: Variant, backend: str, caps: Caps) -> backends.BackendChoice:
    """The backend for a named variant: ``choose_backend``, except that an OpenVINO IR file
    (``Variant.format``) runs only on OpenVINO: ``auto`` takes it there, onnxruntime is refused."""
    if not variant.openvino_only:
        return backends.choose_backend(backend, dynamic_int8=_is_dynamic_int8(variant), caps=caps)
    if backend == "onnxruntime" or not caps:
        why = "--backend onnxruntime was asked for" if backend == "onnxruntime" else "OpenVINO is not installed"
        raise SelectionError(f"{variant.name} is an OpenVINO IR file ({variant.file}), which only OpenVINO runs, but "
                             f"{why}: pip install \"bioclip-edge[openvino]\" and use --backend auto or openvino, "
                             "or pick another --precision")
    if backend == "auto":
        return backends.BackendChoice("openvino", "auto: an OpenVINO IR graph runs on OpenVINO")
    return backends.choose_backend(backend, caps=caps)


def named_variant(bundle: Bundle, tower: str, precision: str) -> Variant:
    """``int8-nncf`` -> ``vision.int8-nncf``; plain precisions fall back to the first of that precision."""
    names = {v.name for v in bundle.manifest.variants}
    if f"{tower}.{precision}" in names:
        return bundle.variant(tower, name=f"{tower}.{precision}")
    if "-" in precision:  # int8-static / int8-nncf name one graph: no stand-in
        have = ", ".join(sorted(n for n in names if n.startswith(tower + "."))) or "none"
        raise SelectionError(f"--precision {precision}: bundle {bundle.root} has no {tower}.{precision} variant "
                             f"(it has: {have}); export it (int8 variants need --precision ...,int8; int8-static also "
                             "--calibration DIR, int8-nncf the nncf package) "
                             "or pick another precision")
    return bundle.variant(tower, precision)


def _auto(bundle: Bundle, backend: str, providers: tuple[str, ...], machine: Caps) -> Selection:
    verified = {v.name: v for v in bundle.manifest.variants if v.tower == "vision" and _verified(v)}
    fp32 = verified.get("vision.fp32") or bundle.variant("vision", "fp32")
    gpu = any(p.lower() not in ("cpu", "cpuexecutionprovider") for p in providers)
    caps = machine if backend in ("auto", "openvino", "openvino-f32") else ()
    if backend == "openvino-f32":
        return Selection(fp32, "openvino-f32", "auto: --backend openvino-f32 asks for exact fp32")
    if gpu and backend in ("auto", "onnxruntime"):
        return Selection(fp32, "onnxruntime", f"auto: GPU providers ({','.join(providers)}) run the fp32 graph")
    if backend in ("auto", "openvino"):
        choice: backends.BackendChoice = backends.choose_backend(backend, caps=machine)  # raises when openvino was asked for but is missing
        nncf = verified.get("vision.int8-nncf")
        if caps and "INT8" in caps and nncf is not None and _gate_passed(nncf) and _nncf_pays(nncf, caps):
            return Selection(nncf, "openvino", f"auto: OpenVINO int8 (VNNI/AMX) on the NNCF {_nncf_preset(nncf)}-preset "
                                               "graph, parity verified at export" + _nncf_why(nncf, caps))
        if caps and "BF16" in caps:
            return Selection(fp32, "openvino", "auto: OpenVINO runs the fp32 graph in bf16 on this CPU (AMX/AVX-512 BF16)")
        if choice.backend == "openvino":  # asked for OpenVINO explicitly, no bf16/int8 graph to prefer
            return Selection(fp32, "openvino", "auto: --backend openvino on the fp32 graph")
    dynamic = verified.get("vision.int8")
    if backend == "onnxruntime":
        why = "--backend onnxruntime"
    elif not caps:
        why = "OpenVINO is not installed"
    else:
        why = "no bf16 on this CPU and no NNCF int8 graph that passed its gate in the bundle"
    if dynamic is not None and _is_dynamic_int8(dynamic):
        return Selection(dynamic, "onnxruntime", f"auto: {why}; onnxruntime's dynamic int8 (parity verified at export)")
    return Selection(fp32, "onnxruntime", f"auto: {why}; onnxruntime fp32 (the bundle has no verified dynamic int8 graph)")


# NNCF presets taken over OpenVINO bf16 on every CPU: the performance preset (1.6x bf16 on ViT-B/16
# with AMX) and performance-sq, which runs the same symmetric int8 kernels (SmoothQuant only changes
# scales; measured without AMX: 1.74x bf16 on the ViT-L/14 tower, the performance preset 1.78x).
FAST_NNCF_PRESETS = ("performance", "performance-sq")


def _nncf_pays(nncf: Variant, caps: Caps) -> bool:
    """Whether the NNCF graph beats OpenVINO bf16 here: the fast presets always; the transformer
    preset only where bf16 has no AMX (ViT-B/16 on an AMX Xeon: 0.91x bf16; ViT-L/14 on an
    AVX-512 BF16 + VNNI EPYC without AMX: 1.45x)."""
    return _nncf_preset(nncf) in FAST_NNCF_PRESETS or backends.AMX not in caps


def _nncf_why(nncf: Variant, caps: Caps) -> str:
    if _nncf_preset(nncf) in FAST_NNCF_PRESETS:
        return ""
    return " (no AMX on this CPU: int8 beats bf16 here)" if "BF16" in caps else ""


def _verified(variant: Variant) -> bool:
    return variant.parity is not None and bool(variant.parity.passed)


def _is_dynamic_int8(variant: Variant) -> bool:
    return (variant.quantization or {}).get("mode") == "dynamic"


def _nncf_preset(variant: Variant) -> str | None:
    return (variant.quantization or {}).get("preset")


def _gate_passed(variant: Variant) -> bool:
    """False only where the export's preset gate recorded a miss for the graph it shipped (both
    presets missed; export/nncf_gate.py); older bundles without the record passed to ship it."""
    return (variant.quantization or {}).get("gate_passed") is not False


def machine_caps(backend: str, caps: Caps | None = None) -> Caps:
    """OpenVINO's CPU capabilities, read once per decision (not at all for plain onnxruntime,
    which then never imports OpenVINO); ``caps`` given: a simulated or already-read machine."""
    if caps is not None:
        return tuple(caps)
    return () if backend == "onnxruntime" else backends.openvino_capabilities()


def make_plan(bundle: Bundle, tower: str = "vision", precision: str = "auto",
              options: SessionOptions = SessionOptions(backend="auto"), variant_name: str | None = None,
              caps: Caps | None = None, static_shape: tuple[int, ...] | None = None) -> InferencePlan:
    """The one place a request becomes an ``InferencePlan``: which graph of ``tower`` on which backend,
    with what threads and providers, and why. Vision follows ``select_vision`` (``auto`` included);
    text takes the precision or variant asked for (default fp32) on the backend asked for."""
    caps = machine_caps(options.backend, caps)
    if tower == "vision":
        chosen = select_vision(bundle, precision, options.backend, options.providers, variant_name, caps)
    else:
        variant = bundle.variant(tower, None if precision == "auto" else precision, name=variant_name)
        choice = backends.choose_backend(options.backend, dynamic_int8=_is_dynamic_int8(variant), caps=caps)
        chosen = Selection(variant, choice.backend, f"{variant.name}; {choice.reason}")
    return plan_for(chosen.variant, chosen.backend, chosen.reason, options, caps, static_shape)


def plan_for(variant: Variant, backend: str, reason: str, options: SessionOptions = SessionOptions(),
             caps: Caps = (), static_shape: tuple[int, ...] | None = None) -> InferencePlan:
    """The plan for one bundle variant on an already resolved backend (profiling's targets)."""
    return InferencePlan(
        tower=variant.tower, variant=variant.name, file=variant.file, sha256=variant.sha256,
        precision=variant_precision(variant), backend=backend, compute=compute_for(variant, backend, caps),
        reason=reason, providers=tuple(options.providers), model_threads=options.model_threads,
        inter_op_threads=options.inter_op_threads, optimization=options.optimization, static_shape=static_shape,
        memory_pattern=options.memory_pattern,
        input_name=variant.input_name)


def plan_file(path: str | os.PathLike, options: SessionOptions = SessionOptions(), variant: Variant | None = None,
              static_shape: tuple[int, ...] | None = None, sha256: str | None = None) -> InferencePlan:
    """The plan for a graph outside a bundle (parity checks at export, profiling's matmul peak,
    a benchmark's extra graph), or a bundle graph its caller already checked (``make_session``)."""
    caps = machine_caps(options.backend)
    choice = backends.choose_backend(options.backend, dynamic_int8=variant is not None and _is_dynamic_int8(variant),
                                     caps=caps)
    compute = compute_for(variant, choice.backend, caps) if variant else \
        ("bf16" if choice.backend == "openvino" and "BF16" in caps else "fp32")
    return InferencePlan(
        tower=variant.tower if variant else "", variant=variant.name if variant else "", file=str(Path(path).absolute()),
        sha256=sha256, precision=variant_precision(variant) if variant else "fp32", backend=choice.backend,
        compute=compute, reason=choice.reason, providers=tuple(options.providers), model_threads=options.model_threads,
        inter_op_threads=options.inter_op_threads, optimization=options.optimization, static_shape=static_shape,
        memory_pattern=options.memory_pattern,
        input_name=variant.input_name if variant else None)


def variant_precision(variant: Variant) -> str:
    """The vocabulary word for a variant: its name's suffix (int8-static) when that is one, else its precision."""
    suffix = variant.name.partition(".")[2]
    return suffix if suffix in PRECISION_CHOICES else variant.precision


def compute_for(variant: Variant, backend: str, caps: Caps) -> str:
    """What the arithmetic runs in: int8 graphs in the backend's int8 kernels; float graphs in
    fp32, or bf16 on OpenVINO's default hint where the CPU computes bf16."""
    if _quantized(variant):
        return "int8" if backend == "onnxruntime" else "int8-ov"
    return "bf16" if backend == "openvino" and "BF16" in caps else "fp32"


def _quantized(variant: Variant) -> bool:
    return "int8" in (variant.compute or "") or variant.precision.startswith("int8")

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

1. OpenVINO installed and its CPU plugin computes int8, and the bundle's ``vision.int8-nncf`` is
   the performance preset: that graph on OpenVINO.
2. OpenVINO installed and the CPU computes bf16 (AMX / AVX-512 BF16): the fp32 graph on OpenVINO,
   which runs it in bf16 (the transformer-preset NNCF graph is no faster than that, and less exact).
3. Otherwise (no OpenVINO, or ``--backend onnxruntime``, ARM, older x86): onnxruntime's dynamic
   int8 (portable: VNNI, AVX2 and ARM dot-product kernels), else fp32.

A named precision (``fp32``, ``int8``, ``int8-nncf``...) is taken as asked; ``--backend auto`` then
picks the backend for it (``backends.choose_backend``). GPU providers (``--providers cuda``) keep
fp32 under ``auto``: the int8 graphs here are tuned for CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.engine import backends
from bioclip_edge.runtime.engine.bundle import Bundle
from bioclip_edge.runtime.engine.manifest import Variant
from bioclip_edge.runtime.engine.session import PRECISION_CHOICES


class SelectionError(UserError):
    """A precision or variant the bundle cannot provide."""


@dataclass(frozen=True)
class Selection:
    variant: Variant
    backend: str  # onnxruntime | openvino | openvino-f32: what make_session should open
    reason: str  # one line for people: why this variant on this backend


def select_vision(bundle: Bundle, precision: str = "auto", backend: str = "auto",
                  providers: tuple[str, ...] = ("cpu",), variant_name: str | None = None) -> Selection:
    """The vision variant and backend to run for ``precision`` x ``backend`` on this machine
    (``variant_name``: one graph by its manifest name, whatever ``precision`` says)."""
    if variant_name is not None:
        variant = bundle.variant("vision", name=variant_name)
        choice = backends.choose_backend(backend, dynamic_int8=_is_dynamic_int8(variant))
        return Selection(variant, choice.backend, f"variant {variant_name} as named; {choice.reason}")
    if precision not in PRECISION_CHOICES:
        raise SelectionError(f"--precision {precision!r}: choose one of {', '.join(PRECISION_CHOICES)}")
    if precision != "auto":
        variant = named_variant(bundle, "vision", precision)
        choice = backends.choose_backend(backend, dynamic_int8=_is_dynamic_int8(variant))
        return Selection(variant, choice.backend, f"--precision {precision}; {choice.reason}")
    return _auto(bundle, backend, providers)


def named_variant(bundle: Bundle, tower: str, precision: str) -> Variant:
    """``int8-nncf`` -> ``vision.int8-nncf``; plain precisions fall back to the first of that precision."""
    names = {v.name for v in bundle.manifest.variants}
    if f"{tower}.{precision}" in names:
        return bundle.variant(tower, name=f"{tower}.{precision}")
    if "-" in precision:  # int8-static / int8-nncf name one graph: no stand-in
        have = ", ".join(sorted(n for n in names if n.startswith(tower + "."))) or "none"
        raise SelectionError(f"--precision {precision}: bundle {bundle.root} has no {tower}.{precision} variant "
                             f"(it has: {have}); export it (int8 variants need --precision ...,int8 --calibration DIR) "
                             "or pick another precision")
    return bundle.variant(tower, precision)


def _auto(bundle: Bundle, backend: str, providers: tuple[str, ...]) -> Selection:
    verified = {v.name: v for v in bundle.manifest.variants if v.tower == "vision" and _verified(v)}
    fp32 = verified.get("vision.fp32") or bundle.variant("vision", "fp32")
    gpu = any(p.lower() not in ("cpu", "cpuexecutionprovider") for p in providers)
    caps = backends.openvino_capabilities() if backend in ("auto", "openvino", "openvino-f32") else ()
    if backend == "openvino-f32":
        return Selection(fp32, "openvino-f32", "auto: --backend openvino-f32 asks for exact fp32")
    if gpu and backend in ("auto", "onnxruntime"):
        return Selection(fp32, "onnxruntime", f"auto: GPU providers ({','.join(providers)}) run the fp32 graph")
    if backend in ("auto", "openvino"):
        choice: backends.BackendChoice = backends.choose_backend(backend)  # raises when openvino was asked for but is missing
        nncf = verified.get("vision.int8-nncf")
        if caps and "INT8" in caps and nncf is not None and _nncf_preset(nncf) == "performance":
            return Selection(nncf, "openvino", "auto: OpenVINO int8 (VNNI/AMX) on the NNCF performance-preset graph, "
                                               "parity verified at export")
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
        why = "no bf16 on this CPU and no NNCF performance-preset graph in the bundle"
    if dynamic is not None and _is_dynamic_int8(dynamic):
        return Selection(dynamic, "onnxruntime", f"auto: {why}; onnxruntime's dynamic int8 (parity verified at export)")
    return Selection(fp32, "onnxruntime", f"auto: {why}; onnxruntime fp32 (the bundle has no verified dynamic int8 graph)")


def _verified(variant: Variant) -> bool:
    return variant.parity is not None and bool(variant.parity.passed)


def _is_dynamic_int8(variant: Variant) -> bool:
    return (variant.quantization or {}).get("mode") == "dynamic"


def _nncf_preset(variant: Variant) -> str | None:
    return (variant.quantization or {}).get("preset")

"""The one session factory: ``open_session(plan, bundle)`` builds every inference session.

A plan (``plan.InferencePlan``) says which graph on which backend; this module checks the graph's
sha256 against the plan and the bundle before loading it, then opens onnxruntime or OpenVINO
(``backends.OpenVinoSession``) behind onnxruntime's API. For onnxruntime it validates requested
execution providers against what this build has, sets thread counts and the graph optimisation
level, and warns when a request silently falls back to CPU (fastembed's habit: a user who asked
for CUDA must learn they did not get it). ``make_session(path, options)`` is the short form for a
graph file its caller already trusts (export's parity checks, the text encoder): it makes a plan
for the file and opens it here too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from bioclip_edge.runtime.inference.backends import OpenVinoSession
from bioclip_edge.runtime.inference.bundle import Bundle, BundleError, sha256_file
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.runtime.inference.plan import BACKEND_CHOICES, PRECISION_CHOICES, InferencePlan, SessionOptions
from bioclip_edge.runtime.inference.selection import plan_file

__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "SessionOptions", "make_session", "open_session", "resolve_providers"]

log = logging.getLogger(__name__)

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def resolve_providers(requested: Sequence[str]) -> list[str]:
    """Map short names to onnxruntime provider names; refuse names this build lacks."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    resolved = []
    for name in requested:
        full = PROVIDER_ALIASES.get(name.lower(), name)
        if full not in available:
            if full == "CPUExecutionProvider":
                raise RuntimeError("this onnxruntime build has no CPU provider; reinstall onnxruntime")
            log.warning("execution provider %s is not available in this onnxruntime (%s); skipping it", full, ", ".join(available))
            continue
        resolved.append(full)
    if "CPUExecutionProvider" not in resolved:
        resolved.append("CPUExecutionProvider")
    return resolved


def open_session(plan: InferencePlan, bundle: Bundle | None = None):
    """The session a plan describes, after checking its graph: onnxruntime, or OpenVINO behind the same API.

    With ``bundle``, the plan's variant must be the bundle's (same sha256: a plan made for another
    export is refused) and the graph is hashed as the bundle was opened to (``model_path``).
    Without one, ``plan.file`` is a path; it is hashed when the plan carries a sha256.
    """
    path = _checked_path(plan, bundle)
    if plan.backend.startswith("openvino"):
        return OpenVinoSession(path, exact_fp32=plan.backend == "openvino-f32", model_threads=plan.model_threads,
                               static_shape=plan.static_shape, int8=plan.quantized)
    return _onnxruntime_session(path, plan)


def _checked_path(plan: InferencePlan, bundle: Bundle | None) -> Path:
    if bundle is None:
        path = Path(plan.file)
        if plan.sha256 and sha256_file(path) != plan.sha256:
            raise BundleError(f"{path}: sha256 does not match the plan's {plan.sha256[:12]}…; the file was replaced")
        return path
    variant = bundle.variant(plan.tower, name=plan.variant)
    if plan.sha256 != variant.sha256 or plan.file != variant.file:
        raise BundleError(f"{bundle.root}: the plan names {plan.variant} with sha256 {str(plan.sha256)[:12]}… "
                          f"but the bundle's is {variant.sha256[:12]}…; make the plan from this bundle")
    return bundle.model_path(variant)


def make_session(model_path: str | os.PathLike, options: SessionOptions = SessionOptions(), variant: Variant | None = None):
    """A session for one ONNX file its caller has checked (external data beside it).

    ``variant`` (the manifest's entry for the file, when known) lets ``auto`` pick per graph.
    """
    return open_session(plan_file(model_path, options, variant))


def _onnxruntime_session(model_path: str | os.PathLike, plan: InferencePlan):
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if plan.optimization not in levels:
        raise ValueError(f"optimization {plan.optimization!r} is not one of {sorted(levels)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[plan.optimization]
    so.log_severity_level = 3
    so.enable_mem_pattern = bool(plan.memory_pattern)  # off: ~40% less activation memory (plan.py)
    if plan.model_threads:
        so.intra_op_num_threads = int(plan.model_threads)
    if plan.inter_op_threads:
        so.inter_op_num_threads = int(plan.inter_op_threads)
    providers = resolve_providers(plan.providers)
    session = ort.InferenceSession(str(Path(model_path)), sess_options=so, providers=providers)
    got = session.get_providers()
    if providers[0] not in got:
        log.warning("asked for %s but onnxruntime runs this model on %s", providers[0], got[0])
    return session

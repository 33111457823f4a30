"""One place that makes onnxruntime sessions.

Validates requested execution providers against what this onnxruntime build has, sets thread
counts and the graph optimisation level, and warns when a request silently falls back to CPU
(fastembed's habit: a user who asked for CUDA must learn they did not get it).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "dml": "DmlExecutionProvider",
}


@dataclass(frozen=True)
class SessionOptions:
    providers: tuple[str, ...] = ("cpu",)
    intra_op_threads: int | None = None  # None: onnxruntime's default (all physical cores)
    inter_op_threads: int | None = 1
    optimization: str = "all"  # disable | basic | extended | all
    backend: str = "onnxruntime"  # onnxruntime | openvino | openvino-f32 | auto (see backends.py)


BACKEND_CHOICES = ("auto", "onnxruntime", "openvino", "openvino-f32")  # see backends.py
PRECISION_CHOICES = ("auto", "fp32", "fp16", "int8", "int8-static", "int8-nncf")  # see selection.py


def add_session_arguments(parser, default_providers: str = "cpu") -> None:
    """The inference options every image command takes (--precision, --model-threads, --backend, --providers)."""
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                        help="vision variant (default auto: the fastest variant whose parity passed at export, for this "
                             "machine and backend, said in the output); fp32 for exact open_clip embeddings")
    parser.add_argument("--model-threads", type=int, default=None, help="inference intra-op threads (default: all cores)")
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="inference backend (default auto: OpenVINO bf16 where the CPU has AMX/AVX-512 BF16 and "
                             "OpenVINO is installed, else onnxruntime); openvino-f32 is OpenVINO in exact fp32")
    parser.add_argument("--providers", default=default_providers,
                        help=f"onnxruntime providers in order, e.g. cuda,cpu (default {default_providers})")


def session_options_from(args) -> "SessionOptions":
    """SessionOptions from the arguments ``add_session_arguments`` added."""
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    return SessionOptions(providers=providers, intra_op_threads=args.model_threads, backend=args.backend)


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


def make_session(model_path: str | os.PathLike, options: SessionOptions = SessionOptions(), variant=None):
    """A session for one ONNX file (external data beside it): onnxruntime, or OpenVINO behind the same API.

    ``variant`` (the manifest's entry for the file, when known) lets ``auto`` pick per graph.
    """
    from bioclip_edge.runtime.engine.backends import OpenVinoSession, choose_backend

    quant = getattr(variant, "quantization", None) or {}
    choice = choose_backend(options.backend, dynamic_int8=quant.get("mode") == "dynamic")
    if choice.backend.startswith("openvino"):
        return OpenVinoSession(model_path, exact_fp32=choice.backend == "openvino-f32", threads=options.intra_op_threads,
                               int8=getattr(variant, "compute", None) == "int8")
    return _onnxruntime_session(model_path, options)


def _onnxruntime_session(model_path: str | os.PathLike, options: SessionOptions):
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    if options.optimization not in levels:
        raise ValueError(f"optimization {options.optimization!r} is not one of {sorted(levels)}")
    so = ort.SessionOptions()
    so.graph_optimization_level = levels[options.optimization]
    so.log_severity_level = 3
    if options.intra_op_threads:
        so.intra_op_num_threads = int(options.intra_op_threads)
    if options.inter_op_threads:
        so.inter_op_num_threads = int(options.inter_op_threads)
    providers = resolve_providers(options.providers)
    session = ort.InferenceSession(str(Path(model_path)), sess_options=so, providers=providers)
    got = session.get_providers()
    if providers[0] not in got:
        log.warning("asked for %s but onnxruntime runs this model on %s", providers[0], got[0])
    return session

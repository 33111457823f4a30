"""Inference backends behind one small interface: onnxruntime, and OpenVINO reading the same ONNX.

Every caller (image embedder, text encoder, parity, profiling) talks to a session with
onnxruntime's surface: ``get_inputs()``, ``get_providers()`` and ``run(None, {name: array})``.
``OpenVinoSession`` offers that surface over an OpenVINO compiled model, so the bundle stays
plain ONNX and OpenVINO is an optional install (``pip install "bioclip-edge[openvino]"``).

Backend names: ``onnxruntime``; ``openvino`` (OpenVINO's own default precision: bf16 on CPUs
with AMX or AVX-512 BF16, f32 elsewhere); ``openvino-f32`` (exact fp32); ``auto`` (see
``choose_backend``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.cache import cache_dir

from bioclip_edge.runtime.inference.plan import BACKEND_CHOICES as BACKENDS  # one list, shared with the CLI options

log = logging.getLogger(__name__)


class BackendError(UserError):
    """A backend that was asked for but cannot run here."""


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # onnxruntime | openvino | openvino-f32
    reason: str  # said in the output: why this one


AMX = "AMX"  # added to OpenVINO's capabilities where the CPU has AMX (OpenVINO does not list it)


@functools.lru_cache(maxsize=1)
def openvino_capabilities() -> tuple[str, ...]:
    """OpenVINO's CPU capabilities (BF16, INT8, FP16...), plus ``AMX`` where the CPU has AMX tiles
    for bf16, or () when OpenVINO is not installed. AMX matters to ``--precision auto``: with it,
    OpenVINO's bf16 matches the transformer-preset int8 graph; without it, int8 (VNNI) wins."""
    try:
        import openvino as ov
    except ImportError:
        return ()
    try:
        caps = tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as exc:  # a broken install must not stop an onnxruntime run
        log.warning("OpenVINO is installed but its CPU plugin failed: %s", exc)
        return ()
    return caps + ((AMX,) if "amx_bf16" in cpu_flags() else ())


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def choose_backend(requested: str, dynamic_int8: bool = False, caps: tuple[str, ...] | None = None) -> BackendChoice:
    """Resolve ``auto``: OpenVINO where it has bf16 hardware (AMX / AVX-512 BF16), else onnxruntime.

    Measured here (2-core Xeon with AMX): OpenVINO bf16 ran the ViT-B/16 image tower ~4.6x faster
    than PyTorch and onnxruntime fp32; without bf16 hardware onnxruntime is as fast as OpenVINO f32.
    onnxruntime's *dynamic* int8 graphs (MatMulInteger) run best in onnxruntime itself, so ``auto``
    keeps them there (``dynamic_int8``). ``caps``: OpenVINO's CPU capabilities when the caller
    has them (a simulated machine, a plan made once); None reads this machine's.
    """
    if requested not in BACKENDS:
        raise BackendError(f"--backend {requested!r}: choose one of {', '.join(BACKENDS)}")
    caps = openvino_capabilities() if caps is None else caps
    if requested == "auto" and dynamic_int8:
        return BackendChoice("onnxruntime", "auto: onnxruntime's dynamic int8 graph runs best in onnxruntime")
    if requested == "auto":
        if "BF16" in caps:
            return BackendChoice("openvino", "auto: OpenVINO is installed and this CPU computes bf16 (AMX/AVX-512 BF16)")
        if caps:
            return BackendChoice("onnxruntime", "auto: this CPU has no bf16 hardware; onnxruntime")
        return BackendChoice("onnxruntime", "auto: OpenVINO is not installed; onnxruntime")
    if requested.startswith("openvino") and not caps:
        raise BackendError(f"--backend {requested}: OpenVINO is not installed; pip install \"bioclip-edge[openvino]\" "
                           "or use --backend onnxruntime")
    return BackendChoice(requested, f"{requested} as requested")


@dataclass(frozen=True)
class _Input:
    name: str
    type: str
    shape: list


_OV_TYPES = {"f32": "tensor(float)", "f16": "tensor(float16)", "i32": "tensor(int32)", "i64": "tensor(int64)"}


class OpenVinoSession:
    """An OpenVINO compiled model with the slice of onnxruntime's InferenceSession API we use."""

    def __init__(self, path: str | Path, exact_fp32: bool = False, model_threads: int | None = None,
                 static_shape: tuple[int, ...] | None = None, int8: bool = False):
        """``static_shape``: fix the input shape before compiling (benchmarks that time one shape);
        the runtime leaves the batch dynamic so any batch runs without a recompile. ``int8``: the
        graph is quantized, so its label says int8 first (the precision hint only covers what
        the graph leaves in float)."""
        import openvino as ov

        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if exact_fp32:
            config["INFERENCE_PRECISION_HINT"] = "f32"
        if model_threads:
            config["INFERENCE_NUM_THREADS"] = int(model_threads)
        cache = cache_dir("openvino")
        if cache is not None:  # compiled blobs: the next run starts ~0.6 s sooner (ViT-B/16 int8)
            # One folder per compile configuration: OpenVINO 2026.4 names the blob by the model
            # alone, so a blob compiled with INFERENCE_PRECISION_HINT=f32 would be loaded for the
            # default (bf16) configuration and return NaNs (tests/runtime/inference/test_cache.py).
            setting = ",".join(f"{k}={v}" for k, v in sorted(config.items()))
            folder = cache / hashlib.sha256(setting.encode()).hexdigest()[:12]
            core.set_property({"CACHE_DIR": str(folder)})
        if static_shape is None:  # from the path, so a cache hit skips reading the model too
            self._compiled = core.compile_model(str(path), "CPU", config)
        else:
            model = core.read_model(str(path))
            model.reshape({model.inputs[0].get_any_name(): list(static_shape)})
            self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        self.precision = str(self._compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").rstrip("'>")
        self.int8 = int8

    def get_inputs(self) -> list[_Input]:
        out = []
        for port in self._compiled.inputs:
            kind = _OV_TYPES.get(port.get_element_type().get_type_name(), "tensor(float)")
            # The Parameter node keeps the ONNX graph input's name; the port's tensor names may
            # have been merged with a following Cast's output.
            name = port.get_node().get_friendly_name()
            out.append(_Input(name, kind, [str(d) for d in port.get_partial_shape()]))
        return out

    def get_providers(self) -> list[str]:
        return [f"OpenVINO CPU (int8; {self.precision} elsewhere)" if self.int8 else f"OpenVINO CPU ({self.precision})"]

    def run(self, output_names, feeds: dict[str, Any]):
        import numpy as np

        (value,) = feeds.values()
        result = self._request.infer({0: value})
        return [np.asarray(result[self._compiled.output(0)])]

"""The machine's sustained matrix-multiply rate, measured in the same run as the targets.

Efficiency (a model's effective GFLOP/s over this peak) is the figure that transfers between
machines; absolute speeds drift 2-3x between runs on shared hardware, so the peak is never read
from a table: ``peak_probes`` gives kernels that the benchmark times in every round beside its
targets (same neighbours, same load), and ``measure_peaks`` times them on their own. The kernel
is four chained products the shape of ViT-B MLP layers ([1024 x 768] @ [768 x 3072], then back;
4 x 4.8 GFLOPs), so conversions to bf16/int8 at its ends amortise as they do in a model:

* ``numpy-fp32``: one such product with numpy's BLAS and its own threads (a reference);
* ``fp32`` / ``int8``: the chain as an ONNX graph in onnxruntime at a given thread count,
  int8 quantized exactly as the bundle's dynamic int8 variant is (onnxruntime quantize_dynamic);
* ``bf16``: OpenVINO on the fp32 graph with a bf16 inference hint, where the CPU has bf16/AMX;
* ``int8-ov``: OpenVINO on the chain as a static QDQ int8 graph (what NNCF writes for it), with
  OpenVINO's default precision as the runtime runs it: its int8 kernels (VNNI / AMX) outrun
  onnxruntime's dynamic int8 several times, so OpenVINO int8 targets are held to this peak.

Each result is a dict row; a kernel that cannot run here is a row with ``error``, not a crash.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from bioclip_edge.runtime.inference.plan import SessionOptions

SHAPE = (1024, 768, 3072)  # M, K, N: 1024 tokens through a ViT-B MLP layer


@dataclass(frozen=True)
class Peak:
    kind: str  # numpy-fp32 | fp32 | int8 | bf16
    backend: str  # numpy | onnxruntime | openvino
    threads: int | None  # None: the library's default
    gflops: float | None  # sustained GFLOP/s (25th-percentile call time over about half a second)
    calls: int = 0
    error: str | None = None

    def row(self) -> dict:
        return asdict(self)


def time_calls(fn: Callable[[], object], seconds: float = 0.5, warmup: int = 2, min_calls: int = 3) -> list[float]:
    """Per-call wall times after warm-up, for at least ``seconds`` and ``min_calls`` calls."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _rate(times: list[float], flops: float) -> float:
    """GFLOP/s at the 25th percentile call time: other processes on a shared machine only ever
    slow a call down, so the faster calls are the better estimate of what the hardware sustains."""
    quick = statistics.quantiles(times, n=4)[0] if len(times) >= 4 else min(times)
    return round(flops / quick / 1e9, 1)


LAYERS = 4  # the graph chains this many products, as a model does, so dtype conversions at its ends amortise


def _flops(shape=SHAPE, layers: int = 1) -> int:
    m, k, n = shape
    return 2 * m * k * n * layers


def numpy_peak(seconds: float = 0.5, shape=SHAPE) -> Peak:
    import numpy as np

    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    times = time_calls(lambda: a @ b, seconds)
    return Peak("numpy-fp32", "numpy", None, _rate(times, _flops(shape)), len(times))


def matmul_graph(folder: Path, shape=SHAPE, layers: int = LAYERS) -> Path:
    """x[M,K] through ``layers`` weight products, [K,N] then [N,K] alternately (an MLP stack).

    One product alone under-reports bf16 and int8: converting its fp32 input and output costs as
    much as the product. A chain, like the model's layers, keeps the low precision in between.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = shape
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        rows, cols = (k, n) if i % 2 == 0 else (n, k)
        inits.append(numpy_helper.from_array(rng.standard_normal((rows, cols), dtype=np.float32) * 0.02, f"W{i}"))
        out = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [prev, f"W{i}"], [out]))
        prev = out
    graph = helper.make_graph(
        nodes, "peak", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, k if layers % 2 == 0 else n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "peak.fp32.onnx"
    onnx.save(model, str(path))
    return path


def int8_graph(fp32: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = fp32.with_name("peak.int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing to the root logger
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=True)
    finally:
        root.setLevel(level)
    return out


def int8_qdq_graph(fp32: Path, shape=SHAPE) -> Path:
    """The chain as static QDQ int8, calibrated on two random inputs (ranges only)."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class _Inputs(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(2)
            self._items = iter([{"x": rng.standard_normal(shape[:2], dtype=np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self._items, None)

    out = fp32.with_name("peak.int8-qdq.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_static(str(fp32), str(out), _Inputs(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    return out


def ort_call(graph: Path, threads: int, shape=SHAPE) -> Callable[[], object]:
    return _plan_call(graph, SessionOptions(model_threads=threads), shape)


def openvino_call(graph: Path, threads: int, precision: str = "bf16", shape=SHAPE) -> Callable[[], object]:
    """The chain on OpenVINO as the runtime opens it: ``bf16`` (its default hint on a bf16 CPU, refused
    elsewhere), ``f32`` (exact) or ``default`` (OpenVINO's own choice, as the runtime runs int8 graphs)."""
    from bioclip_edge.runtime.inference.backends import openvino_capabilities

    if precision == "bf16" and "BF16" not in openvino_capabilities():
        raise RuntimeError("this CPU has no bf16 support in OpenVINO")
    backend = "openvino-f32" if precision == "f32" else "openvino"
    return _plan_call(graph, SessionOptions(model_threads=threads, backend=backend), shape)


def _plan_call(graph: Path, options: SessionOptions, shape) -> Callable[[], object]:
    """One call of the chain through the runtime's session factory, planned like any graph."""
    import numpy as np

    from bioclip_edge.runtime.inference.selection import plan_file
    from bioclip_edge.runtime.inference.session import open_session

    session = open_session(plan_file(graph, options, static_shape=tuple(shape[:2])))
    x = np.random.default_rng(1).standard_normal(shape[:2], dtype=np.float32)
    return lambda: session.run(None, {"x": x})


def ort_peak(graph: Path, kind: str, threads: int, seconds: float = 0.5, shape=SHAPE) -> Peak:
    times = time_calls(ort_call(graph, threads, shape), seconds)
    return Peak(kind, "onnxruntime", threads, _rate(times, _flops(shape, LAYERS)), len(times))


def openvino_peak(graph: Path, threads: int, precision: str = "bf16", seconds: float = 0.5, shape=SHAPE) -> Peak:
    times = time_calls(openvino_call(graph, threads, precision, shape), seconds)
    return Peak(precision, "openvino", threads, _rate(times, _flops(shape, LAYERS)), len(times))


def peak_probes(threads: tuple[int, ...], kinds: tuple[str, ...], folder: Path,
                shape=SHAPE) -> tuple[list[tuple[Callable[[], object], dict]], list[Peak]]:
    """Matmul kernels to time *inside* the targets' round-robin, so peak and targets share the
    same neighbours' load (a peak measured in a quiet moment makes every efficiency look low).

    Returns (callable, row) pairs for the bench loop and error Peaks for kernels that cannot run.
    """
    probes: list[tuple[Callable[[], object], dict]] = []
    errors: list[Peak] = []
    try:
        fp32 = matmul_graph(folder, shape)
    except ImportError:
        return [], [Peak(k, "onnxruntime", t, None, error="needs the onnx package to build the test graph")
                    for k in kinds for t in threads]
    graphs: dict[str, Path | str] = {"fp32": fp32}
    for kind, make in (("int8", int8_graph), ("int8-ov", lambda g: int8_qdq_graph(g, shape))):
        if kind in kinds:
            try:
                graphs[kind] = make(fp32)
            except Exception as exc:  # quantizer missing or failing: an error row per thread count
                graphs[kind] = f"{type(exc).__name__}: {exc}"
    for t in threads:
        for kind in kinds:
            backend = "openvino" if kind in ("bf16", "int8-ov") else "onnxruntime"
            try:
                if kind == "bf16":
                    fn = openvino_call(fp32, t, "bf16", shape)
                elif kind == "int8-ov" and isinstance(graphs.get(kind), Path):
                    fn = openvino_call(graphs[kind], t, "default", shape)
                elif isinstance(graphs.get(kind), Path):
                    fn = ort_call(graphs[kind], t, shape)
                else:
                    raise RuntimeError(str(graphs.get(kind, f"unknown arithmetic {kind!r}")))
            except Exception as exc:  # a kernel this machine or install cannot run
                errors.append(Peak(kind, backend, t, None, error=f"{type(exc).__name__}: {str(exc)[:200]}"))
                continue
            probes.append((fn, {"target": f"peak:{kind}@{t}", "kind": kind, "backend": backend, "threads": t,
                                "flops": _flops(shape, LAYERS), "status": "ok", "batch": 1}))
    return probes, errors


def probe_peak(row: dict) -> Peak:
    """The Peak a timed probe row stands for (fast-quartile call time, as in ``_rate``)."""
    lat = row.get("latencies_ms") or []
    if row.get("status") != "ok" or not lat:
        return Peak(row["kind"], row["backend"], row["threads"], None, error=row.get("error") or "not timed")
    return Peak(row["kind"], row["backend"], row["threads"], _rate([x / 1000 for x in lat], row["flops"]), len(lat))


def _guard(kind: str, backend: str, threads: int | None, fn: Callable[[], Peak]) -> Peak:
    try:
        return fn()
    except Exception as exc:  # a missing library or kernel is a row, not a crash
        return Peak(kind, backend, threads, None, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")


def measure_peaks(threads: tuple[int, ...], kinds: tuple[str, ...] = ("fp32", "int8"), seconds: float = 0.5,
                  shape=SHAPE) -> list[Peak]:
    """numpy-fp32 once, then each kind at each thread count. bf16 runs only when asked for."""
    peaks = [_guard("numpy-fp32", "numpy", None, lambda: numpy_peak(seconds, shape))]
    with tempfile.TemporaryDirectory(prefix="bioclip-edge-peak-") as tmp:
        try:
            fp32 = matmul_graph(Path(tmp), shape)
        except ImportError:
            return peaks + [Peak(k, "onnxruntime", t, None, error="needs the onnx package to build the test graph")
                            for k in kinds for t in threads]
        graphs: dict[str, Path] = {"fp32": fp32}
        if "int8" in kinds:
            try:
                graphs["int8"] = int8_graph(fp32)
            except Exception as exc:  # quantizer missing or failing: reported per thread count below
                graphs["int8-error"] = Path(f"{type(exc).__name__}: {exc}")
        for t in threads:
            for kind in kinds:
                if kind == "bf16":
                    peaks.append(_guard("bf16", "openvino", t, lambda: openvino_peak(fp32, t, "bf16", seconds, shape)))
                elif kind in graphs:
                    peaks.append(_guard(kind, "onnxruntime", t, lambda: ort_peak(graphs[kind], kind, t, seconds, shape)))
                else:
                    peaks.append(Peak(kind, "onnxruntime", t, None, error=str(graphs.get(f"{kind}-error", "unknown kind"))))
    return peaks


def numpy_peak_guarded(seconds: float = 0.5) -> Peak:
    """numpy's fp32 matmul rate (its BLAS, its own threads): a reference row, never a crash."""
    return _guard("numpy-fp32", "numpy", None, lambda: numpy_peak(seconds))


def peak_for(peaks: list[Peak], kind: str, threads: int) -> Peak | None:
    """The measured peak of ``kind`` at ``threads`` (None when not measured or failed)."""
    for p in peaks:
        if p.kind == kind and p.threads == threads and p.gflops:
            return p
    return None

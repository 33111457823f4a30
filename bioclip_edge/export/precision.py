"""Derive the fp16 and int8 variants from an fp32 graph.

fp16 here is a *storage* format: weights are stored in fp16 (half the download and disk) and
cast back to fp32 inside the graph, so inputs, outputs, LayerNorm, Softmax and every matmul stay
fp32. On CPU onnxruntime this is the fast and safe choice (fp16 arithmetic there is slower than
fp32, and the stock fp16 converters crashed or produced graphs that crashed onnxruntime CPU in
trials here); onnxruntime folds the casts at load time. The manifest says storage=fp16, compute=fp32.

int8 uses onnxruntime's quantizer on MatMul only (the usual safe choice; ConvInteger on CPU
wants uint8): dynamic (weights per-channel int8, activations quantized per batch at run time)
for both towers, and static QDQ calibrated on the user's own images for the vision tower.
Linear layers that the exporter wrote as Gemm are rewritten as MatMul + Add first so that they
are quantized too.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from bioclip_edge.export.onnx_export import OnnxFile, save_model

log = logging.getLogger(__name__)

FP16_MIN_ELEMENTS = 1024  # small tensors (biases, LayerNorm scales) stay fp32: no size to gain


@dataclass(frozen=True)
class QuantSettings:
    mode: str  # dynamic | static
    per_channel: bool = True
    op_types: tuple[str, ...] = ("MatMul",)
    weight_type: str = "int8"
    activation_type: str = "uint8"  # static only
    calibration: dict | None = None  # what static calibration saw: folder, image count, method

    def to_manifest(self) -> dict:
        out = {"mode": self.mode, "per_channel": self.per_channel, "op_types": list(self.op_types),
               "weight_type": self.weight_type}
        if self.mode == "static":
            out["activation_type"] = self.activation_type
            out["format"] = "QDQ"
            out["calibration"] = self.calibration
        return out


def to_fp16_storage(src: Path, dst: Path) -> OnnxFile:
    """Store large float weights as fp16, each followed by a Cast back to fp32."""
    model = onnx.load(str(src))
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < FP16_MIN_ELEMENTS:
            continue
        array = numpy_helper.to_array(init)
        if np.abs(array).max(initial=0) > 65000:  # would overflow fp16: keep fp32
            continue
        original = init.name
        stored = original + "__fp16"
        init.CopyFrom(numpy_helper.from_array(array.astype(np.float16), stored))
        casts.append(helper.make_node("Cast", [stored], [original], to=onnx.TensorProto.FLOAT,
                                      name=f"{original}__to_fp32"))
    for node in reversed(casts):
        graph.node.insert(0, node)
    return save_model(model, dst)


def gemm_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrite Gemm(x, W, b) with constant W as MatMul(x, W') + b so MatMul quantization covers it."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes, rewritten = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ok = (
            node.op_type == "Gemm" and node.input[1] in inits and attrs.get("transA", 0) == 0
            and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        )
        if not ok:
            new_nodes.append(node)
            continue
        w_init = inits[node.input[1]]
        w = numpy_helper.to_array(w_init)
        if attrs.get("transB", 0):
            w = np.ascontiguousarray(w.T)
        w_name = node.input[1] + "__matmul"
        graph.initializer.append(numpy_helper.from_array(w, w_name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = node.output[0] + "__mm" if has_bias else node.output[0]
        new_nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [mm_out], name=node.name + "_matmul"))
        if has_bias:
            new_nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_bias"))
        rewritten += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return rewritten


def _prepared(src: Path, workdir: Path) -> Path:
    """fp32 graph with Gemm rewritten and shapes inferred: the quantizer's input."""
    model = onnx.load(str(src))
    n = gemm_to_matmul(model)
    if n:
        log.info("rewrote %d Gemm nodes as MatMul+Add before quantization", n)
    path = workdir / "prepared.onnx"
    save_model(model, path)
    return path


class _NoPreprocessNag(logging.Filter):
    """onnxruntime's quantizer logs advice to run its pre-processing on every call; we rewrite Gemm ourselves."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _prepared_for_quantizer(src: Path, dst: Path) -> Iterator[Path]:
    """The quantizer's input in a scratch folder beside ``dst``, with its pre-processing advice muted.

    The filter sits on the root logger (where onnxruntime's quantizer logs) only while quantizing:
    importing this module must not change a host program's logging.
    """
    nag = _NoPreprocessNag()
    root = logging.getLogger()
    root.addFilter(nag)
    try:
        with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
            yield _prepared(src, Path(tmp))
    finally:
        root.removeFilter(nag)


def quantize_dynamic_int8(src: Path, dst: Path, settings: QuantSettings = QuantSettings("dynamic")) -> OnnxFile:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _prepared_for_quantizer(src, dst) as prepared:
        quantize_dynamic(
            str(prepared), str(dst),
            op_types_to_quantize=list(settings.op_types),
            per_channel=settings.per_channel,
            weight_type=QuantType.QInt8,
            use_external_data_format=_needs_external(prepared),
            extra_options={"MatMulConstBOnly": True},
        )
    return _as_file(dst)


def quantize_static_int8(
    src: Path, dst: Path, batches: Iterable[np.ndarray], input_name: str, settings: QuantSettings
) -> OnnxFile:
    """Static QDQ int8 calibrated on ``batches`` of preprocessed pixels (the user's own images)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, items: Iterator[np.ndarray]):
            self.items = iter(items)

        def get_next(self):
            batch = next(self.items, None)
            return None if batch is None else {input_name: batch}

    with _prepared_for_quantizer(src, dst) as prepared:
        quantize_static(
            str(prepared), str(dst), Reader(iter(batches)),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(settings.op_types),
            per_channel=settings.per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            use_external_data_format=_needs_external(prepared),
            extra_options={"MatMulConstBOnly": True},
        )
    return _as_file(dst)


def nncf_available() -> bool:
    """Whether nncf is installed, without importing it: importing nncf imports torch (0.7 GB), which
    the exporting process keeps out until it quantizes (``torch_process``)."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


NNCF_PRESETS = ("performance", "performance-sq", "transformer")
PERFORMANCE_FLOAT_TYPES = ("ReduceL2", "Div", "Add")  # kept float by the performance preset (see below)


def quantize_nncf_int8(src: Path, dst: Path, batches: Iterable[np.ndarray], input_name: str,
                       settings: QuantSettings, preset: str = "transformer") -> OnnxFile:
    """NNCF post-training int8 as a QDQ ONNX graph, for OpenVINO's int8 (VNNI/AMX) kernels.

    Presets, measured side by side on ViT-B/16 here (random weights, OpenVINO, 2 cores):
    - ``transformer``: NNCF's transformer preset (SmoothQuant, bias correction).
      Cosine 0.9998 to fp32, but no faster than OpenVINO bf16 (1.0-1.1x).
    - ``performance-sq``: the performance preset (symmetric int8 activations, same speed) with
      SmoothQuant, and the output projection (the graph's last MatMul) kept float. On random-weight
      ViT-L/14 the performance preset's error was spread over every image (mean cosine 0.9949, min
      0.9908); SmoothQuant took the mean to 0.9997 but left one high-contrast photo at 0.9906, and
      bypassing groups of quantizers on it showed nearly all of that error at the projection's
      input (one token, negligible work). With it float: min 0.9953 on the 96 gate images, 1.74x
      OpenVINO bf16 on the tower, where the transformer preset reached 0.9901.
    - ``performance``: NNCF's default (performance) preset with the output normalisation
      (ReduceL2, Div) and the residual Adds kept in floating point. Quantized, the normalisation
      left output norms of 1.13, and the residual stream's outlier channels cost most of the
      error: keeping the Adds float took ViT-B/16's mean cosine from 0.9987 to 0.9997 and ran
      slightly faster (1.66x OpenVINO bf16 against 1.57x). Also measured, and worse: keeping the
      attention matmuls float (1.09x bf16), the MLP fc2 (1.26x), quantile activation ranges (min
      cosine 0.994), 64 instead of 8 calibration images (no gain). The exporter's ``auto`` keeps
      this preset only when it passes a parity gate (``build._nncf_variant``).
    onnxruntime runs either graph too (parity is measured there).
    """
    import nncf

    model = onnx.load(str(src))
    data = [{input_name: b} for b in batches]
    with _quiet_nncf():
        quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=_images(data, input_name),
                                  **_nncf_preset_kwargs(preset, PERFORMANCE_FLOAT_TYPES, _last_onnx_matmul(model)))
    return save_model(quantized, dst)


# The same ops as PERFORMANCE_FLOAT_TYPES under OpenVINO's names (its ONNX reader turns Div into
# Divide; the normalisation may arrive as ReduceL2 or NormalizeL2).
PERFORMANCE_FLOAT_TYPES_OV = ("ReduceL2", "NormalizeL2", "Divide", "Add")


def quantize_nncf_openvino(src: Path, dst: Path, batches: Iterable[np.ndarray], input_name: str,
                           preset: str = "performance") -> OnnxFile:
    """NNCF int8 through OpenVINO, from the ONNX file to an OpenVINO IR (``dst`` .xml + .bin).

    Why: ViT-H/14's fp32 vision graph (2.5 GB) keeps its weights as ONNX external data, and NNCF's
    ONNX path works on one in-memory protobuf, which cannot exceed 2 GB. OpenVINO reads the file
    with its external data itself and NNCF quantizes OpenVINO's model, which is also the graph
    OpenVINO then runs; only OpenVINO reads the result (``Variant.format`` ``openvino-ir``). The
    presets are the ONNX path's (``quantize_nncf_int8``). Weights left in float stay fp32 in the
    .bin (no fp16 compression), so the only change from the fp32 graph is NNCF's.
    """
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(src))
    data = [{input_name: b} for b in batches]
    with _quiet_nncf():
        quantized = nncf.quantize(model, nncf.Dataset(data), subset_size=_images(data, input_name),
                                  **_nncf_preset_kwargs(preset, PERFORMANCE_FLOAT_TYPES_OV, _last_openvino_matmul(model)))
    del model
    ov.save_model(quantized, str(dst), compress_to_fp16=False)
    return OnnxFile(dst, dst.with_suffix(".bin"))


def _nncf_preset_kwargs(preset: str, float_types: tuple[str, ...], last_matmul: str | None) -> dict:
    """``nncf.quantize`` keywords for a preset (see ``quantize_nncf_int8``). ``last_matmul``: the
    output projection's node name, kept float by ``performance-sq``."""
    import nncf

    if preset not in NNCF_PRESETS:
        raise ValueError(f"NNCF preset {preset!r} is not one of {NNCF_PRESETS}")
    if preset == "transformer":
        return {"model_type": nncf.ModelType.TRANSFORMER}
    if preset == "performance-sq":  # the transformer model type is what turns SmoothQuant on
        scope = nncf.IgnoredScope(names=[last_matmul] if last_matmul else [], validate=False)
        return {"model_type": nncf.ModelType.TRANSFORMER, "preset": nncf.QuantizationPreset.PERFORMANCE,
                "ignored_scope": scope}
    return {"ignored_scope": nncf.IgnoredScope(types=list(float_types), validate=False)}


def _last_onnx_matmul(model: onnx.ModelProto) -> str | None:
    """The name of the graph's last MatMul (ONNX nodes are in topological order): the output
    projection of an open_clip tower, or None when there is none."""
    names = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    return names[-1] if names else None


def _last_openvino_matmul(model) -> str | None:
    """``_last_onnx_matmul`` for an OpenVINO model (its ordered ops are topological)."""
    names = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    return names[-1] if names else None


def _images(data: list[dict], input_name: str) -> int:
    return sum(len(d[input_name]) for d in data)


@contextlib.contextmanager
def _quiet_nncf() -> Iterator[None]:
    """NNCF logs one INFO line per kept-float node (75 on ViT-B/16): noise in an export's output."""
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        nncf_log.setLevel(level)


def _needs_external(path: Path) -> bool:
    return path.with_name(path.name + ".data").exists() or path.stat().st_size > 1_800_000_000


def _as_file(path: Path) -> OnnxFile:
    """Normalise what the quantizer wrote: a single graph, or graph + exactly one data file."""
    model = onnx.load(str(path), load_external_data=False)
    locations = {
        e.value for i in model.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL
        for e in i.external_data if e.key == "location"
    }
    if not locations:
        return OnnxFile(path, None)
    full = onnx.load(str(path))
    for loc in locations:
        (path.parent / loc).unlink(missing_ok=True)
    return save_model(full, path, external=True)

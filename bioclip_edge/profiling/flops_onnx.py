"""FLOPs read from an exported ONNX graph, without torch.

Why: the bundle is what runs, so its graph is the ground truth a user can check on a field box
with only ``onnx`` installed, and agreement with the torch count proves the export kept the
model's shape. The input dims are fixed (batch 1, the text length given), shapes are inferred
(ONNX's own inference with data propagation, then onnxruntime's symbolic inference, then for
graphs with embedded weights one onnxruntime run on zeros, until no product's shape is
unknown), and every product is counted from its operand shapes:

    MatMul-like  [..., M, K] x [..., K, N]  -> 2 * batch * M * K * N
    Gemm         [M, K] x [K, N]            -> 2 * M * K * N
    Conv         out [N, Co, *S], w [Co, Ci/g, *k] -> 2 * N * Co * prod(S) * Ci/g * prod(k)
    Attention (ai.onnx 23 / com.microsoft MultiHeadAttention) -> 2 * B * H * Sq * Skv * (Dqk + Dv)

A product with a constant operand (an initializer, or something computed only from
initializers such as a DequantizeLinear or Transpose of one) is a weight product; a product of
two activations is attention. Quantized ops (MatMulInteger, QLinearMatMul, DynamicQuantizeMatMul,
ConvInteger, QLinearConv) count like their float versions, so int8 and fp32 graphs agree.
Ops that multiply but are not understood (Einsum, com.microsoft Attention) are listed in
``uncounted`` rather than silently dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Mapping, Sequence

from bioclip_edge.errors import UserError
from bioclip_edge.profiling.flops_analytic import FlopSplit

# op -> (index of operand A, index of operand B)
MATMUL_OPS = {
    "MatMul": (0, 1), "MatMulInteger": (0, 1), "FusedMatMul": (0, 1), "DynamicQuantizeMatMul": (0, 1),
    "MatMulIntegerToFloat": (0, 1), "QLinearMatMul": (0, 3),
}
GEMM_OPS = {"Gemm": (0, 1), "QGemm": (0, 3)}
CONV_OPS = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
ATTENTION_OPS = {"Attention", "MultiHeadAttention"}
UNCOUNTED_OPS = {"Einsum", "GroupQueryAttention", "PackedAttention", "QAttention", "ConvTranspose"}


class OnnxFlopsError(UserError, ValueError):
    """An ONNX file that cannot be counted; names the file and the problem."""


@dataclass(frozen=True)
class OnnxFlops(FlopSplit):
    path: str
    input_shapes: dict[str, tuple[int, ...]]
    weight_flops: int
    attention_flops: int
    by_op: dict[str, int] = field(default_factory=dict)
    uncounted: tuple[str, ...] = ()  # "op_type node_name: why"


def _fix_inputs(model, overrides: Mapping[str, Sequence[int]], batch: int, where: str) -> dict[str, tuple[int, ...]]:
    """Write concrete dims into the graph inputs; leading symbolic dim -> batch, others from overrides."""
    inits = {i.name for i in model.graph.initializer}
    fixed: dict[str, tuple[int, ...]] = {}
    for inp in model.graph.input:
        if inp.name in inits:
            continue
        dims = inp.type.tensor_type.shape.dim
        wanted = list(overrides[inp.name]) if inp.name in overrides else None
        if wanted is not None and len(wanted) != len(dims):
            raise OnnxFlopsError(f"{where}: input {inp.name!r} has {len(dims)} dims, got shape {tuple(wanted)}")
        shape = []
        for i, d in enumerate(dims):
            if wanted is not None:
                value = int(wanted[i])
            elif d.HasField("dim_value"):
                value = d.dim_value
            elif i == 0:
                value = batch
            else:
                raise OnnxFlopsError(
                    f"{where}: input {inp.name!r} dim {i} ({d.dim_param or '?'}) is dynamic; "
                    "give its size (for a text tower: the token length)"
                )
            d.Clear()
            d.dim_value = value
            shape.append(value)
        fixed[inp.name] = tuple(shape)
    return fixed


def _shapes(model) -> dict[str, tuple[int, ...] | None]:
    out: dict[str, tuple[int, ...] | None] = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        t = vi.type.tensor_type
        if not t.HasField("shape"):
            out[vi.name] = None
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[vi.name] = None if any(d is None for d in dims) else tuple(dims)
    for init in model.graph.initializer:
        out[init.name] = tuple(init.dims)
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    out[node.output[0]] = tuple(a.t.dims)
    return out


def _constants(model) -> set[str]:
    """Tensors computed from initializers only (their products are weight products)."""
    const = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" or (node.input and all(not n or n in const for n in node.input)):
            const.update(node.output)
    return const


def _infer(model, where: str):
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and others
        raise OnnxFlopsError(f"{where}: ONNX shape inference failed ({str(exc)[:200]})") from None
    return inferred


def _operands(node) -> tuple[int, ...]:
    if node.op_type in MATMUL_OPS:
        return MATMUL_OPS[node.op_type]
    if node.op_type in GEMM_OPS:
        return GEMM_OPS[node.op_type]
    if node.op_type in CONV_OPS:
        return (0, CONV_OPS[node.op_type])
    return ()


def _ort_symbolic(model):
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError:
        return None
    try:
        return SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    except Exception:  # best effort: the caller reports what stays unknown
        return None


def _probe_with_ort(model, names: set[str], fixed: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Last resort: run the graph once on zeros with the unknown tensors as extra outputs.

    Some exporters (torch's TorchScript path) compute reshape targets with arithmetic that
    neither shape inference follows. Only for graphs whose weights are inside the file: the
    run needs them, and a multi-GB external-data graph is not worth loading to count it.
    """
    import onnx

    if any(i.data_location == onnx.TensorProto.EXTERNAL for i in model.graph.initializer):
        return {}
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError:
        return {}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known_outputs = {o.name for o in probe.graph.output}
    for name in sorted(names - known_outputs):
        probe.graph.output.append(onnx.ValueInfoProto(name=name))
    feeds = {}
    for inp in probe.graph.input:
        if inp.name in fixed:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
            feeds[inp.name] = np.zeros(fixed[inp.name], dtype=dtype)
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
        so.log_severity_level = 4  # a failed probe is reported as uncounted, not as a log line
        session = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
        outs = session.run([o.name for o in session.get_outputs()], feeds)
    except Exception:  # best effort: what stays unknown is reported as uncounted
        return {}
    return {o.name: tuple(v.shape) for o, v in zip(session.get_outputs(), outs) if o.name in names}


def _unknown(model, shapes) -> set[str]:
    missing: set[str] = set()
    for node in model.graph.node:
        names = [node.input[i] for i in _operands(node)]
        if node.op_type in CONV_OPS:
            names.append(node.output[0])
        missing.update(n for n in names if shapes.get(n) is None)
    return missing


def _attr(node, name: str, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _matmul_flops(node, a, b) -> int:
    if node.op_type == "FusedMatMul":
        if _attr(node, "transA", 0):
            a = a[:-2] + (a[-1], a[-2])
        if _attr(node, "transB", 0):
            b = b[:-2] + (b[-1], b[-2])
    if len(a) == 1:
        a = (1,) + a
    if len(b) == 1:
        b = b + (1,)
    batch_a, batch_b = a[:-2], b[:-2]
    n = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (n - len(batch_a)) + batch_a
    batch_b = (1,) * (n - len(batch_b)) + batch_b
    batch = prod(max(x, y) for x, y in zip(batch_a, batch_b))
    return 2 * batch * a[-2] * a[-1] * b[-1]


def _gemm_flops(node, a, b) -> int:
    m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
    n = b[0] if _attr(node, "transB", 0) else b[1]
    return 2 * m * k * n


def _conv_flops(w, out) -> int:
    return 2 * out[0] * out[1] * prod(out[2:]) * w[1] * prod(w[2:])


def _attention_flops(node, shapes) -> int | None:
    """ai.onnx Attention (opset 23): Q/K/V [B, H, S, D] or [B, S, H*D] with q/kv_num_heads."""
    q, k, v = (shapes.get(node.input[i]) if len(node.input) > i else None for i in range(3))
    if not (q and k and v):
        return None
    if len(q) == 4:
        b, h, sq, dq = q
        skv, dv = k[2], v[3]
    else:
        heads = int(_attr(node, "q_num_heads", 0) or _attr(node, "num_heads", 0) or 1)
        kv_heads = int(_attr(node, "kv_num_heads", 0) or heads)
        b, sq, h = q[0], q[1], heads
        dq, skv, dv = q[2] // heads, k[1], v[2] // kv_heads
    return 2 * b * h * sq * skv * (dq + dv)


def count_onnx(path: str | Path, input_shapes: Mapping[str, Sequence[int]] | None = None, batch: int = 1) -> OnnxFlops:
    """Count one ONNX file's FLOPs for one forward pass at the given input shapes (batch 1 by default)."""
    try:
        import onnx
    except ImportError:
        raise OnnxFlopsError("counting FLOPs from ONNX needs the onnx package (pip install onnx)") from None
    where = str(path)
    try:
        model = onnx.load(str(path), load_external_data=False)  # shapes only: the weights can stay on disk
    except Exception as exc:  # onnx raises DecodeError, OSError, ValueError for a bad file
        raise OnnxFlopsError(f"{where}: not a readable ONNX file ({str(exc)[:200]})") from None
    fixed = _fix_inputs(model, dict(input_shapes or {}), batch, where)
    inferred = _infer(model, where)
    shapes = _shapes(inferred)
    if _unknown(inferred, shapes):
        better = _ort_symbolic(model)
        if better is not None:
            shapes.update({k: v for k, v in _shapes(better).items() if v is not None})
    missing = _unknown(inferred, shapes)
    if missing:
        shapes.update(_probe_with_ort(model, missing, fixed))
    const = _constants(inferred)
    weight = attention = 0
    by_op: Counter[str] = Counter()
    uncounted: list[str] = []
    for node in inferred.graph.node:
        op = node.op_type
        flops: int | None = None
        is_weight = True
        if op in MATMUL_OPS or op in GEMM_OPS:
            ia, ib = _operands(node)
            a, b = shapes.get(node.input[ia]), shapes.get(node.input[ib])
            if a and b:
                flops = _matmul_flops(node, a, b) if op in MATMUL_OPS else _gemm_flops(node, a, b)
            is_weight = node.input[ia] in const or node.input[ib] in const
        elif op in CONV_OPS:
            w, out = shapes.get(node.input[CONV_OPS[op]]), shapes.get(node.output[0])
            if w and out:
                flops = _conv_flops(w, out)
        elif op in ATTENTION_OPS:
            flops, is_weight = _attention_flops(node, shapes), False
        elif op in UNCOUNTED_OPS:
            uncounted.append(f"{op} {node.name}: op not understood by this counter")
            continue
        else:
            continue
        if flops is None:
            uncounted.append(f"{op} {node.name}: operand shapes unknown after shape inference")
            continue
        by_op[op] += flops
        if is_weight:
            weight += flops
        else:
            attention += flops
    return OnnxFlops(where, fixed, weight, attention, dict(by_op), tuple(uncounted))

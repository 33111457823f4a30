"""torch -> ONNX for one tower, with dynamic batch (and length for text), in one or two files.

Uses torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``) with its ONNX optimiser.
Graphs over ~2 GB (ViT-H/14 in fp32) must keep their weights as ONNX external data; they are
saved as exactly one ``<name>.onnx.data`` file beside the graph, never one file per tensor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

if TYPE_CHECKING:  # torch is imported where a tower is exported: the exporting process stays torch-free
    import torch

log = logging.getLogger(__name__)

DEFAULT_OPSET = 20  # 20: GELU is one Gelu op (onnxruntime and OpenVINO run it fused)
# Bytes of weights above which a graph keeps them in one external ``.onnx.data`` file. Protobuf's
# hard limit is 2 GiB, but an inline save also holds the serialised model next to the graph: saving
# ViT-L/14's 1.2 GB vision tower inline raised the PyTorch stage's peak from 2.9 GB to 6.4 GB,
# the whole export's peak (3.75x the fp32 weights). External data is written tensor by tensor.
EXTERNAL_DATA_THRESHOLD = 1_000_000_000
MAX_BATCH = 4096


@dataclass(frozen=True)
class OnnxFile:
    graph: Path
    data: Path | None  # external data file, when the weights did not fit in the graph


def export_tower(
    module: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    input_name: str,
    arg_name: str,
    dynamic_length: int | None = None,
    opset: int = DEFAULT_OPSET,
) -> OnnxFile:
    """Export ``module(example)`` to ``path``; batch is dynamic, and dim 1 up to ``dynamic_length`` if given."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dims = {0: batch}
    if dynamic_length:
        dims[1] = torch.export.Dim("length", min=2, max=dynamic_length)
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    external = weight_bytes > EXTERNAL_DATA_THRESHOLD
    path.parent.mkdir(parents=True, exist_ok=True)
    _quiet_exporter()
    with torch.no_grad():
        program = torch.onnx.export(
            module,
            (example,),
            None,
            input_names=[input_name],
            output_names=["embeddings"],
            dynamo=True,
            dynamic_shapes={arg_name: dims},
            opset_version=opset,
            verbose=False,
        )
    program.save(str(path), external_data=external)
    del program
    _drop_rewriter_state()
    data = _single_data_file(path) if external else None
    return OnnxFile(path, data)


def _drop_rewriter_state() -> None:
    """Let go of the graph onnxscript's rewriter still holds after an export.

    Its pattern matchers are module-level rules that keep the last graph they matched
    (``SimplePatternMatcher._graph``, the match and node), and that graph wraps the module's torch
    weights: after exporting ViT-B/16's text tower 0.4 GB stayed alive (found with gc referrers),
    ViT-H/14's would be 1.4 GB. The export frees the model before quantizing, so clear them.
    """
    import gc
    import warnings

    try:
        from onnxscript.rewriter._matcher import SimplePatternMatcher
    except ImportError:  # another onnxscript layout: nothing known to clear
        return
    with warnings.catch_warnings():  # touching deprecated torch objects' classes warns
        warnings.simplefilter("ignore")
        matchers = [obj for obj in gc.get_objects() if isinstance(obj, SimplePatternMatcher)]
    for obj in matchers:
        for attr in ("_graph", "_match", "_current_node", "_tracer"):
            if attr in vars(obj):
                setattr(obj, attr, None)


def _single_data_file(path: Path) -> Path:
    """Rewrite a graph's external data as one file ``<graph>.data`` and remove any others."""
    model = onnx.load(str(path), load_external_data=False)
    locations = {
        entry.value
        for init in model.graph.initializer
        if init.data_location == onnx.TensorProto.EXTERNAL
        for entry in init.external_data
        if entry.key == "location"
    }
    target = path.name + ".data"
    if locations == {target}:
        return path.with_name(target)
    log.info("consolidating %d external data files of %s into %s", len(locations), path.name, target)
    model = onnx.load(str(path), load_external_data=True)
    for loc in locations:
        (path.parent / loc).unlink(missing_ok=True)
    save_model(model, path, external=True)
    return path.with_name(target)


def save_model(model: onnx.ModelProto, path: Path, external: bool | None = None) -> OnnxFile:
    """Save a model in one file, or graph + one ``.data`` file when it is too large for protobuf."""
    if external is None:
        external = weight_bytes(model) > EXTERNAL_DATA_THRESHOLD or not _all_inline(model)
    data_name = path.name + ".data"
    if external:
        (path.parent / data_name).unlink(missing_ok=True)
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        return OnnxFile(path, path.with_name(data_name))
    onnx.save_model(model, str(path))
    return OnnxFile(path, None)


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes held in initializers (``ModelProto.ByteSize`` itself fails past protobuf's 2 GiB)."""
    total = 0
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        total += n * onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
    return total


def _all_inline(model: onnx.ModelProto) -> bool:
    return all(init.data_location != onnx.TensorProto.EXTERNAL for init in model.graph.initializer)


def _quiet_exporter() -> None:
    """The dynamo exporter prints progress lines to stdout; keep the CLI's output readable."""
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)

"""The part of an export that needs the PyTorch model, returning plain data so the model can go.

Why a stage of its own: the model (4 bytes a parameter) and the exporter's buffers are the
largest things an export holds, and everything after the fp32 graphs (fp16, int8, NNCF, parity)
works from files. ``run_torch_stage`` loads the model, measures PyTorch's reference outputs,
exports both fp32 towers and reads what the manifest needs from the model; when it returns
nothing refers to the model any more, and ``resources.give_back_memory`` returns its pages
before quantization starts (ViT-H/14: 3.9 GB of weights).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bioclip_edge.runtime.inference.manifest import ModelInfo, Preprocess, TokenizerSpec
from bioclip_edge.export.onnx_export import DEFAULT_OPSET, OnnxFile, export_tower
from bioclip_edge.export.parity import REFERENCE_FILE, Reference
from bioclip_edge.export.sources import LoadedModel, ModelRequest, load_model
from bioclip_edge.export.towers import VisionTower, count_params, text_tower_for, use_export_attention

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchResults:
    """Everything the rest of the export needs from PyTorch, as data and files."""

    reference: Reference
    fp32_files: dict[str, OnnxFile]  # tower -> its fp32 graph
    dynamic_length: bool  # the text graph takes trimmed contexts
    model: ModelInfo
    preprocess: Preprocess
    tokenizer: TokenizerSpec
    calibration_pixels: np.ndarray | None  # preprocessed calibration images (None: no int8 calibration)
    calibration_embeddings: np.ndarray | None  # PyTorch fp32's embeddings of them: the preset gate's reference
    fp32_weights_bytes: int  # 4 bytes per parameter: the size of an fp32 checkpoint


def run_torch_stage(request: ModelRequest, work: Path, parity_images: int, reference_extra: list[Path],
                    calibration_images: Callable[[], list] | None, opset: int = DEFAULT_OPSET,
                    say: Callable[[str], None] = log.info) -> TorchResults:
    """Load, measure PyTorch's reference, export the fp32 towers, read the manifest's facts.

    ``calibration_images``: called for the images int8 calibration will see (the user's or the
    built-in ones), which are preprocessed here by open_clip's own transform; None: no calibration.
    """
    from bioclip_edge.export.build_facts import model_info, preprocess_record, text_config, tokenizer_spec
    from bioclip_edge.export.reference import build_reference, image_embeddings, preprocess

    say(f"loading {request.spec}")
    loaded = load_model(request)  # logs a warning when the weights are random
    text_cfg, context = text_config(loaded)
    say(f"measuring PyTorch reference outputs on {parity_images} photos")
    ref = build_reference(loaded, text_cfg, parity_images, extra_images=reference_extra[:parity_images])
    ref.save(work / REFERENCE_FILE)
    pixels = preprocess(loaded, calibration_images()) if calibration_images is not None else None
    embeddings = image_embeddings(loaded, pixels) if pixels is not None else None
    files, text_tower, dynamic_length = _export_fp32(loaded, ref, context, work, opset, say)
    return TorchResults(
        reference=ref, fp32_files=files, dynamic_length=dynamic_length,
        model=model_info(loaded, text_tower), preprocess=preprocess_record(loaded),
        tokenizer=tokenizer_spec(loaded, text_cfg, work), calibration_pixels=pixels, calibration_embeddings=embeddings,
        fp32_weights_bytes=4 * count_params(loaded.model),
    )


def _export_fp32(loaded: LoadedModel, ref: Reference, context: int, work: Path, opset: int,
                 say: Callable[[str], None]) -> tuple[dict[str, OnnxFile], torch.nn.Module, bool]:
    """Both towers' fp32 graphs, exported after the reference (parity is against open_clip itself)."""
    swapped = use_export_attention(loaded.model)
    log.info("exporting %d attention blocks with the batch-first attention graph", swapped)
    vision_tower = VisionTower(loaded.model).eval()
    text_tower, dynamic_length = text_tower_for(loaded.model)
    files = {}
    for tower, module, example, input_name, arg in (
        ("vision", vision_tower, torch.from_numpy(ref.pixels[:2]), "pixels", "pixels"),
        ("text", text_tower, torch.from_numpy(_example_ids(ref, dynamic_length, context)), "input_ids", "ids"),
    ):
        say(f"exporting {tower} tower (fp32)")
        files[tower] = export_tower(module, example, work / f"{tower}.fp32.onnx", input_name, arg,
                                    dynamic_length=context if (tower == "text" and dynamic_length) else None,
                                    opset=opset)
    return files, text_tower, dynamic_length


def _example_ids(ref: Reference, dynamic_length: bool, context: int) -> np.ndarray:
    if dynamic_length:
        return ref.ids[:2]
    ids = np.zeros((2, context), dtype=np.int32)
    ids[:, : ref.ids.shape[1]] = ref.ids[:2]
    return ids

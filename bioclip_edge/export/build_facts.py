"""What the manifest records about the model, read from the loaded open_clip model.

Kept apart from the export's orchestration (``build``) and its PyTorch stage (``torch_stage``)
so each reads as one concern: these functions only describe a model, they never change it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bioclip_edge.runtime.inference.manifest import ModelInfo, Preprocess, TokenizerSpec
from bioclip_edge.export.sources import LoadedModel


def text_config(loaded: LoadedModel) -> tuple[dict, int]:
    """The text config with its context length and pooling filled in, and the context length."""
    text_cfg = dict(loaded.model_cfg.get("text_cfg", {}))
    model = loaded.model
    context = int(getattr(getattr(model, "text", model), "context_length", text_cfg.get("context_length", 77)))
    text_cfg.setdefault("context_length", context)
    text_cfg.setdefault("pool_type", getattr(model, "text_pool_type", "argmax"))
    return text_cfg, context


def tokenizer_spec(loaded: LoadedModel, text_cfg: dict, work: Path) -> TokenizerSpec:
    """Write the tokenizer files into the bundle and describe them (with why, when unavailable)."""
    from bioclip_edge.export.tokenizer_files import write_tokenizer_files

    cfg = dict(loaded.model_cfg)
    cfg["text_cfg"] = text_cfg
    spec = write_tokenizer_files(loaded.tokenizer, cfg, work)
    if loaded.tokenizer_error and spec.available:
        spec = dataclasses.replace(spec, note=loaded.tokenizer_error)
    return spec


def model_info(loaded: LoadedModel, text_tower) -> ModelInfo:
    from bioclip_edge.export.towers import count_params

    model = loaded.model
    scale = float(model.logit_scale.exp().item()) if getattr(model, "logit_scale", None) is not None else 100.0
    bias = getattr(model, "logit_bias", None)
    return ModelInfo(
        id=loaded.id,
        architecture=loaded.architecture,
        source=loaded.source,
        embed_dim=_embed_dim(loaded),
        logit_scale=scale,
        logit_bias=float(bias.item()) if bias is not None else None,
        params_vision=count_params(model.visual),
        params_text=count_params(text_tower),
        open_clip_config=loaded.model_cfg,
    )


def _embed_dim(loaded: LoadedModel) -> int:
    dim = loaded.model_cfg.get("embed_dim")
    if dim:
        return int(dim)
    return int(getattr(loaded.model.visual, "output_dim"))


def _image_size(loaded: LoadedModel) -> tuple[int, int]:
    size = loaded.preprocess_cfg.get("size", 224)
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def preprocess_record(loaded: LoadedModel) -> Preprocess:
    pre = loaded.preprocess_cfg
    return Preprocess(
        image_size=_image_size(loaded),
        resize_mode=str(pre.get("resize_mode", "shortest")),
        interpolation=str(pre.get("interpolation", "bicubic")),
        mean=tuple(float(x) for x in pre["mean"]),
        std=tuple(float(x) for x in pre["std"]),
        fill_color=int(pre.get("fill_color", 0)),
    )


def versions() -> dict[str, str]:
    """The versions that made the bundle, from the installed packages' metadata (the exporting
    process does not import torch or open_clip itself: ``torch_process``)."""
    from importlib.metadata import version

    import onnx
    import onnxruntime

    from bioclip_edge import __version__

    return {"bioclip_edge": __version__, "torch": version("torch"), "open_clip": version("open_clip_torch"),
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}

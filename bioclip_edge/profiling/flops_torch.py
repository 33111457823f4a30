"""FLOPs and parameters of any open_clip model, traced with torch's FlopCounterMode on 'meta'.

The model is built with ``device='meta'``: shapes only, no memory and no weights, so ViT-H/14
(986M parameters) counts in about a second. Two traps are handled here:

* Under ``no_grad``/``inference_mode`` on a real device, ``nn.MultiheadAttention`` may take a
  fused fast path that FlopCounterMode and fvcore count as zero (ViT-B/16 reads 22.5 instead of
  35 GFLOPs), and scaled-dot-product attention may pick a fused CPU kernel the counter has no
  formula for; which happens depends on the torch version. We switch both off explicitly (MHA
  fast path off, SDPA on its math backend) and trace with grad enabled, and refuse a result
  whose attention count is zero for a model that has attention layers.
* Tables differ on whether attention products count. FlopCounterMode reports per aten op, so
  weight products (mm/addmm/convolution/linear) and activation products (bmm/baddbmm/
  scaled-dot-product attention) are summed separately: ``matmul_only`` and ``with_attention``.

torch and open_clip are imported inside the functions: profiling must load without them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

WEIGHT_OPS = ("mm", "addmm", "convolution", "_convolution", "linear", "conv2d")
ATTENTION_OPS = ("bmm", "baddbmm", "_scaled_dot_product", "scaled_dot_product", "_flash_attention", "_efficient_attention")


class FlopTraceError(RuntimeError):
    """Tracing produced a count that cannot be right (e.g. attention counted as zero)."""


@dataclass(frozen=True)
class TracedTower:
    weight_flops: int
    attention_flops: int
    params: int
    other_ops: dict[str, int]  # ops counted by torch that are in neither list (reported, added to weights)


def _split(counts: dict[Any, int]) -> tuple[int, int, dict[str, int]]:
    weight = attention = 0
    other: dict[str, int] = {}
    for op, n in counts.items():
        parts = str(op).split(".")  # "aten.addmm" or "aten.addmm.default"
        name = parts[1] if parts[0] == "aten" and len(parts) > 1 else parts[0]
        if name.startswith(ATTENTION_OPS):
            attention += n
        elif name in WEIGHT_OPS:
            weight += n
        else:
            other[name] = other.get(name, 0) + n
    return weight, attention, other


def build_meta_model(name: str, **overrides: Any):
    """An open_clip model with the real architecture and no storage (device='meta')."""
    import logging

    import open_clip
    import torch

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip logs a warning that the weights are random: that is the point
    try:
        # torch.device('meta') as a context makes the constructor itself allocate nothing (ViT-H: 0.1 s
        # instead of 10 s and 4 GB); device='meta' stops open_clip moving it back to the CPU.
        with torch.device("meta"):
            model = open_clip.create_model(name, pretrained=None, device="meta", **overrides)
    finally:
        root.setLevel(level)
    return model.eval()


def _count(fn, *inputs) -> dict[Any, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with _attention_counted(), torch.enable_grad(), counter:
        fn(*inputs)
    return counter.get_flop_counts().get("Global", {})


@contextlib.contextmanager
def _attention_counted() -> Iterator[None]:
    """Make attention run as plain matrix products that FlopCounterMode counts, then restore.

    Two fused paths hide attention from the counter, and which one a model takes depends on the
    torch version and device: ``nn.MultiheadAttention``'s fast path, and scaled-dot-product
    attention's CPU flash kernel (torch 2.14.1 on a real CPU model takes the latter even with
    grad enabled; FlopCounterMode has no formula for it). Switching both off explicitly (the MHA
    fast path, and SDPA restricted to its math backend) makes the count the same on every torch
    instead of relying on how one version happens to dispatch.
    """
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mha = torch.backends.mha
    was = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel([SDPBackend.MATH]):
            yield
    finally:
        mha.set_fastpath_enabled(was)


def _has_attention(module) -> bool:
    return any("attn" in type(m).__name__.lower() or "attention" in type(m).__name__.lower() for m in module.modules())


def _checked(where: str, module, counts: dict[Any, int]) -> TracedTower:
    weight, attention, other = _split(counts)
    if attention == 0 and _has_attention(module):
        raise FlopTraceError(
            f"{where}: attention was counted as zero although the model has attention layers; "
            "the fused MultiheadAttention path was taken, so this count would be too low"
        )
    params = sum(p.numel() for p in module.parameters())
    return TracedTower(weight + sum(other.values()), attention, params, other)


def _device(model):
    """Where the model lives: 'meta' when built by build_meta_model; a real model is run for real."""
    return next(model.parameters()).device


def image_size(model) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[1])
    return int(size), int(size)


def trace_vision(model) -> TracedTower:
    """One image through ``encode_image``."""
    import torch

    height, width = image_size(model)
    pixels = torch.zeros(1, 3, height, width, device=_device(model))
    return _checked("vision tower", model.visual, _count(model.encode_image, pixels))


def text_params(model) -> int:
    """Everything that is not the vision tower or the logit scale/bias scalars."""
    total = sum(p.numel() for p in model.parameters())
    vision = sum(p.numel() for p in model.visual.parameters())
    scalars = sum(getattr(model, n).numel() for n in ("logit_scale", "logit_bias") if getattr(model, n, None) is not None)
    return total - vision - scalars


def trace_text(model, length: int | None = None) -> TracedTower | None:
    """One label of ``length`` tokens through the text tower the bundle exports.

    ``length=None`` is the full context through ``encode_text``. A shorter length uses the
    exporter's trimmed TextTower (the same graph the bundle runs); None comes back when this
    model's text tower cannot be trimmed (no causal mask, e.g. Hugging Face encoders).
    """
    import torch

    context = context_length(model)
    params = text_params(model)
    if length is None or length >= context:
        ids = torch.zeros(1, context, dtype=torch.long, device=_device(model))
        traced = _checked("text tower", model, _count(model.encode_text, ids))
    else:
        from bioclip_edge.export.towers import text_tower_for

        tower, trimmable = text_tower_for(model)
        if not trimmable:
            return None
        ids = torch.zeros(1, int(length), dtype=torch.int32, device=_device(model))
        traced = _checked("text tower", tower, _count(tower, ids))
    return TracedTower(traced.weight_flops, traced.attention_flops, params, traced.other_ops)


def context_length(model) -> int:
    """The text context the model was built for (CLIP keeps it on the model, CustomTextCLIP on .text)."""
    return int(getattr(model, "context_length", 0) or getattr(getattr(model, "text", None), "context_length", 77))

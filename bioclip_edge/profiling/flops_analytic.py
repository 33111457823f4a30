"""FLOPs of a plain CLIP ViT from its open_clip config, with pencil-and-paper formulas.

Why a second counter beside the torch one: it needs nothing installed (not even torch), it runs
in microseconds for any image size or text length, and it is the independent reference the tests
hold the torch and ONNX counts to. It covers the shapes BioCLIP uses (open_clip ``VisionTransformer``
+ causal ``TextTransformer``); configs with timm or Hugging Face towers, attentional poolers or
ResNets raise ``NotAnalytic`` and are counted by tracing instead.

Per transformer layer on N tokens of width D with MLP hidden size H (multiply-adds):
    weights: N*(3*D*D)  qkv  +  N*D*D  out-proj  +  2*N*D*H  MLP       = N*(4*D*D + 2*D*H)
    attention: N*N*D  (Q @ K^T)  +  N*N*D  (softmax(.) @ V)             = 2*N*N*D
Vision stem: a stride-p convolution = P*(3*p*p)*D for P patches; N = P + 1 (class token).
Heads: one projection of the pooled token, D*E. FLOPs = 2 x multiply-adds.
LayerNorm, GELU, softmax, adds and the positional embedding are not counted (under 1% here),
as in fvcore, torch's FlopCounterMode and open_clip's published profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


class NotAnalytic(ValueError):
    """This config is not a plain ViT / causal text transformer; count it by tracing."""


class FlopSplit:
    """The two FLOP conventions from one count's weight and attention parts.

    ``matmul_only``: products with weights (what the BioCLIP page's per-image figures count);
    ``with_attention``: plus Q @ K^T and softmax @ V (what torch's FlopCounterMode reports).
    """

    weight_flops: int
    attention_flops: int

    @property
    def with_attention(self) -> int:
        return self.weight_flops + self.attention_flops

    @property
    def matmul_only(self) -> int:
        return self.weight_flops


@dataclass(frozen=True)
class TowerFlops(FlopSplit):
    """FLOPs of one forward pass for one input (one image or one label)."""

    weight_flops: int  # products with weights: linear layers, patch convolution, projections
    attention_flops: int  # activation x activation products: Q @ K^T and softmax @ V
    tokens: int



def transformer_macs(tokens: int, width: int, layers: int, mlp_hidden: int) -> tuple[int, int]:
    """(weight MACs, attention MACs) of ``layers`` pre-norm transformer blocks."""
    weights = tokens * (4 * width * width + 2 * width * mlp_hidden)
    attention = 2 * tokens * tokens * width
    return layers * weights, layers * attention


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def vision_flops(model_cfg: Mapping[str, Any]) -> TowerFlops:
    """One image through open_clip's VisionTransformer (no pooler variants)."""
    v = dict(model_cfg.get("vision_cfg", {}))
    unsupported = [k for k in ("timm_model_name", "attentional_pool") if v.get(k)]
    if unsupported or not isinstance(v.get("layers", 12), int):
        raise NotAnalytic(f"vision tower is not a plain ViT ({unsupported or 'ResNet layers'})")
    width, layers = int(v.get("width", 768)), int(v["layers"] if "layers" in v else 12)
    patch = _size(v.get("patch_size", 16))
    height, wide = _size(v.get("image_size", 224))
    patches = (height // patch[0]) * (wide // patch[1])
    tokens = patches + 1
    mlp_hidden = int(width * float(v.get("mlp_ratio", 4.0)))
    embed_dim = int(model_cfg.get("embed_dim", width))
    stem = patches * 3 * patch[0] * patch[1] * width
    w, a = transformer_macs(tokens, width, layers, mlp_hidden)
    head = width * embed_dim
    return TowerFlops(weight_flops=2 * (stem + w + head), attention_flops=2 * a, tokens=tokens)


def text_flops(model_cfg: Mapping[str, Any], length: int | None = None) -> TowerFlops:
    """One label of ``length`` tokens (default: the full context) through the causal text tower.

    The causal mask does not change the count: the dense Q @ K^T is computed and then masked.
    """
    t = dict(model_cfg.get("text_cfg", {}))
    if t.get("hf_model_name") or t.get("embed_cls") or t.get("proj_type", "linear") not in ("linear", "none"):
        raise NotAnalytic("text tower is not open_clip's plain TextTransformer")
    width, layers = int(t.get("width", 512)), int(t.get("layers", 12))
    tokens = int(length or t.get("context_length", 77))
    mlp_hidden = int(width * float(t.get("mlp_ratio", 4.0)))
    embed_dim = int(model_cfg.get("embed_dim", width))
    w, a = transformer_macs(tokens, width, layers, mlp_hidden)
    head = 0 if t.get("proj_type") == "none" else width * embed_dim
    return TowerFlops(weight_flops=2 * (w + head), attention_flops=2 * a, tokens=tokens)

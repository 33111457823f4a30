"""The two graphs a bundle holds, as torch modules ready for ONNX export.

Both end in L2 normalisation so the runtime only multiplies. The text tower is rebuilt from
open_clip's own pieces with the positional embedding and causal mask sliced to the input's
length: because open_clip pools at the end-of-text token behind a causal mask, running a batch
of short labels on a trimmed context gives the same embedding as the full 77 tokens, several
times faster. Parity tests hold it to open_clip's ``encode_text`` at both lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class VisionTower(nn.Module):
    """float pixels [batch, 3, H, W] -> normalised image embeddings [batch, dim]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(pixels), dim=-1)


class TextTower(nn.Module):
    """int32 token ids [batch, length <= context] -> normalised text embeddings [batch, dim]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        src = getattr(model, "text", model)  # CustomTextCLIP keeps the tower in .text
        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        self.text_projection = src.text_projection
        self.register_buffer("attn_mask", src.attn_mask, persistent=False)
        self.pool_type = getattr(src, "text_pool_type", None) or getattr(src, "pool_type", "argmax")
        self.eos_id = getattr(src, "text_eos_id", None) or getattr(src, "eos_id", None)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        ids = ids.long()
        length = ids.shape[1]
        x = self.token_embedding(ids) + self.positional_embedding[:length]
        mask = self.attn_mask[:length, :length] if self.attn_mask is not None else None
        x = self.transformer(x, attn_mask=mask)
        x = self.ln_final(x)
        x = text_global_pool(x, ids, self.pool_type, eos_token_id=self.eos_id)
        if isinstance(self.text_projection, nn.Linear):
            x = self.text_projection(x)
        elif self.text_projection is not None:
            x = x @ self.text_projection
        return F.normalize(x, dim=-1)


class FullContextTextTower(nn.Module):
    """Fallback for text towers without a causal mask (e.g. Hugging Face encoders): fixed length."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_text(ids.long()), dim=-1)


def text_tower_for(model: nn.Module) -> tuple[nn.Module, bool]:
    """The text tower to export and whether it accepts trimmed (dynamic-length) contexts."""
    src = getattr(model, "text", model)
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    trimmable = all(hasattr(src, n) for n in needed) and getattr(src, "attn_mask", None) is not None
    if trimmable and getattr(src, "cls_emb", None) is None:
        return TextTower(model).eval(), True
    return FullContextTextTower(model).eval(), False


class ExportAttention(nn.Module):
    """``nn.MultiheadAttention``'s math for batch-first self-attention, written for export.

    The dynamo exporter decomposes the fused attention kernel into a graph with eight Transposes
    per layer (a fifth of the int8 image tower's time in onnxruntime). Written out here with one
    head-split permute and one merge, the graph has two, and the same weights are used as they
    are (the module keeps a reference to the original). Parity against open_clip is measured on
    every export, so a mismatch cannot go unnoticed.
    """

    def __init__(self, mha: nn.MultiheadAttention):
        super().__init__()
        self.mha = mha
        self.heads = mha.num_heads
        self.scale = (mha.embed_dim // mha.num_heads) ** -0.5

    def forward(self, q_x, k_x=None, v_x=None, need_weights=False, attn_mask=None, **_):
        batch, length, dim = q_x.shape
        qkv = F.linear(q_x, self.mha.in_proj_weight, self.mha.in_proj_bias)
        qkv = qkv.reshape(batch, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = (q * self.scale) @ k.transpose(-2, -1)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, length, dim)
        return self.mha.out_proj(out), None


def use_export_attention(model: nn.Module) -> int:
    """Swap every batch-first self-attention ``nn.MultiheadAttention`` for ``ExportAttention``.

    Only blocks whose attention is plain self-attention (one packed in-projection, no bias_k/v,
    no dropout in eval) are swapped; returns how many were.
    """
    swapped = 0
    for block in model.modules():
        mha = getattr(block, "attn", None)
        if not isinstance(mha, nn.MultiheadAttention) or not hasattr(block, "attention"):
            continue
        plain = mha.batch_first and mha._qkv_same_embed_dim and mha.bias_k is None and mha.in_proj_weight is not None
        if plain and getattr(block, "ln_1_kv", None) is None:  # not a cross-attention block
            block.attn = ExportAttention(mha)
            swapped += 1
    return swapped


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

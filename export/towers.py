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


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

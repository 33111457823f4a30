"""Label text -> normalised text embeddings with the bundle's text tower, on trimmed contexts.

open_clip pads every label to 77 tokens, but its text tower pools at the end-of-text token
behind a causal mask, so the tokens after a label's end change nothing. Sorting labels by token
length, batching neighbours together and cutting each batch to its longest label gives the same
embeddings (cosine >= 0.99999, see tests/runtime/text/test_encoder.py) several times faster, because
most labels are 5-30 tokens long. Towers without a causal mask (``variant.dynamic_length`` is
False) get the full context, as open_clip gives them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.arrays import normalize_rows
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.inference.plan import SessionOptions
from bioclip_edge.runtime.inference.selection import make_plan
from bioclip_edge.runtime.inference.session import open_session
from bioclip_edge.runtime.text.tokenizer import Tokenizer, pad_ids


class TextEncoderError(UserError, ValueError):
    """The bundle's text tower cannot be run as asked."""


class TextEncoder:
    """Runs one text variant of a bundle. ``encode(texts)`` -> float32 [N, dim], L2-normalised."""

    def __init__(self, bundle, precision: str = "fp32", options: SessionOptions = SessionOptions(), variant_name: str | None = None):
        self.bundle = bundle
        self.plan = make_plan(bundle, "text", precision, options, variant_name)
        self.variant = bundle.variant("text", name=self.plan.variant)
        self.tokenizer = Tokenizer.from_bundle(bundle)
        self.dim = int(bundle.manifest.model.embed_dim)
        self.session = open_session(self.plan, bundle)
        inputs = {i.name: i for i in self.session.get_inputs()}
        if self.variant.input_name not in inputs:
            raise TextEncoderError(
                f"{bundle.path(self.variant.file)}: graph has no input {self.variant.input_name!r} "
                f"(it has {sorted(inputs)}); re-export the bundle"
            )
        self._id_dtype = np.int64 if "int64" in inputs[self.variant.input_name].type else np.int32

    @property
    def context_length(self) -> int:
        return self.tokenizer.context_length

    @property
    def fingerprint(self) -> str:
        """sha256 of the text graph: label matrices remember which tower made them."""
        return self.variant.sha256

    def encode(self, texts: Sequence[str], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Embed label texts; rows follow the input order."""
        if isinstance(texts, str):
            texts = [texts]
        return self.encode_ids(self.tokenizer.encode(list(texts)), batch_size=batch_size, progress=progress)

    def encode_ids(self, id_lists: Sequence[np.ndarray], batch_size: int = 256, progress: bool = False) -> np.ndarray:
        """Embed token-id arrays (sot ... eot, unpadded), shortest-first in length-cut batches."""
        n = len(id_lists)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        if batch_size < 1:
            raise TextEncoderError(f"batch_size must be at least 1, not {batch_size}")
        lengths = np.fromiter((len(x) for x in id_lists), dtype=np.int64, count=n)
        if lengths.max() > self.context_length:
            raise TextEncoderError(f"token ids longer than the context length {self.context_length}; tokenise with Tokenizer.encode")
        order = np.argsort(lengths, kind="stable")
        bar = progress_bar(n, "label", "embedding labels", enabled=bool(progress))
        try:
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                out[rows] = self._run([id_lists[i] for i in rows])
                bar.update(len(rows))
        finally:
            bar.close()
        return out

    def _run(self, batch: list[np.ndarray]) -> np.ndarray:
        length = None if self.variant.dynamic_length else self.context_length
        ids = pad_ids(batch, self.tokenizer.pad_id, length)
        if ids.shape[1] < 2:  # the exported graph's length dimension starts at 2 (sot + eot)
            ids = pad_ids(batch, self.tokenizer.pad_id, 2)
        (emb,) = self.session.run([self.variant.output_name], {self.variant.input_name: ids.astype(self._id_dtype, copy=False)})
        return normalize_rows(np.asarray(emb, dtype=np.float32))


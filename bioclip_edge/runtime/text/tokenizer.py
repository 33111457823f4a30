"""Label text -> token ids, exactly as open_clip makes them, without open_clip or torch.

The BPE itself runs in the ``tokenizers`` library from the bundle's ``tokenizer.json``. What
open_clip does around it is reproduced here by hand because no library does it the same way:
the clean functions (ftfy, HTML unescaped twice, whitespace collapsed, lower case or
canonicalised) and the truncation rule (keep the first ``context_length`` ids and force the
end-of-text id into the last place, so the text tower still pools at an end token).

Ids come back unpadded, one array per text: the text encoder batches labels of equal length
and pads only to each batch's longest, which is where its speed comes from.
"""

from __future__ import annotations

import html
import string
from typing import Callable, Iterable, Sequence

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.manifest import TokenizerSpec

_PUNCTUATION = str.maketrans("", "", string.punctuation)


class TokenizerError(UserError, ValueError):
    """The bundle's tokenizer cannot be used; names the bundle and what to do."""


def basic_clean(text: str) -> str:
    import ftfy

    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    return " ".join(text.split()).strip()


def clean_lower(text: str) -> str:
    return whitespace_clean(basic_clean(text)).lower()


def clean_whitespace(text: str) -> str:
    return whitespace_clean(basic_clean(text))


def clean_canonicalize(text: str) -> str:
    """open_clip's canonicalize_text: underscores to spaces, ASCII punctuation dropped, lower case."""
    text = basic_clean(text).replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split()).strip()


CLEANERS: dict[str, Callable[[str], str]] = {
    "lower": clean_lower,
    "whitespace": clean_whitespace,
    "canonicalize": clean_canonicalize,
}


class Tokenizer:
    """Tokenises label text for one bundle's text tower. Use ``Tokenizer.from_bundle(bundle)``."""

    def __init__(self, spec: TokenizerSpec, tokenizer_json: str, where: str = "bundle"):
        from tokenizers import Tokenizer as HFTokenizer

        if spec.clean not in CLEANERS:
            raise TokenizerError(f"{where}: tokenizer clean function {spec.clean!r} is not one of {sorted(CLEANERS)}; re-export the bundle")
        if spec.context_length < 2:
            raise TokenizerError(f"{where}: tokenizer context_length {spec.context_length} is too small; re-export the bundle")
        self.spec = spec
        self.where = where
        self._clean = CLEANERS[spec.clean]
        try:
            self._tok = HFTokenizer.from_file(tokenizer_json)
        except Exception as exc:  # noqa: BLE001 - tokenizers raises plain Exception on bad JSON
            raise TokenizerError(f"{tokenizer_json}: cannot load tokenizer ({exc}); re-export the bundle") from None
        self._tok.no_padding()
        if spec.kind == "hf":  # the tokenizer's own post-processor adds its special tokens
            self._tok.enable_truncation(max_length=spec.context_length)
        else:
            self._tok.no_truncation()

    @classmethod
    def from_bundle(cls, bundle) -> "Tokenizer":
        spec: TokenizerSpec = bundle.manifest.tokenizer
        where = str(bundle.root)
        if not spec.available:
            raise TokenizerError(
                f"{where}: this bundle has no usable tokenizer ({spec.note or 'not exported'}); "
                "label text cannot be embedded with it: re-export the bundle where the tokenizer can be downloaded"
            )
        if spec.kind not in ("clip_bpe", "hf"):
            raise TokenizerError(f"{where}: tokenizer kind {spec.kind!r} is not supported by this bioclip-edge")
        rel = spec.files.get("tokenizer_json")
        if not rel:
            raise TokenizerError(f"{where}: the manifest names no tokenizer.json for the {spec.kind} tokenizer; re-export the bundle")
        path = bundle.path(rel)
        if not path.is_file():
            raise TokenizerError(f"{path}: tokenizer file is missing from bundle {where}; re-copy or re-export the bundle")
        return cls(spec, str(path), where=where)

    @property
    def context_length(self) -> int:
        return self.spec.context_length

    @property
    def pad_id(self) -> int:
        return self.spec.pad_id

    def clean(self, text: str) -> str:
        return self._clean(text)

    def encode(self, texts: str | Sequence[str]) -> list[np.ndarray]:
        """Token ids per text (int32, with start/end tokens, truncated as open_clip does)."""
        if isinstance(texts, str):
            texts = [texts]
        cleaned = [self._clean(_as_text(t, i)) for i, t in enumerate(texts)]
        if self.spec.kind == "hf":
            encs = self._tok.encode_batch(cleaned, add_special_tokens=True)
            return [np.asarray(e.ids, dtype=np.int32) for e in encs]
        encs = self._tok.encode_batch(cleaned, add_special_tokens=False)
        return [self._wrap(e.ids) for e in encs]

    def _wrap(self, ids: list[int]) -> np.ndarray:
        n = self.spec.context_length
        out = np.empty(min(len(ids) + 2, n), dtype=np.int32)
        out[0] = self.spec.sot_id if self.spec.sot_id is not None else ids[0]
        body = ids[: len(out) - 2]
        out[1 : 1 + len(body)] = body
        out[-1] = self.spec.eot_id  # open_clip truncates then forces eot into the last slot
        return out

    def pad(self, id_lists: Iterable[np.ndarray], length: int | None = None) -> np.ndarray:
        """Stack id arrays into [N, length] int32, padding with pad_id (to the longest by default)."""
        return pad_ids(id_lists, self.spec.pad_id, length)

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> np.ndarray:
        """open_clip-style call: [N, context_length] padded ids."""
        return self.pad(self.encode(texts), context_length or self.spec.context_length)


def pad_ids(id_lists: Iterable[np.ndarray], pad_id: int, length: int | None = None) -> np.ndarray:
    lists = [np.asarray(ids, dtype=np.int32) for ids in id_lists]
    longest = max((len(x) for x in lists), default=0)
    length = longest if length is None else int(length)
    if longest > length:
        raise ValueError(f"cannot pad token ids of length {longest} to {length}")
    out = np.full((len(lists), length), pad_id, dtype=np.int32)
    for row, ids in zip(out, lists):
        row[: len(ids)] = ids
    return out


def _as_text(value, index: int) -> str:
    if not isinstance(value, str):
        raise TokenizerError(f"label #{index} is {type(value).__name__}, not text: {value!r}")
    return value

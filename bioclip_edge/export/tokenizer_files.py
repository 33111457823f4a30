"""Write the tokenizer a bundle needs, so the runtime tokenises without open_clip.

open_clip's ``SimpleTokenizer`` is CLIP's byte-level BPE written in Python. The same vocabulary
and merges fit a Hugging Face ``tokenizers`` BPE model (byte-level alphabet, ``</w>`` word
suffix, CLIP's splitting regex), which the runtime loads from ``tokenizer.json``. Text cleaning
(ftfy, HTML unescape, whitespace, lower case) stays in Python on the runtime side, exactly as
open_clip does it, so the JSON holds no normaliser. ``tests/runtime/text/test_tokenizer.py`` holds the ids
equal to open_clip's on hundreds of real labels.

For Hugging Face tokenizers (MetaCLIP 2 uses facebook/xlm-v-base) the tokenizer's own files are
saved. When the exporter could not obtain a tokenizer (no hub access), the spec says so and the
bundle still embeds images.
"""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path
from typing import Any

from bioclip_edge.runtime.inference.manifest import TokenizerSpec

log = logging.getLogger(__name__)

SOT_TOKEN = "<start_of_text>"
EOT_TOKEN = "<end_of_text>"
# open_clip's SimpleTokenizer pattern minus the special tokens (those become added tokens) and
# with the contractions case-insensitive, as open_clip compiles the whole pattern IGNORECASE.
CLIP_SPLIT_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
N_MERGES = 49152 - 256 - 2  # open_clip reads merges[1 : 49152-256-2+1]
CLEAN_NAMES = {"_clean_lower": "lower", "_clean_whitespace": "whitespace", "_clean_canonicalize": "canonicalize"}


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable character table (same order as open_clip)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def clip_vocab_and_merges(bpe_path: Path, extra_special: list[str] | None = None) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges in exactly the order open_clip's SimpleTokenizer builds them."""
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    vocab += ["".join(m) for m in merges]
    vocab += [SOT_TOKEN, EOT_TOKEN] + list(extra_special or [])
    return dict(zip(vocab, range(len(vocab)))), merges  # type: ignore[return-value]


def build_clip_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], special: list[str]):
    """A ``tokenizers.Tokenizer`` equal to open_clip's SimpleTokenizer after text cleaning."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

    model = models.BPE(vocab=vocab, merges=merges, end_of_word_suffix="</w>", continuing_subword_prefix="", fuse_unk=False)
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.Sequence([decoders.ByteLevel(), decoders.Replace("</w>", " "), decoders.Strip(" ", 0, 1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in special])
    sot, eot = vocab[SOT_TOKEN], vocab[EOT_TOKEN]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{SOT_TOKEN} $A {EOT_TOKEN}", special_tokens=[(SOT_TOKEN, sot), (EOT_TOKEN, eot)]
    )
    return tok


def _default_bpe_path() -> Path:
    from open_clip.tokenizer import default_bpe

    return Path(default_bpe())


def _clean_name(tokenizer: Any, text_cfg: dict[str, Any], default: str) -> str:
    fn = getattr(tokenizer, "clean_fn", None)
    name = CLEAN_NAMES.get(getattr(fn, "__name__", ""), None)
    return name or text_cfg.get("tokenizer_kwargs", {}).get("clean", default)


def _pool(text_cfg: dict[str, Any]) -> str:
    if text_cfg.get("pool_type"):
        return str(text_cfg["pool_type"])
    if text_cfg.get("hf_model_name"):
        return f"hf:{text_cfg.get('hf_pooler_type', 'mean_pooler')}"
    return "argmax"


def write_tokenizer_files(tokenizer: Any, model_cfg: dict, out_dir: Path, rel_dir: str = "tokenizer") -> TokenizerSpec:
    """Write the tokenizer into ``out_dir/rel_dir`` and describe it for the manifest."""
    text_cfg = dict(model_cfg.get("text_cfg", {}) or {})
    context_length = int(getattr(tokenizer, "context_length", None) or text_cfg.get("context_length", 77))
    hf_name = text_cfg.get("hf_tokenizer_name") or None
    pool = _pool(text_cfg)
    if tokenizer is None:
        return TokenizerSpec(
            kind="hf" if hf_name else "clip_bpe", context_length=context_length,
            eot_id=int(text_cfg.get("eos_id", 49407 if not hf_name else 2)), pad_id=0 if not hf_name else 1,
            sot_id=None if hf_name else 49406, pool=pool, clean=_clean_name(None, text_cfg, "whitespace" if hf_name else "lower"),
            hf_name=hf_name, available=False,
            note=f"tokenizer {hf_name or 'clip_bpe'} could not be obtained at export time; "
                 "this bundle embeds images, and text only from token ids",
        )
    folder = Path(out_dir) / rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(tokenizer, "bpe_ranks") and hasattr(tokenizer, "encoder"):
        return _write_clip_bpe(tokenizer, text_cfg, folder, rel_dir, context_length, pool)
    return _write_hf(tokenizer, text_cfg, folder, rel_dir, context_length, pool, hf_name)


def _write_clip_bpe(tokenizer: Any, text_cfg: dict, folder: Path, rel_dir: str, context_length: int, pool: str) -> TokenizerSpec:
    specials = [t for t, _ in sorted(((t, i) for t, i in tokenizer.encoder.items() if i >= tokenizer.sot_token_id), key=lambda x: x[1])]
    extra = [t for t in specials if t not in (SOT_TOKEN, EOT_TOKEN)]
    bpe_path = _default_bpe_path()
    vocab, merges = clip_vocab_and_merges(bpe_path, extra)
    notes = []
    if vocab != tokenizer.encoder:  # a custom bpe file: take the tokenizer's own tables
        vocab = dict(tokenizer.encoder)
        merges = [m for m, _ in sorted(tokenizer.bpe_ranks.items(), key=lambda kv: kv[1])]
        notes.append("vocabulary taken from the tokenizer object (it differs from open_clip's default bpe file)")
    if getattr(tokenizer, "reduction_fn", None) is not None:
        notes.append("open_clip uses a random token-reduction mask for long texts; the runtime truncates instead")
    tok = build_clip_tokenizer(vocab, merges, [SOT_TOKEN, EOT_TOKEN] + extra)
    tok.save(str(folder / "tokenizer.json"))
    shutil.copyfile(bpe_path, folder / bpe_path.name)
    return TokenizerSpec(
        kind="clip_bpe", context_length=context_length, eot_id=int(tokenizer.eot_token_id), pad_id=0,
        sot_id=int(tokenizer.sot_token_id), pool=pool, clean=_clean_name(tokenizer, text_cfg, "lower"),
        files={"tokenizer_json": f"{rel_dir}/tokenizer.json", "bpe_vocab": f"{rel_dir}/{bpe_path.name}"},
        hf_name=None, available=True, note="; ".join(notes),
    )


def _write_hf(tokenizer: Any, text_cfg: dict, folder: Path, rel_dir: str, context_length: int, pool: str, hf_name: str | None) -> TokenizerSpec:
    inner = getattr(tokenizer, "tokenizer", tokenizer)
    notes = []
    available = True
    try:
        inner.save_pretrained(str(folder))
    except Exception as exc:  # noqa: BLE001 - a tokenizer we cannot save is reported, not fatal
        log.warning("could not save tokenizer %s: %s", hf_name, exc)
        available, notes = False, [f"saving the tokenizer failed: {exc}"]
    if available and not (folder / "tokenizer.json").is_file():
        available = False
        notes.append("no fast tokenizer.json could be written (slow tokenizer only); the runtime needs tokenizer.json")
    if getattr(tokenizer, "tokenizer_mode", "") or getattr(tokenizer, "strip_sep_token", False):
        available = False
        notes.append("open_clip tokenizer_mode/strip_sep_token post-processing is not reproduced by the runtime")
    files = {"tokenizer_json": f"{rel_dir}/tokenizer.json"} if available else {}
    pad = getattr(inner, "pad_token_id", None)
    eot = text_cfg.get("eos_id", getattr(inner, "eos_token_id", None))
    sot = getattr(inner, "bos_token_id", None)
    return TokenizerSpec(
        kind="hf", context_length=context_length, eot_id=int(eot if eot is not None else 2),
        pad_id=int(pad if pad is not None else 0), sot_id=None if sot is None else int(sot), pool=pool,
        clean=_clean_name(tokenizer, text_cfg, "whitespace"), files=files,
        hf_name=hf_name or getattr(inner, "name_or_path", None), available=available, note="; ".join(notes),
    )

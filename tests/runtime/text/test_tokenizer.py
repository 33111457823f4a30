"""The runtime tokenizer gives open_clip's ids without open_clip."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bioclip_edge.errors import UserError
from bioclip_edge.export.tokenizer_files import write_tokenizer_files
from bioclip_edge.runtime.text.tokenizer import Tokenizer, TokenizerError
from tests.helpers.labels import real_labels


def _runtime_tokenizer(open_clip_tok, folder: Path, cfg: dict | None = None) -> Tokenizer:
    spec = write_tokenizer_files(open_clip_tok, cfg or {"text_cfg": {"context_length": 77}}, folder)
    return Tokenizer(spec, str(folder / spec.files["tokenizer_json"]))


@pytest.fixture(scope="module")
def clip_pair(tmp_path_factory):
    import open_clip

    oc = open_clip.get_tokenizer("ViT-B-16")
    return oc, _runtime_tokenizer(oc, tmp_path_factory.mktemp("tok"), open_clip.get_model_config("ViT-B-16"))


def test_label_file_covers_the_hard_cases():
    labels = real_labels()
    assert len(labels) >= 500
    text = "\n".join(labels)
    for needle in ("é", "’", "“", "&amp;", "&#39;", "(", "-", "狮子", "Бурый", "🦁", "\u0301", "\u200b"):
        assert needle in text, needle


def test_ids_equal_open_clip_on_real_labels(clip_pair):
    oc, tok = clip_pair
    labels = real_labels()
    ref = oc(labels).numpy()
    got = tok(labels)
    assert got.dtype == np.int32 and got.shape == ref.shape == (len(labels), 77)
    mismatched = [labels[i] for i in np.flatnonzero((ref != got).any(axis=1))]
    assert mismatched == []
    lengths = [len(x) for x in tok.encode(labels)]
    assert max(lengths) == 77 and sum(n == 77 for n in lengths) >= 4  # truncation exercised


def test_unpadded_encode_and_truncation(clip_pair):
    oc, tok = clip_pair
    empty, lion, long = tok.encode(["", "lion", "lion " * 200])
    assert empty.tolist() == [49406, 49407]
    assert lion[0] == 49406 and lion[-1] == 49407 and len(lion) == len(oc.encode("lion")) + 2
    assert len(long) == 77 and long[-1] == 49407 and long[-2] != 49407  # eot forced into the last slot


@pytest.mark.parametrize("clean", ["whitespace", "canonicalize"])
def test_other_clean_functions_match(tmp_path, clean):
    from open_clip.tokenizer import SimpleTokenizer

    oc = SimpleTokenizer(clean=clean)
    tok = _runtime_tokenizer(oc, tmp_path)
    assert tok.spec.clean == clean
    labels = real_labels()
    np.testing.assert_array_equal(tok(labels), oc(labels).numpy())


def test_pad(clip_pair):
    _, tok = clip_pair
    ids = tok.encode(["a", "Panthera leo", ""])
    padded = tok.pad(ids)
    assert padded.shape == (3, max(len(i) for i in ids)) and padded.dtype == np.int32
    assert (padded[2, 2:] == tok.pad_id).all()
    assert tok.pad(ids, length=10).shape == (3, 10)
    with pytest.raises(ValueError):
        tok.pad(ids, length=2)


def test_spec_fields(clip_pair):
    _, tok = clip_pair
    spec = tok.spec
    assert (spec.kind, spec.sot_id, spec.eot_id, spec.pad_id, spec.pool, spec.clean) == ("clip_bpe", 49406, 49407, 0, "argmax", "lower")
    assert set(spec.files) == {"tokenizer_json", "bpe_vocab"} and spec.available


def test_missing_tokenizer_is_a_user_error(tmp_path):
    spec = write_tokenizer_files(None, {"text_cfg": {"hf_tokenizer_name": "facebook/xlm-v-base", "eos_id": 2}}, tmp_path)
    assert not spec.available and spec.kind == "hf" and "could not be obtained" in spec.note
    bundle = SimpleNamespace(root=tmp_path / "mybundle", manifest=SimpleNamespace(tokenizer=spec))
    with pytest.raises(TokenizerError, match="mybundle") as err:
        Tokenizer.from_bundle(bundle)
    assert isinstance(err.value, UserError)


def test_non_text_label_is_a_user_error(clip_pair):
    _, tok = clip_pair
    with pytest.raises(TokenizerError, match="#1"):
        tok.encode(["lion", None])


def test_bundle_tokenizer(tiny_bundle):
    import open_clip

    from bioclip_edge.runtime.inference.bundle import Bundle

    tok = Tokenizer.from_bundle(Bundle.open(tiny_bundle))
    labels = real_labels()[:120]
    np.testing.assert_array_equal(tok(labels), open_clip.get_tokenizer("ViT-B-16")(labels).numpy())


def test_hf_tokenizer_round_trip(tmp_path):
    """An open_clip HFTokenizer (as MetaCLIP 2 uses) saved and re-run without transformers."""
    from open_clip.tokenizer import HFTokenizer
    from tokenizers import Tokenizer as RawTokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = RawTokenizer(models.WordPiece(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(real_labels(), trainers.WordPieceTrainer(vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    raw.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(tmp_path / "hf")
    oc = HFTokenizer(str(tmp_path / "hf"), context_length=16, clean="whitespace")
    cfg = {"text_cfg": {"hf_tokenizer_name": "local/test", "pool_type": "eos", "eos_id": 2, "context_length": 16}}
    spec = write_tokenizer_files(oc, cfg, tmp_path / "bundle")
    assert (spec.kind, spec.pad_id, spec.eot_id, spec.pool, spec.clean, spec.available) == ("hf", 1, 2, "eos", "whitespace", True)
    tok = Tokenizer(spec, str(tmp_path / "bundle" / spec.files["tokenizer_json"]))
    labels = real_labels()[:200]
    np.testing.assert_array_equal(tok(labels), oc(labels).numpy())

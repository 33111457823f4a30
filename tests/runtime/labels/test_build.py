"""Building label matrices: sources, recipes (TreeOfLife under 80 templates), resume, inline cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclip_edge.runtime.labels import build as label_build
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.labels.build import LabelSourceError, build_label_matrix, read_label_source
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.text.recipes import OPENAI_IMAGENET_TEMPLATES, RecipeError, get_recipe
from tests.helpers.labels import SPECIES_CSV


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return Bundle.open(tiny_bundle)


@pytest.fixture(scope="module")
def torch_model(tiny_model_dir):
    from bioclip_edge.export.sources import ModelRequest, load_model

    return load_model(ModelRequest(f"local-dir:{tiny_model_dir}"))


def test_templates_are_openai_s_80():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES as REF

    assert len(OPENAI_IMAGENET_TEMPLATES) == 80
    assert list(OPENAI_IMAGENET_TEMPLATES) == [t("{}") for t in REF]
    with pytest.raises(RecipeError, match="plain"):
        get_recipe("fancy")


def test_read_taxonomy_csv(tmp_path):
    src = tmp_path / "species.csv"
    src.write_text(SPECIES_CSV, encoding="utf-8")
    table = read_label_source(src)
    assert table.names == ["Panthera leo", "Panthera pardus", "Crocuta crocuta", "Corvus corax", "Struthio camelus"]
    assert table.columns["common_name"][0] == "lion" and table.has_taxonomy
    tol = table.texts(get_recipe("tol"))
    assert tol[0] == "Animalia Chordata Mammalia Carnivora Felidae Panthera leo lion"
    assert tol[1] == "Animalia Chordata Mammalia Carnivora Felidae Panthera pardus leopard"
    assert table.texts(get_recipe("plain"))[2] == "Crocuta crocuta"


def test_read_plain_list_and_bad_sources(tmp_path):
    txt = tmp_path / "list.txt"
    txt.write_text("lion\n\n  leopard  \nspotted hyena\n", encoding="utf-8")
    assert read_label_source(txt).names == ["lion", "leopard", "spotted hyena"]
    named = tmp_path / "named.csv"
    named.write_text("label,notes\nlion,big\nleopard,spots\n", encoding="utf-8")
    assert read_label_source(named).names == ["lion", "leopard"]
    for name, text, message in [("empty.txt", "\n\n", "no labels"), ("cols.csv", "a,b\n1,2\n", "no label columns"),
                                ("ragged.csv", "name\nlion,extra\n", "row 2")]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(LabelSourceError, match=message):
            read_label_source(tmp_path / name)
    with pytest.raises(LabelSourceError, match="no such"):
        read_label_source(tmp_path / "nope.csv")


def test_tol_recipe_equals_open_clip_reference(tmp_path, bundle, torch_model):
    """The TreeOfLife recipe as Imageomics' make_txt_embedding.py computes it, with open_clip at 77 tokens."""
    import torch

    src = tmp_path / "species.csv"
    src.write_text(SPECIES_CSV, encoding="utf-8")
    out = build_label_matrix(bundle, read_label_source(src), tmp_path / "tol.npz", recipe="tol", dtype="fp32", progress=False)
    m = LabelMatrix.load(out)
    names = [[["Animalia", "Chordata", "Mammalia", "Carnivora", "Felidae", "Panthera", "leo"], "lion"],
             [["Animalia", "Chordata", "Mammalia", "Carnivora", "Felidae", "Panthera", "pardus"], "leopard"],
             [["Animalia", "Chordata", "Mammalia", "Carnivora", "Hyaenidae", "Crocuta", "crocuta"], "spotted hyena"],
             [["Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax"], "common raven"],
             [["Animalia", "Chordata", "Aves", "Struthioniformes", "Struthionidae", "Struthio", "camelus"], ""]]
    texts = [" ".join(n[0]) + " " + n[1] for n in names]
    with torch.no_grad():
        ids = torch_model.tokenizer([t.format(x) for x in texts for t in OPENAI_IMAGENET_TEMPLATES])
        feats = torch.nn.functional.normalize(torch_model.model.encode_text(ids), dim=-1).reshape(len(texts), 80, -1)
        ref = torch.nn.functional.normalize(feats.mean(dim=1), dim=-1).numpy()
    got = np.concatenate(list(m.iter_float_rows()))
    assert (got * ref).sum(axis=1).min() >= 0.99999
    assert m.recipe == "tol" and m.has_taxonomy and m.meta["source"]["file"] == ""


def test_build_resumes_after_a_crash(tmp_path, bundle, monkeypatch):
    names = [f"species number {i}" for i in range(40)]
    table = label_build.LabelTable(names, {})
    out = tmp_path / "big.npz"
    calls = []
    real = label_build.embed_texts

    def crash_on_third(encoder, chunk, recipe, batch_size=256, progress=False):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(encoder, chunk, recipe, batch_size=batch_size)

    monkeypatch.setattr(label_build, "embed_texts", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_label_matrix(bundle, table, out, chunk_texts=10, progress=False, dtype="fp32")
    parts = out.with_name("big.npz.parts")
    assert not out.exists() and len(list(parts.glob("chunk_*.npy"))) == 2
    calls.clear()
    monkeypatch.setattr(label_build, "embed_texts", lambda e, c, r, batch_size=256, progress=False: calls.append(len(c)) or real(e, c, r))
    build_label_matrix(bundle, table, out, chunk_texts=10, progress=False, dtype="fp32")
    assert calls == [10, 10] and not parts.exists()
    whole = LabelMatrix.from_texts(bundle, names)
    np.testing.assert_allclose(np.asarray(LabelMatrix.load(out).matrix), whole.matrix, atol=1e-6)


def test_stale_parts_are_discarded(tmp_path, bundle):
    out = tmp_path / "x.npz"
    parts = out.with_name("x.npz.parts")
    parts.mkdir()
    (parts / "state.json").write_text(json.dumps({"key": "other build"}))
    np.save(parts / "chunk_000000.npy", np.zeros((2, 32), np.float32))
    build_label_matrix(bundle, label_build.LabelTable(["lion", "leopard"], {}), out, progress=False)
    m = LabelMatrix.load(out)
    assert np.abs(np.asarray(m.matrix, np.float32)).sum() > 0 and m.dtype == "fp16"


def test_from_texts_caches_by_content(tmp_path, bundle, monkeypatch):
    from bioclip_edge.runtime.text import recipes

    a = LabelMatrix.from_texts(bundle, ["lion", "leopard"], recipe="photo", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("labels-*.npz"))) == 1 and a.recipe == "photo"
    monkeypatch.setattr(recipes, "embed_texts", lambda *a, **k: pytest.fail("cache miss"))
    b = LabelMatrix.from_texts(bundle, ["lion", "leopard"], recipe="photo", cache_dir=tmp_path)
    np.testing.assert_array_equal(a.matrix, np.asarray(b.matrix))
    monkeypatch.undo()
    c = LabelMatrix.from_texts(bundle, ["lion", "leopard"], recipe="plain", cache_dir=tmp_path)
    assert len(list(tmp_path.glob("labels-*.npz"))) == 2 and not np.allclose(a.matrix, c.matrix)
    idx, probs = c.topk(c.matrix, k=2)
    assert idx[:, 0].tolist() == [0, 1] and c.names == ["lion", "leopard"]
    c.check_bundle(bundle)

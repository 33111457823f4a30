"""Importing official TreeOfLife matrices ([dim, N] .npy + names .json, zero tail included)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.labels.importer import LabelImportError, import_tol
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from tests.helpers.labels import write_official


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return Bundle.open(tiny_bundle)


def test_import_official_layout_drops_zero_tail(tmp_path, bundle, caplog):
    npy, names, emb = write_official(tmp_path, 32, 1000, zero_tail=37)
    with caplog.at_level(logging.WARNING):
        out, dropped = import_tol(bundle, npy, names, tmp_path / "tol.npz", dtype="fp16", block=128)
    assert dropped == 37 and "dropping 37 all-zero" in caplog.text
    m = LabelMatrix.load(out)
    assert (m.n, m.dim, m.dtype, m.recipe) == (963, 32, "fp16", "tol")
    np.testing.assert_allclose(np.asarray(m.matrix, np.float32), emb[:, :963].T, atol=1e-3)
    assert m.label(0) == {"name": "Panthera leo", "kingdom": "Animalia", "phylum": "Chordata", "class": "Mammalia",
                          "order": "Carnivora", "family": "Felidae", "genus": "Panthera", "species": "Panthera leo",
                          "common_name": "lion"}
    assert m.label(3)["common_name"] == "" and m.names[3] == "Quercus robur"
    assert m.meta["source"]["dropped_zero_columns"] == 37 and m.meta["source"]["labels_in_file"] == 1000
    m.check_bundle(bundle)
    genus = m.rollup(emb[:, :2].T, "genus", k=1)
    assert genus[0][0][0][-1] in {"Panthera", "Corvus", "Quercus", "Danaus"}


def test_import_checks_dim_and_counts(tmp_path, bundle):
    npy, names, _ = write_official(tmp_path, 48, 20, zero_tail=0)
    with pytest.raises(LabelImportError, match="embeds in 32"):
        import_tol(bundle, npy, names, tmp_path / "x.npz")
    npy, names, _ = write_official(tmp_path, 32, 20, zero_tail=0)
    (tmp_path / "short.json").write_text(json.dumps(json.loads(names.read_text())[:15]))
    with pytest.raises(LabelImportError, match="do not belong together"):
        import_tol(bundle, npy, tmp_path / "short.json", tmp_path / "x.npz")
    (tmp_path / "bad.json").write_text(json.dumps([["Animalia", "lion"]] * 20))
    with pytest.raises(LabelImportError, match="entry 0"):
        import_tol(bundle, npy, tmp_path / "bad.json", tmp_path / "x.npz")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(LabelImportError, match="junk.npy"):
        import_tol(bundle, tmp_path / "junk.npy", names, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()


def test_import_row_major_copy(tmp_path, bundle, caplog):
    npy, names, emb = write_official(tmp_path, 32, 50, zero_tail=0)
    np.save(tmp_path / "rows.npy", np.ascontiguousarray(emb.T))
    with caplog.at_level(logging.WARNING):
        out, dropped = import_tol(bundle, tmp_path / "rows.npy", names, tmp_path / "rows.npz", dtype="fp32")
    assert dropped == 0 and "[N, dim]" in caplog.text
    np.testing.assert_allclose(np.asarray(LabelMatrix.load(out).matrix), emb.T, atol=1e-6)

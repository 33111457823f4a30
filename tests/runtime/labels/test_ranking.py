"""The int8 ranking copy (``labels.ranking``): the OpenVINO engine ranks on it, and the top-k stays
exactly numpy's fp32 top-k because candidates are rescored from the stored rows; the copy is made
once per matrix file in the user cache and replaced when the file changes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.runtime.labels import ranking, scoring, openvino_scoring
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from tests.helpers.labels import model_info, unit

DIM = 48
INFO = model_info(DIM)
CAPS = openvino_scoring.openvino_capabilities()
needs_openvino = pytest.mark.skipif(not CAPS, reason="OpenVINO is not installed")
PRECISIONS = [p for p in ("bf16", "f16") if openvino_scoring._CAPABILITY[p] in CAPS]


@pytest.fixture(scope="module")
def clusters():
    """Near-duplicate taxa: 400 clusters of 25 labels, so many logits sit within int8 and bf16 rounding."""
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((400, DIM)))
    labels = unit(np.repeat(centres, 25, axis=0) + 0.01 * rng.standard_normal((10_000, DIM)))
    images = unit(centres[rng.integers(0, 400, 32)] + 0.3 * unit(rng.standard_normal((32, DIM))))
    return labels, images


@pytest.fixture
def big_enough(monkeypatch):
    monkeypatch.setattr(ranking, "MIN_STORED_BYTES", 0)


def saved(labels: np.ndarray, path, dtype: str = "fp16") -> LabelMatrix:
    info = {**INFO, "embed_dim": labels.shape[1]}
    m = LabelMatrix.from_embeddings(labels, [f"l{i}" for i in range(len(labels))], info, "plain", dtype=dtype)
    return LabelMatrix.load(m.save(path))


def test_quantize_rounds_within_half_a_step():
    rows = unit(np.random.default_rng(0).standard_normal((100, DIM)))
    rows[3] = 0.0  # an all-zero row keeps scale 1
    q, scale = ranking.quantize(rows.astype(np.float16))
    assert q.dtype == np.int8 and np.abs(q).max() == 127 and scale[3] == 1.0
    err = np.abs(q * scale[:, None] - rows.astype(np.float16).astype(np.float32))
    assert (err <= scale[:, None] / 2 + 1e-7).all()


@needs_openvino
@pytest.mark.parametrize("precision", PRECISIONS)
def test_ranking_on_the_int8_copy_keeps_numpys_top_k(clusters, tmp_path, big_enough, precision):
    labels, images = clusters
    m = saved(labels, tmp_path / "l.npz")
    m._scorer = openvino_scoring.ScorerChoice("openvino", precision, "test")
    rows, scales = m.ranking_rows
    assert rows.dtype == np.int8 and isinstance(rows, np.memmap) and rows.shape == m.matrix.shape
    ref_i, ref_p, ref_l = scoring.topk(m.matrix, None, images, 5, m.score_spec, scorer="numpy")
    idx, probs = m.topk(images, 5)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(probs, ref_p, rtol=1e-3, atol=1e-9)
    # the same through the engine with short blocks and a dynamic tail, logits rescored exactly
    choice = m.scorer
    idx, probs, logits = scoring.topk(m.matrix, None, images, 5, m.score_spec, 1024, choice, (rows, scales))
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(logits, ref_l, rtol=0, atol=1e-4)


@needs_openvino
def test_the_copy_is_made_once_and_replaced_when_the_file_changes(clusters, tmp_path, big_enough, monkeypatch):
    labels, _ = clusters
    monkeypatch.setenv("BIOCLIP_EDGE_CACHE_DIR", str(tmp_path / "cache"))  # this test's copies alone
    path = tmp_path / "l.npz"
    choice = openvino_scoring.ScorerChoice("openvino", "bf16", "test")
    m = saved(labels, path)
    first = ranking.ranking_for(choice, m.matrix, m.scales, m.path)
    folder = Path(first[0].filename).parent
    assert len(list(folder.glob("*.rows.npy"))) == 1

    def no_build(*_):
        raise AssertionError("the copy was built again")

    with monkeypatch.context() as mp:
        mp.setattr(ranking, "_build", no_build)
        again = ranking.ranking_for(choice, LabelMatrix.load(path).matrix, None, path)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])
    path.unlink()
    m2 = saved(labels[::-1].copy(), path)  # rewritten: another identity, the old copy is dropped
    second = ranking.ranking_for(choice, m2.matrix, m2.scales, m2.path)
    assert second is not None and len(list(folder.glob("*.rows.npy"))) == 1
    np.testing.assert_array_equal(second[0][0], ranking.quantize(m2.matrix[:1])[0][0])
    ranking.forget(path)
    assert not list(folder.glob("*.rows.npy"))


def test_stored_rows_are_ranked_when_a_copy_would_not_help(clusters, tmp_path, big_enough, monkeypatch):
    labels, _ = clusters
    fast = openvino_scoring.ScorerChoice("openvino", "bf16", "test")
    m = saved(labels, tmp_path / "l.npz")
    assert ranking.ranking_for(openvino_scoring.ScorerChoice("openvino", "f32", "t"), m.matrix, None, m.path) is None
    assert ranking.ranking_for(openvino_scoring.ScorerChoice("numpy", "f32", "t"), m.matrix, None, m.path) is None
    assert ranking.ranking_for(fast, m.matrix, None, None) is None  # not from a file
    i8 = saved(labels, tmp_path / "i8.npz", dtype="int8")
    assert ranking.ranking_for(fast, i8.matrix, i8.scales, i8.path) is None  # already int8
    monkeypatch.setenv("BIOCLIP_EDGE_CACHE_DIR", "off")
    assert ranking.ranking_for(fast, m.matrix, None, m.path) is None
    monkeypatch.undo()
    monkeypatch.setattr(ranking, "MIN_STORED_BYTES", m.matrix.nbytes + 1)
    assert ranking.ranking_for(fast, m.matrix, None, m.path) is None  # small: a pass stays in cache


@needs_openvino
def test_int8_ranking_at_768_dims_keeps_numpys_top_10(tmp_path, big_enough):
    """BioCLIP's width, 100-label clusters, image-like queries (cosine ~0.3 to one cluster)."""
    rng = np.random.default_rng(7)
    centres = unit(rng.standard_normal((200, 768)))
    labels = unit(np.repeat(centres, 100, axis=0) + 0.003 * rng.standard_normal((20_000, 768)))
    images = unit(0.3 * centres[rng.integers(0, 200, 24)] + 0.95 * unit(rng.standard_normal((24, 768))))
    m = saved(labels, tmp_path / "l.npz")
    m._scorer = openvino_scoring.ScorerChoice("openvino", "bf16", "test")
    assert m.ranking_rows is not None
    ref_i, ref_p, _ = scoring.topk(m.matrix, None, images, 10, m.score_spec, scorer="numpy")
    idx, probs = m.topk(images, 10)
    np.testing.assert_array_equal(idx, ref_i)
    # The top-10 are rescored exactly; the softmax normaliser keeps the int8 terms of the labels
    # past the 74 candidates, and here a query's int8 rounding shifts a whole 100-label cluster
    # alike (~0.03 logit), so probabilities move by up to ~1% in this flat worst case.
    np.testing.assert_allclose(probs, ref_p, rtol=2e-2, atol=1e-9)

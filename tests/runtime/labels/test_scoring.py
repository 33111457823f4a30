"""Block-wise top-k, exact softmax over all labels, roll-ups and subsets."""

from __future__ import annotations

import numpy as np
import pytest

from bioclip_edge.runtime.labels import scoring
from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError
from bioclip_edge.runtime.labels.taxonomy import RANKS, TaxonomyError
from tests.helpers.labels import model_info, synthetic_taxonomy, unit

DIM = 32
INFO = model_info(DIM)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    labels = unit(rng.standard_normal((20_000, DIM)))
    targets = rng.integers(0, len(labels), 64)
    images = unit(labels[targets] + 0.35 * unit(rng.standard_normal((64, DIM))))  # near a label, as photos are
    tax = synthetic_taxonomy(len(labels), rng)
    return labels, images, tax


def matrix(labels, tax=None, dtype="fp32") -> LabelMatrix:
    names = tax["species"] if tax else [f"label {i}" for i in range(len(labels))]
    return LabelMatrix.from_embeddings(labels, names, INFO, "plain", columns=tax, dtype=dtype)


def brute(labels, images):
    probs = brute_force_probs(labels, None, images, scoring.ScoreSpec(100.0))
    return probs, np.argsort(-probs, axis=1, kind="stable")


def test_fp32_topk_equals_brute_force(data):
    labels, images, _ = data
    probs, order = brute(labels, images)
    m = matrix(labels)
    for block_rows in (999, 4096, 50_000):
        idx, p = m.topk(images, k=10, block_rows=block_rows)
        np.testing.assert_array_equal(idx, order[:, :10])
        np.testing.assert_allclose(p, np.take_along_axis(probs, idx, axis=1), rtol=2e-4, atol=1e-7)


def test_softmax_is_over_all_labels(data):
    labels, images, _ = data
    m = matrix(labels)
    lse = log_sum_exp(m.matrix, None, images, m.score_spec, block_rows=777)
    logits = (images @ labels.T).astype(np.float64) * 100.0
    ref = np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) + logits.max(1)
    np.testing.assert_allclose(lse, ref, rtol=1e-6)


def test_fp16_same_top1_and_int8_agreement(data):
    labels, images, _ = data
    _, order = brute(labels, images)
    top1_16 = matrix(labels, dtype="fp16").topk(images, k=1, block_rows=3000)[0][:, 0]
    np.testing.assert_array_equal(top1_16, order[:, 0])
    idx8, _ = matrix(labels, dtype="int8").topk(images, k=5, block_rows=3000)
    agreement = float((idx8[:, 0] == order[:, 0]).mean())
    top5_recall = float(np.mean([len(set(a) & set(b)) / 5 for a, b in zip(idx8, order[:, :5])]))
    print(f"int8 top-1 agreement {agreement:.3f}, top-5 overlap {top5_recall:.3f}")
    assert agreement >= 0.95 and top5_recall >= 0.9


def test_topk_bounds_and_ties():
    labels = unit(np.eye(4, DIM, dtype=np.float32).repeat(2, axis=0))  # every label twice: exact ties
    m = matrix(labels)
    idx, probs = m.topk(labels[[0, 6]], k=3, block_rows=3)
    assert idx[0, :2].tolist() == [0, 1] and idx[1, :2].tolist() == [6, 7]  # ties: lower index first
    np.testing.assert_allclose(probs[:, 0], probs[:, 1])
    idx, probs = m.topk(labels[:1], k=100)
    assert idx.shape == (1, 8)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


def test_wrong_embedding_dim_is_clear(data):
    labels, _, _ = data
    with pytest.raises(LabelMatrixError, match=r"\[batch, 32\]"):
        matrix(labels[:10]).topk(np.zeros((2, 16), np.float32))


@pytest.mark.parametrize("rank", ["kingdom", "class", "family", "genus", "species"])
def test_rollup_sums_species_probabilities(data, rank):
    labels, images, tax = data
    m = matrix(labels, tax)
    probs, _ = brute(labels, images[:8])
    depth = RANKS.index(rank) + 1
    keys = list(zip(*[tax[r] for r in RANKS[:depth]]))
    result = m.rollup(images[:8], rank, k=5, block_rows=1234)
    for row, out in zip(probs, result):
        sums: dict = {}
        for key, p in zip(keys, row):
            sums[key] = sums.get(key, 0.0) + p
        best = sorted(sums.items(), key=lambda kv: -kv[1])[:5]
        assert [k for k, _ in out] == [k for k, _ in best]
        np.testing.assert_allclose([p for _, p in out], [p for _, p in best], rtol=1e-4, atol=1e-9)
    everything = m.rollup(images[:2], rank, k=10**6)
    np.testing.assert_allclose([sum(p for _, p in r) for r in everything], 1.0, rtol=1e-6)


def test_rollup_needs_taxonomy(data):
    labels, images, _ = data
    with pytest.raises(TaxonomyError, match="no taxonomy"):
        matrix(labels[:50]).rollup(images, "genus")
    with pytest.raises(TaxonomyError, match="unknown rank"):
        matrix(labels[:50]).rollup(images, "tribe")


def test_subset_by_column(data):
    labels, images, tax = data
    m = matrix(labels, tax)
    rows = m.select(["class=c2", "kingdom=K0"])
    assert len(rows) > 0 and all(tax["class"][i] == "C2" and tax["kingdom"][i] == "K0" for i in rows)
    expected = [i for i in range(len(labels)) if tax["class"][i] == "C2"]
    sub = m.subset(["class=C2"])
    assert sub.n == len(expected) and sub.names == [tax["species"][i] for i in expected]
    np.testing.assert_array_equal(sub.matrix, labels[expected])
    idx, _ = sub.topk(images, k=1)
    full_probs, _ = brute(labels[expected], images)
    np.testing.assert_array_equal(idx[:, 0], full_probs.argmax(1))
    with pytest.raises(LabelMatrixError, match="matches no labels"):
        m.subset(["class=Reptilia"])
    with pytest.raises(LabelMatrixError, match="no column 'clas'"):
        m.select(["clas=C2"])


# ---- scoring engines: OpenVINO must give the numpy path's top-k and probabilities ----
from bioclip_edge.runtime.labels import openvino_scoring  # noqa: E402

needs_openvino = pytest.mark.skipif(not openvino_scoring.openvino_capabilities(), reason="OpenVINO is not installed")
OV_ENGINES = ["openvino-f32", "openvino"]  # exact f32; the CPU's fastest precision + fp32 rescoring


@needs_openvino
@pytest.mark.parametrize("engine", OV_ENGINES)
@pytest.mark.parametrize("dtype", ["fp32", "fp16", "int8"])
def test_openvino_engine_equals_numpy(data, engine, dtype):
    labels, images, _ = data
    m = matrix(labels, dtype=dtype)
    ref_i, ref_p, ref_l = scoring.topk(m.matrix, m.scales, images, 10, m.score_spec, block_rows=3000, scorer="numpy")
    # 3001-row blocks: the last block is short (TopK must shrink k there) and blocks differ from numpy's
    idx, probs, logits = scoring.topk(m.matrix, m.scales, images, 10, m.score_spec, block_rows=3001, scorer=engine)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(logits, ref_l, rtol=0, atol=1e-4)
    np.testing.assert_allclose(probs, ref_p, rtol=1e-5 if engine == "openvino-f32" else 1e-3, atol=1e-9)
    if dtype == "fp16":
        _, order = brute(labels, images)
        np.testing.assert_array_equal(idx[:, 0], order[:, 0])


@needs_openvino
@pytest.mark.parametrize("engine", OV_ENGINES)
def test_openvino_softmax_exact_when_the_tail_dominates(data, engine):
    """Logit scale 1: almost uniform softmax, so the normaliser is all tail and no candidate rescues it."""
    labels, images, _ = data
    stored = labels.astype(np.float16)
    spec = scoring.ScoreSpec(1.0, logit_bias=-3.0)
    idx, probs, logits = scoring.topk(stored, None, images[:8], 5, spec, scorer=engine)
    ref = brute_force_probs(stored, None, images[:8], spec)
    np.testing.assert_array_equal(idx, np.argsort(-ref, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(probs, np.take_along_axis(ref, idx, axis=1), rtol=1e-4)
    cos = (images[:8] @ stored.astype(np.float32).T)
    np.testing.assert_allclose(logits, np.take_along_axis(cos, idx, axis=1) - 3.0, atol=1e-5)


@needs_openvino
@pytest.mark.parametrize("engine", OV_ENGINES)
def test_openvino_ties_and_k_beyond_n(engine):
    labels = unit(np.eye(4, DIM, dtype=np.float32).repeat(2, axis=0))  # every label twice: exact ties
    spec = scoring.ScoreSpec(100.0)
    idx, probs, _ = scoring.topk(labels, None, labels[[0, 6]], 3, spec, block_rows=3, scorer=engine)
    assert idx[0, :2].tolist() == [0, 1] and idx[1, :2].tolist() == [6, 7]
    np.testing.assert_allclose(probs[:, 0], probs[:, 1])
    idx, probs, _ = scoring.topk(labels, None, labels[:1], 100, spec, scorer=engine)
    assert idx.shape == (1, 8) and sorted(idx[0].tolist()) == list(range(8))
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-5)


@needs_openvino
def test_openvino_reads_the_mapped_file_in_place(data, tmp_path):
    labels, images, _ = data
    path = matrix(labels, dtype="fp16").save(tmp_path / "l.npz")
    m = LabelMatrix.load(path)
    assert isinstance(m.matrix, np.memmap) and not m.matrix.flags.writeable
    rows = openvino_scoring._in_place_rows(m.matrix)
    assert isinstance(rows, np.memmap) and rows.flags.writeable and rows.mode == "c"
    np.testing.assert_array_equal(rows[-3:], m.matrix[-3:])
    before = path.read_bytes()
    idx, probs, _ = scoring.topk(m.matrix, None, images, 5, m.score_spec, scorer="openvino")
    ref_i, ref_p, _ = scoring.topk(m.matrix, None, images, 5, m.score_spec, scorer="numpy")
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(probs, ref_p, rtol=1e-3)
    assert path.read_bytes() == before  # copy-on-write: the file is never written


def test_engine_choice(monkeypatch):
    monkeypatch.delenv(openvino_scoring.SCORER_ENV, raising=False)
    assert openvino_scoring.choose_scorer("numpy").scorer == "numpy"
    assert openvino_scoring.choose_scorer("auto", 1000, 512).scorer == "numpy"  # small: no compile
    with pytest.raises(openvino_scoring.ScorerError, match="choose one of"):
        openvino_scoring.choose_scorer("cuda")
    monkeypatch.setattr(openvino_scoring, "openvino_capabilities", lambda: ())
    choice = openvino_scoring.choose_scorer("auto", 867_000, 768)
    assert choice.scorer == "numpy" and "not installed" in choice.reason
    with pytest.raises(openvino_scoring.ScorerError, match="OpenVINO is not installed"):
        openvino_scoring.choose_scorer("openvino")
    monkeypatch.setattr(openvino_scoring, "openvino_capabilities", lambda: ("FP32", "BF16"))
    big = openvino_scoring.choose_scorer("auto", 867_000, 768)
    assert (big.scorer, big.precision) == ("openvino", "bf16")
    monkeypatch.setenv(openvino_scoring.SCORER_ENV, "numpy")
    assert openvino_scoring.choose_scorer("auto", 867_000, 768).scorer == "numpy"
    assert openvino_scoring.fast_precision(("FP32",)) == "f32" and openvino_scoring.fast_precision(("BF16", "FP16")) == "bf16"


def test_summary_names_the_engine(data, monkeypatch):
    monkeypatch.delenv(openvino_scoring.SCORER_ENV, raising=False)
    labels, _, _ = data
    assert matrix(labels[:100]).summary()["scorer"].startswith("numpy fp32 blocks (auto: ")


# ---- references: the plain computations the blocked scorer must reproduce ----------------------

def brute_force_probs(matrix, scales, emb: np.ndarray, spec: scoring.ScoreSpec) -> np.ndarray:
    """The full [B, N] softmax in one product (small N only)."""
    rows = np.asarray(matrix, dtype=np.float32)
    if scales is not None:
        rows = rows * np.asarray(scales, dtype=np.float32)[:, None]
    logits = np.asarray(emb, dtype=np.float32) @ rows.T * spec.logit_scale + (spec.logit_bias or 0.0)
    logits = logits.astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def log_sum_exp(matrix, scales, emb: np.ndarray, spec: scoring.ScoreSpec, block_rows: int) -> np.ndarray:
    """The scorer's running log-sum-exp over blocks of ``block_rows`` label rows."""
    emb = np.atleast_2d(np.asarray(emb, dtype=np.float32))
    lse = scoring._RunningLSE(emb.shape[0])
    for _, logits in scoring.iter_logits(matrix, scales, emb, spec, block_rows):
        lse.add(logits)
    return lse.value

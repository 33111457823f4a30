"""The OpenVINO scoring engine's parts: threshold candidates, group maxima, block shapes, precisions."""

from __future__ import annotations

import numpy as np
import pytest

from bioclip_edge.runtime.labels import scoring
from bioclip_edge.runtime.labels import openvino_scoring
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from tests.helpers.labels import model_info, unit

DIM = 48
INFO = model_info(DIM)
CAPS = openvino_scoring.openvino_capabilities()
needs_openvino = pytest.mark.skipif(not CAPS, reason="OpenVINO is not installed")


def reference_best(logits: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, B] logits -> each image's ``keep`` best (value desc, row asc), as the numpy engine ranks them."""
    rows = np.arange(logits.shape[0])
    order = np.stack([np.lexsort((rows, -logits[:, b]))[:keep] for b in range(logits.shape[1])])
    return np.take_along_axis(logits.T, order, axis=1), order


def feed(found, logits: np.ndarray, block: int, group: int) -> None:
    for start in range(0, logits.shape[0], block):
        part = logits[start : start + block]
        grouped = part.reshape(-1, group, part.shape[1]).max(axis=1) if group > 1 and len(part) % group == 0 else None
        found.add(part, part.max(axis=0), grouped, start, group if grouped is not None else 1)


@pytest.mark.parametrize("block,group", [(256, 64), (256, 1), (7, 1), (1000, 8)])
def test_candidates_equal_a_full_sort(block, group):
    """Blocks smaller than keep, uneven last blocks, group maxima or none: always the exact top keep."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3001, 5)).astype(np.float32)
    logits[rng.integers(0, 3001, 300)] = 2.5  # exact ties across blocks: the lower row must win
    found = openvino_scoring._Candidates(5, 40)
    feed(found, logits, block, group)
    values, rows = found.result()
    ref_values, ref_rows = reference_best(logits, 40)
    np.testing.assert_array_equal(rows, ref_rows)
    np.testing.assert_array_equal(values, ref_values)


def test_candidates_only_look_at_hot_groups():
    """After the first block a later block below every threshold adds nothing, however its rows sit."""
    found = openvino_scoring._Candidates(2, 3)
    first = np.array([[5.0, 4.0], [4.0, 5.0], [3.0, 3.0], [0.0, 0.0]], dtype=np.float32)
    found.add(first, first.max(axis=0), None, 0, 1)
    np.testing.assert_array_equal(found.threshold, [3.0, 3.0])
    cold = np.full((4, 2), 3.0, dtype=np.float32)  # ties the threshold: later rows lose ties
    found.add(cold, cold.max(axis=0), cold.reshape(2, 2, 2).max(axis=1), 4, 2)
    values, rows = found.result()
    assert rows.tolist() == [[0, 1, 2], [1, 0, 2]] and values[:, -1].tolist() == [3.0, 3.0]


def test_block_rows_are_whole_groups():
    assert openvino_scoring.openvino_block_rows(768) == 8192  # 12 MiB of fp16 rows
    for dim, itemsize in [(768, 4), (1024, 1), (500, 2), (7, 2)]:
        rows = openvino_scoring.openvino_block_rows(dim, itemsize)
        assert rows % openvino_scoring.GROUP == 0 and rows >= 1024


def test_explicit_precision_needs_the_cpu(monkeypatch):
    monkeypatch.setattr(openvino_scoring, "openvino_capabilities", lambda: ("FP32", "BF16"))
    assert openvino_scoring.choose_scorer("openvino-bf16").precision == "bf16"
    assert openvino_scoring.choose_scorer("openvino-f32").precision == "f32"
    with pytest.raises(openvino_scoring.ScorerError, match="does not compute f16"):
        openvino_scoring.choose_scorer("openvino-f16")


@pytest.fixture(scope="module")
def near_duplicates():
    """Labels in tight clusters (near-duplicate taxa): many logits within bf16 rounding of the k-th best."""
    rng = np.random.default_rng(3)
    centres = unit(rng.standard_normal((400, DIM)))
    labels = unit(np.repeat(centres, 25, axis=0) + 0.01 * rng.standard_normal((10_000, DIM)))
    images = unit(centres[rng.integers(0, 400, 16)] + 0.3 * unit(rng.standard_normal((16, DIM))))
    return labels, images


@needs_openvino
@pytest.mark.parametrize("engine", ["openvino", "openvino-f32"] + [f"openvino-{p}" for p in ("f16", "bf16") if openvino_scoring._CAPABILITY[p] in CAPS])
@pytest.mark.parametrize("dtype", ["fp16", "int8"])
def test_grouped_blocks_equal_numpy(near_duplicates, engine, dtype):
    """Static 1024-row blocks with group maxima and a short dynamic tail give the numpy top-k."""
    labels, images = near_duplicates
    m = LabelMatrix.from_embeddings(labels, [f"l{i}" for i in range(len(labels))], INFO, "plain", dtype=dtype)
    ref_i, ref_p, ref_l = scoring.topk(m.matrix, m.scales, images, 5, m.score_spec, scorer="numpy")
    idx, probs, logits = scoring.topk(m.matrix, m.scales, images, 5, m.score_spec, block_rows=1024, scorer=engine)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(logits, ref_l, rtol=0, atol=1e-4)
    # Probabilities differ only through the non-candidate labels' rounded terms in the normaliser:
    # the 25-label clusters fit in every precision's margin, so their terms are rescored exactly.
    np.testing.assert_allclose(probs, ref_p, rtol=1e-3, atol=1e-9)

"""Trimmed-context text embeddings equal open_clip's 77-token encode_text."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.text.encoder import TextEncoder
from tests.helpers.labels import real_labels


@pytest.fixture(scope="module")
def torch_model(tiny_model_dir):
    from bioclip_edge.export.sources import ModelRequest, load_model

    return load_model(ModelRequest(f"local-dir:{tiny_model_dir}"))


@pytest.fixture(scope="module")
def encoder(tiny_bundle):
    return TextEncoder(Bundle.open(tiny_bundle))


def _open_clip_embed(loaded, labels):
    import torch

    with torch.no_grad():
        ids = loaded.tokenizer(labels)  # padded to 77, as open_clip always does
        assert ids.shape[1] == 77
        return torch.nn.functional.normalize(loaded.model.encode_text(ids), dim=-1).numpy()


def test_trimmed_context_equals_open_clip(encoder, torch_model):
    labels = real_labels()
    assert encoder.variant.dynamic_length
    got = encoder.encode(labels, batch_size=64)
    ref = _open_clip_embed(torch_model, labels)
    assert got.shape == ref.shape and got.dtype == np.float32
    cos = (got * ref).sum(axis=1)
    assert cos.min() >= 0.99999, labels[int(cos.argmin())]
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_batches_are_cut_to_their_longest_label(encoder, monkeypatch):
    seen = []
    original = encoder.session.run

    def spy(names, feeds):
        seen.append(next(iter(feeds.values())).shape)
        return original(names, feeds)

    monkeypatch.setattr(encoder.session, "run", spy)
    encoder.encode(["a", "b", "c", "Panthera leo " * 10, "lion lion"], batch_size=2)
    assert [s[1] for s in seen] == sorted(s[1] for s in seen)  # shortest first
    assert seen[0] == (2, 3) and max(s[1] for s in seen) < 77


def test_order_and_batch_size_do_not_change_results(encoder):
    labels = real_labels()[:150]
    a = encoder.encode(labels, batch_size=7)
    b = encoder.encode(labels[::-1], batch_size=256)[::-1]
    np.testing.assert_allclose(a, b, atol=2e-6)


def test_full_context_when_graph_is_not_dynamic(encoder, monkeypatch):
    labels = ["lion", "Grévy’s zebra", ""]
    trimmed = encoder.encode(labels)
    monkeypatch.setattr(encoder, "variant", dataclasses.replace(encoder.variant, dynamic_length=False))
    shapes = []
    original = encoder.session.run
    monkeypatch.setattr(encoder.session, "run", lambda n, f: shapes.append(next(iter(f.values())).shape) or original(n, f))
    full = encoder.encode(labels)
    assert shapes == [(3, 77)]
    np.testing.assert_allclose(full, trimmed, atol=1e-5)


def test_fp16_and_int8_variants(tiny_bundle, encoder):
    labels = real_labels()[:100]
    ref = encoder.encode(labels)
    bundle = Bundle.open(tiny_bundle)
    for precision, bound in (("fp16", 0.999), ("int8", 0.99)):
        got = TextEncoder(bundle, precision).encode(labels)
        assert got.dtype == np.float32
        assert (got * ref).sum(axis=1).mean() >= bound, precision


def test_empty_and_single(encoder):
    assert encoder.encode([]).shape == (0, encoder.dim)
    one = encoder.encode("lion")
    assert one.shape == (1, encoder.dim)

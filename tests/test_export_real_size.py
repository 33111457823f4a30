"""Real-size exports: ViT-B/16 (BioCLIP, BioCAP) in the suite; ViT-L/14 and ViT-H/14 as slow tests.

Weights are random (no hub here), which changes nothing about shapes, sizes, graph structure or
how closely each variant follows PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bioclip_edge.export.build import ExportConfig, export_bundle
from bioclip_edge.export.sources import ModelRequest
from bioclip_edge.runtime.engine.bundle import Bundle


def _export(spec: str, out: Path, **kw) -> Bundle:
    export_bundle(ExportConfig(request=ModelRequest(spec, allow_random=True), out=out, parity_images=6, **kw))
    return Bundle.open(out)


def test_bioclip_vit_b16_real_size(tmp_path: Path, photo_dir: Path):
    bundle = _export("bioclip", tmp_path / "bioclip", calibration=photo_dir)
    m = bundle.manifest
    assert m.model.architecture == "ViT-B-16" and m.model.source.random_weights
    assert 149e6 < m.model.params_vision + m.model.params_text < 151e6  # published: 150M
    sizes = {v.name: v.total_bytes for v in m.variants}
    assert 330e6 < sizes["vision.fp32"] < 360e6
    assert sizes["vision.fp16"] < 0.52 * sizes["vision.fp32"]
    assert sizes["vision.int8"] < 0.3 * sizes["vision.fp32"]
    assert sizes["text.int8"] < 0.3 * sizes["text.fp32"]  # MatMuls and the token embedding quantized
    for v in m.variants:  # the bounds: fp32 >= 0.99999, fp16 >= 0.999, int8 reported and held
        assert v.parity is not None and v.parity.passed, (v.name, v.parity)
    assert m.variant("vision", "fp32").parity.cosine_min >= 0.99999
    assert m.variant("vision", "fp16").parity.cosine_min >= 0.999
    assert m.variant("text", "fp16").parity.cosine_min >= 0.999
    assert bundle.variant("vision", name="vision.int8-static").parity.cosine_mean >= 0.99


@pytest.mark.slow
def test_bioclip2_vit_l14_real_size(tmp_path: Path):
    bundle = _export("bioclip-2", tmp_path / "bioclip2", precisions=("fp32", "int8"))
    m = bundle.manifest
    assert 425e6 < m.model.params_vision + m.model.params_text < 431e6  # published: 428M
    for v in m.variants:
        assert v.parity is not None and v.parity.passed, (v.name, v.parity)


@pytest.mark.slow
def test_bioclip25_vit_h14_uses_one_external_data_file(tmp_path: Path):
    bundle = _export("bioclip-2.5-huge", tmp_path / "bioclip25", precisions=("fp32", "int8"))
    m = bundle.manifest
    assert 980e6 < m.model.params_vision + m.model.params_text < 990e6  # published: 986M
    fp32 = m.variant("vision", "fp32")
    assert fp32.data_file == "vision.fp32.onnx.data" and fp32.data_size_bytes > 2e9
    assert sorted(p.name for p in bundle.root.iterdir() if p.name.startswith("vision.fp32")) == [
        "vision.fp32.onnx", "vision.fp32.onnx.data"]
    for v in m.variants:
        assert v.parity is not None and v.parity.passed, (v.name, v.parity)

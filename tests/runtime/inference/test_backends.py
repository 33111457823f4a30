"""OpenVINO behind the runtime's session interface agrees with onnxruntime on the same ONNX files."""

from __future__ import annotations

import pytest

from bioclip_edge.runtime.inference.backends import BackendError, choose_backend, openvino_capabilities
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.text.encoder import TextEncoder

needs_openvino = pytest.mark.skipif(not openvino_capabilities(), reason="OpenVINO is not installed")
LABELS = ["lion", "leopard", "spotted hyena", "a photo of an african elephant.", "Panthera pardus"]


@needs_openvino
@pytest.mark.parametrize("backend,bound", [("openvino-f32", 0.99999), ("openvino", 0.999)])
def test_openvino_matches_onnxruntime(tiny_bundle, photo_dir, backend, bound):
    from bioclip_edge.runtime.images.decode import load_image

    bundle = Bundle.open(tiny_bundle)
    images = [load_image(p).image for p in sorted(photo_dir.glob("*.jpg"))]
    ref = ImageEmbedder(bundle, ImageRequest(precision="fp32", batch_size=4, session=SessionOptions(backend="onnxruntime"))).embed_images(images)
    got_embedder = ImageEmbedder(bundle, ImageRequest(batch_size=4, session=SessionOptions(backend=backend)))
    assert got_embedder.provider.startswith("OpenVINO CPU")
    got = got_embedder.embed_images(images)  # 6 images in batches of 4: dynamic batch
    assert (got * ref).sum(axis=1).min() >= bound
    text_ref = TextEncoder(bundle).encode(LABELS)
    text_got = TextEncoder(bundle, options=SessionOptions(backend=backend)).encode(LABELS)  # trimmed lengths vary
    assert (text_got * text_ref).sum(axis=1).min() >= bound


def test_auto_choice_follows_what_is_installed():
    choice = choose_backend("auto")
    caps = openvino_capabilities()
    expected = "openvino" if "BF16" in caps else "onnxruntime"
    assert choice.backend == expected and choice.reason.startswith("auto:")
    assert choose_backend("onnxruntime").backend == "onnxruntime"
    with pytest.raises(BackendError, match="choose one of"):
        choose_backend("tensorflow")


def test_missing_openvino_is_a_clear_error(monkeypatch):
    import bioclip_edge.runtime.inference.backends as backends

    monkeypatch.setattr(backends, "openvino_capabilities", lambda: ())
    with pytest.raises(BackendError, match="OpenVINO is not installed"):
        backends.choose_backend("openvino")
    assert backends.choose_backend("auto").backend == "onnxruntime"


def test_auto_keeps_dynamic_int8_graphs_in_onnxruntime(tiny_bundle):
    bundle = Bundle.open(tiny_bundle)
    assert choose_backend("auto", dynamic_int8=True).backend == "onnxruntime"
    embedder = ImageEmbedder(bundle, ImageRequest(precision="int8", batch_size=4, session=SessionOptions(backend="auto")))
    assert embedder.provider == "CPUExecutionProvider"  # vision.int8 is onnxruntime's dynamic int8
    fp32 = ImageEmbedder(bundle, ImageRequest(precision="fp32", batch_size=4, session=SessionOptions(backend="auto")))
    assert fp32.provider.startswith("OpenVINO") == ("BF16" in openvino_capabilities())


@needs_openvino
def test_openvino_label_says_int8_for_quantized_graphs(tiny_bundle):
    """A newcomer reading "OpenVINO CPU (bfloat16)" for an int8 graph would think int8 was not used."""
    from bioclip_edge.runtime.inference.session import make_session

    bundle = Bundle.open(tiny_bundle)
    static = bundle.variant("vision", name="vision.int8-static")
    quantized = make_session(bundle.path(static.file), SessionOptions(backend="openvino"), static)
    assert quantized.get_providers()[0].startswith("OpenVINO CPU (int8; ")
    fp32 = bundle.variant("vision", "fp32")
    assert "int8" not in make_session(bundle.path(fp32.file), SessionOptions(backend="openvino"), fp32).get_providers()[0]

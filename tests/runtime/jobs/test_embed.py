"""ImageEmbedder and ``bioclip-edge embed`` / ``info`` on the tiny exported bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.images.decode import load_image
from bioclip_edge.runtime.images.discover import discover
from bioclip_edge.runtime.inference.session import SessionOptions
from tests.helpers.image_factory import bad_images


@pytest.fixture(scope="module")
def images(photo_dir):
    return [load_image(item.path).image for item in discover([photo_dir])]


def test_embeddings_are_unit_length_and_batch_independent(tiny_bundle, images):
    bundle = Bundle.open(tiny_bundle)
    one = ImageEmbedder(bundle, ImageRequest(precision="fp32", batch_size=1))
    many = ImageEmbedder(bundle, ImageRequest(precision="fp32", batch_size=64))
    pixels = np.stack([one.transform(im) for im in images])
    a, b = one.embed(pixels), many.embed(pixels)
    assert a.shape == (len(images), bundle.manifest.model.embed_dim) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert one.embed(pixels[:0]).shape == (0, bundle.manifest.model.embed_dim)
    with pytest.raises(ValueError, match="shape"):
        one.embed(pixels[:, :, :100])


def test_lower_precisions_agree_with_fp32(tiny_bundle, images):
    bundle = Bundle.open(tiny_bundle)
    ref = ImageEmbedder(bundle, "fp32").embed_images(images)
    for precision, bound in (("fp16", 0.999), ("int8", 0.98)):
        got = ImageEmbedder(bundle, precision).embed_images(images)
        cos = (ref * got).sum(axis=1)
        assert cos.min() > bound, (precision, cos)
    with pytest.raises(Exception, match="choose one of auto, fp32"):
        ImageEmbedder(bundle, "bf16")


def test_cli_embed_writes_npy_and_sidecar(tiny_bundle, photo_dir, tmp_path, capsys):
    bad = bad_images(tmp_path / "bad")
    out = tmp_path / "emb.npy"
    code = cli_main(["embed", str(tiny_bundle), str(photo_dir), str(tmp_path / "bad"), "--out", str(out), "--no-progress",
                     "--backend", "onnxruntime", "--precision", "fp32"])  # exact, compared with a direct run below
    assert code == 1  # some inputs failed
    matrix = np.load(out)
    side = json.loads((tmp_path / "emb.json").read_text())
    assert matrix.shape == (len(side["images"]), side["dim"]) == (6, Bundle.open(tiny_bundle).manifest.model.embed_dim)
    assert side["backend"] == "CPUExecutionProvider" and side["variant"] == "vision.fp32"
    assert "--precision fp32" in side["chosen_because"]
    assert len(side["failures"]) == len(bad) - 1  # the folder named folder.jpg is walked, not an image
    assert all(f["reason"] for f in side["failures"])
    # rows follow the sidecar's order and match a direct embedding
    embedder = ImageEmbedder(Bundle.open(tiny_bundle), ImageRequest(precision="fp32", session=SessionOptions(backend="onnxruntime")))
    direct = embedder.embed_images([load_image(side["images"][2]["filepath"]).image])
    np.testing.assert_allclose(matrix[2], direct[0], atol=1e-5)
    assert "6 image(s)" in capsys.readouterr().out


def test_cli_info_lists_variants_with_sizes_and_parity(tiny_bundle, capsys):
    assert cli_main(["info", str(tiny_bundle)]) == 0
    text = capsys.readouterr().out
    for name in ("vision.fp32", "vision.fp16", "vision.int8", "text.fp32"):
        assert name in text
    assert "MB" in text and "cos min" in text and "WARNING" not in text
    from bioclip_edge.runtime.inference.selection import select_vision

    chosen = select_vision(Bundle.open(tiny_bundle))
    assert f"on this machine: --precision auto runs {chosen.variant.name} on {chosen.backend}" in text
    assert cli_main(["info", str(tiny_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["schema_version"] == 1


def test_cli_modules_import_only_the_standard_library():
    """``bioclip-edge --help`` must stay fast: subcommand modules load numpy & co inside run()."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import bioclip_edge.runtime.cli.classify, bioclip_edge.runtime.cli.embed, bioclip_edge.runtime.cli.info\n"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'PIL', 'tokenizers', 'torch') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_npy_pair_is_streamed_with_the_bytes_np_save_and_json_write(tmp_path):
    """write_pair streams one input at a time (a million-image run holds no matrix); its files are
    byte for byte what np.save and json.dumps(indent=1) write for the whole run."""
    import io
    import json

    import numpy as np

    from bioclip_edge.runtime.jobs.embed_output import EmbeddedInput, write_pair

    rng = np.random.default_rng(0)
    results = [EmbeddedInput("a.jpg", rng.standard_normal((1, 8)).astype(np.float32), [{"width": 4, "exif": {"Make": "Ré"}}]),
               EmbeddedInput("broken.jpg", failure="cannot decode"),
               EmbeddedInput("clip.mp4", rng.standard_normal((3, 8)).astype(np.float32),
                             [{"frame_number": i} for i in range(3)])]
    meta = {"embeddings": "e.npy", "model": "tiny", "dtype": "float16"}
    write_pair(tmp_path / "e.npy", tmp_path / "e.json", results, meta, 8, "float16")

    want = io.BytesIO()
    np.save(want, np.concatenate([results[0].vectors, results[2].vectors]).astype("float16"))
    assert (tmp_path / "e.npy").read_bytes() == want.getvalue()
    images = [{"filepath": "a.jpg", "width": 4, "exif": {"Make": "Ré"}}] + [{"filepath": "clip.mp4", "frame_number": i} for i in range(3)]
    index = json.dumps({**meta, "images": images, "failures": [{"filepath": "broken.jpg", "reason": "cannot decode"}]},
                       indent=1, ensure_ascii=False) + "\n"
    assert (tmp_path / "e.json").read_text(encoding="utf-8") == index

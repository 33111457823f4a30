"""--decode draft (formerly --fast-decode): JPEG draft (DCT-scaled) decoding before the exact resize.

Exact decoding (``--decode exact``) keeps open_clip parity (tests/test_preprocess.py). Draft
decoding is inexact (the default ``auto`` uses it only where the bundle's decode check passed:
tests/test_decode_check.py), so what is held here is how close it stays: on real photos at
camera-trap size (scikit-image samples resized to 1920x1080), embeddings within a stated cosine
of exact decoding, the same zero-shot top-1, and non-JPEG files untouched by the option.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.images.decode import DecodeOptions, load_image
from bioclip_edge.runtime.images.transform import FAST_DECODE_MARGIN, ImageTransform
from bioclip_edge.runtime.inference.session import SessionOptions
from tests.helpers.image_factory import PHOTOS, camera_trap_jpeg, photo

# Measured: 1/2-scale draft on 1920x1080 photos (upscaled samples and native-detail tilings) gave
# cosine >= 0.99997 to exact decoding for random ViT-B/16 and the tiny test ViT; the bound leaves
# room for other Pillow/libjpeg builds.
MIN_COSINE = 0.9999
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[Path]:
    """The sample photos resized to 1920x1080 and saved as JPEG, as a trail camera writes them."""
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for name in (*PHOTOS, "immunohistochemistry", "retina"):
        path = folder / f"{name}.jpg"
        photo(name).resize((1920, 1080), Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def transform(size=(224, 224)) -> ImageTransform:
    return ImageTransform(size=size, resize_mode="shortest", interpolation="bicubic", mean=MEAN, std=STD)


def test_draft_size_keeps_the_margin_over_the_model_input():
    assert transform().draft_size == (FAST_DECODE_MARGIN * 224,) * 2
    assert transform((256, 192)).draft_size == (FAST_DECODE_MARGIN * 256,) * 2  # square: any orientation


def test_1080p_jpeg_decodes_at_half_scale_and_reports_its_full_size(frames):
    fast = load_image(frames[0], DecodeOptions(draft_size=transform().draft_size))
    assert fast.scale == 2 and fast.image.size == (960, 540)
    assert (fast.width, fast.height) == (1920, 1080)  # the output still says how big the picture is
    assert min(fast.image.size) >= FAST_DECODE_MARGIN * 224
    exact = load_image(frames[0])
    assert exact.scale == 1 and exact.image.size == (1920, 1080)


def test_rotated_jpeg_keeps_orientation_and_full_size(tmp_path):
    path = camera_trap_jpeg(tmp_path / "rotated.jpg", orientation=6)
    fast = load_image(path, DecodeOptions(draft_size=transform().draft_size))
    exact = load_image(path)
    assert (exact.width, exact.height) == (1080, 1920) == (fast.width, fast.height)
    assert fast.image.size == (540, 960) and fast.scale == 2
    assert fast.exif == exact.exif and fast.exif  # EXIF fields still read from a draft decode


def test_scale_never_drops_below_the_margin(tmp_path):
    """A frame just under twice 448 px on its short side must not be reduced at all."""
    path = tmp_path / "small.jpg"
    photo("coffee").resize((1200, 800), Image.Resampling.BICUBIC).save(path, quality=90)
    decoded = load_image(path, DecodeOptions(draft_size=transform().draft_size))
    assert decoded.scale == 1 and decoded.image.size == (1200, 800)


@pytest.mark.parametrize("suffix,kw", [(".png", {}), (".webp", {"lossless": True}), (".tif", {}), (".bmp", {})])
def test_non_jpeg_files_ignore_the_option(tmp_path, suffix, kw):
    path = tmp_path / f"frame{suffix}"
    photo("chelsea").resize((1920, 1080), Image.Resampling.BICUBIC).save(path, **kw)
    fast = load_image(path, DecodeOptions(draft_size=transform().draft_size))
    exact = load_image(path)
    assert fast.scale == 1 and fast.image.size == (1920, 1080)
    assert np.array_equal(np.asarray(fast.image), np.asarray(exact.image))


def test_fast_pixels_are_close_but_not_identical(frames):
    t = transform()
    diffs = []
    for path in frames:
        exact = t(load_image(path).image)
        fast = t(load_image(path, DecodeOptions(draft_size=t.draft_size)).image)
        diffs.append(np.abs(fast - exact))
    diffs = np.stack(diffs)
    assert diffs.max() > 1e-3  # the option really changed the decode
    assert diffs.mean() < 0.01 and diffs.max() < 0.5  # measured 0.003 mean, 0.13 max (normalised units)


def test_crop_resize_differs_from_the_full_resize_by_at_most_one_grey_level_on_rare_pixels(frames):
    """Fast decoding also resizes only the centre crop's source region: measured 4-6 pixels in
    10^5 one grey level off on these frames, none further."""
    t = transform()
    for path in frames:
        image = load_image(path).image
        full = np.asarray(t.geometry(image), dtype=np.int16)
        boxed = np.asarray(t.crop_resize(image), dtype=np.int16)
        assert boxed.shape == full.shape == (224, 224, 3)
        assert np.abs(boxed - full).max() <= 1 and (boxed != full).mean() < 1e-3
    squash = ImageTransform(size=(224, 224), resize_mode="squash", interpolation="bicubic", mean=MEAN, std=STD)
    image = load_image(frames[0]).image
    assert np.array_equal(np.asarray(squash.crop_resize(image)), np.asarray(squash.geometry(image)))  # exact path


def test_fast_embeddings_and_top1_match_exact_on_real_photos(tiny_bundle, frames):
    labels = ["lion", "leopard", "zebra", "spotted hyena", "elephant", "giraffe", "empty savanna", "baboon"]
    bundle = Bundle.open(tiny_bundle)
    exact_path = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}  # decoding is what differs
    exact_clf = Classifier(bundle, labels, decode_threads=0, decode="exact", **exact_path)
    draft = exact_clf.transform.draft_size
    fast_clf = Classifier(bundle, labels, decode_threads=0, decode="draft", **exact_path)
    embed = exact_clf.embedder
    exact = embed.embed(np.stack([exact_clf.transform(load_image(p).image) for p in frames]))
    fast = embed.embed(np.stack([exact_clf.transform(load_image(p, DecodeOptions(draft_size=draft)).image) for p in frames]))
    cosine = (exact * fast).sum(1)
    assert cosine.min() >= MIN_COSINE, cosine
    # closer to its exact self than to any other photo: the difference is far below image content
    others = exact @ exact.T - 2 * np.eye(len(frames))
    assert (cosine > others.max(1)).all()
    want = [r["predictions"][0]["label"] for r in exact_clf.predict(frames)]
    got = [r["predictions"][0]["label"] for r in fast_clf.predict(frames)]
    assert got == want


def test_cli_classify_records_the_decode_mode(tiny_bundle, frames, tmp_path):
    folder = frames[0].parent
    for flag, word in ((["--decode", "exact"], "exact"), (["--decode", "draft"], "draft")):
        out = tmp_path / f"{word}.json"
        assert cli_main(["classify", str(tiny_bundle), str(folder), "--labels", "a,b", "--out", str(out), "--no-progress", *flag]) == 0
        doc = json.loads(out.read_text())
        assert doc["info"]["classifier_metadata"]["decode"].startswith(word)
    jsonl = tmp_path / "fast.jsonl"
    assert cli_main(["classify", str(tiny_bundle), str(folder), "--labels", "a,b", "--out", str(jsonl), "--no-progress", "--decode", "draft"]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(r["width"], r["height"]) for r in records] == [(1920, 1080)] * len(frames)  # full size, not the draft's


def test_cli_embed_records_the_decode_mode_and_stays_close(tiny_bundle, frames, tmp_path):
    folder = frames[0].parent
    rows = {}
    for flag, word in ((["--decode", "exact"], "exact"), (["--decode", "draft"], "draft")):
        out = tmp_path / f"{word}.npy"
        assert cli_main(["embed", str(tiny_bundle), str(folder), "--out", str(out), "--no-progress", *flag,
                         "--precision", "fp32", "--backend", "onnxruntime"]) == 0  # decoding is what differs
        assert json.loads(out.with_suffix(".json").read_text())["decode"].startswith(word)
        rows[word] = np.load(out)
    assert ((rows["exact"] * rows["draft"]).sum(1) >= MIN_COSINE).all()
    assert not np.array_equal(rows["exact"], rows["draft"])

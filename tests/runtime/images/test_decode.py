"""JPEG decoding: ``--decode auto|exact|draft`` and the bundle's decode check.

Draft decoding is JPEG draft (DCT-scaled) decoding before the exact resize. Exact decoding keeps
open_clip parity (tests/runtime/images/test_preprocess.py); draft decoding is inexact, so what is
held here is how close it stays: on real photos at camera-trap size (scikit-image samples resized
to 1920x1080 and 4000x3000), embeddings within a stated cosine of exact decoding, the same
zero-shot top-1, and non-JPEG files untouched by the option.

The export measures draft vs exact decoding and records it in the manifest
(``export.decode_check``); ``auto`` drafts only on a bundle whose check passed. MegaDetector crops
draft only while the crop keeps the whole-image margin (``decode_mode.crop_draft_size``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.cli import main as cli_main
from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images import embedder as embedder_module
from bioclip_edge.runtime.images.decode import DecodeOptions, load_image
from bioclip_edge.runtime.images.decode_mode import choose_decode, crop_draft_size
from bioclip_edge.runtime.images.detections import read_detections
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.images.transform import FAST_DECODE_MARGIN, ImageTransform
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME, Manifest
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.jobs import box_records as classifier_module
from bioclip_edge.runtime.jobs.classifier import Classifier
from tests.helpers.image_factory import PHOTOS, camera_trap_jpeg, photo

# Measured: 1/2-scale draft on 1920x1080 photos (upscaled samples and native-detail tilings) gave
# cosine >= 0.99997 to exact decoding for random ViT-B/16 and the tiny test ViT; the bound leaves
# room for other Pillow/libjpeg builds.
MIN_COSINE = 0.9999
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
FP32_ORT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}  # decoding is what differs


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


@pytest.fixture(scope="module")
def mixed_frames(tmp_path_factory) -> list[Path]:
    """Three sample photos as 1920x1080 JPEGs and one as a 4000x3000 JPEG: both sizes trail cameras write."""
    folder = tmp_path_factory.mktemp("mixed-frames")
    sizes = {"astronaut": (1920, 1080), "chelsea": (1920, 1080), "coffee": (1920, 1080), "rocket": (4000, 3000)}
    for name, size in sizes.items():
        photo(name).resize(size, Image.Resampling.BICUBIC).save(folder / f"{name}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))


def transform(size=(224, 224)) -> ImageTransform:
    return ImageTransform(size=size, resize_mode="shortest", interpolation="bicubic", mean=MEAN, std=STD)


def edited_bundle(tiny_bundle: Path, folder: Path, edit) -> Path:
    """A copy of the tiny bundle whose manifest ``edit(dict)`` changed (as conftest's random_flagged_bundle)."""
    copy = folder / "edited"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    edit(manifest)
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    return copy


# --- draft decoding -------------------------------------------------------------------------------

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
    """Draft decoding also resizes only the centre crop's source region: measured 4-6 pixels in
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
    exact_clf = Classifier(bundle, labels, decode_threads=0, decode="exact", **FP32_ORT)
    draft = exact_clf.transform.draft_size
    fast_clf = Classifier(bundle, labels, decode_threads=0, decode="draft", **FP32_ORT)
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


# --- the export's record ---------------------------------------------------------------------------

def test_export_records_a_passing_decode_check(tiny_bundle):
    check = Bundle.open(tiny_bundle).manifest.decode_check
    assert check is not None and check.passed and check.version == 1
    assert {(1920, 1080), (4000, 3000)} <= set(check.sizes) and check.images == 14  # 6 photos + a mosaic, per size
    assert check.min_cosine == 0.995 and check.cosine_min >= 0.995 and check.cosine_mean >= check.cosine_min
    assert check.top1.bound == 1.0 and check.top1.images == check.images and check.top1.agree == check.top1.clear
    assert check.graph == "vision.fp32 on onnxruntime CPU" and check.margin == 2
    assert check.seconds is not None and check.seconds < 30  # measured ~3 s on two cores
    again = Manifest.from_dict(json.loads((tiny_bundle / MANIFEST_NAME).read_text()))
    assert again.decode_check == check  # round trip


def test_info_and_verify_show_the_check(tiny_bundle, capsys):
    assert cli_main(["info", str(tiny_bundle)]) == 0
    assert "decode check: draft vs exact JPEG decoding on 14 frames at 1920x1080, 4000x3000" in capsys.readouterr().out
    from bioclip_edge.export.verify import verify_bundle

    report = verify_bundle(tiny_bundle)
    assert "decode check:" in report.text() and "passed" in report.text()
    assert json.loads(report.to_json())["decode_check"]["passed"] is True


def test_older_bundles_without_the_record_still_open(tiny_bundle, tmp_path):
    old = edited_bundle(tiny_bundle, tmp_path, lambda m: m.pop("decode_check"))
    manifest = Bundle.open(old).manifest
    assert manifest.decode_check is None
    from bioclip_edge.runtime.inference.summary import describe_bundle

    assert "decode check: none recorded" in describe_bundle(old, manifest)


# --- auto, exact, draft --------------------------------------------------------------------------

def test_auto_drafts_on_a_passing_bundle(tiny_bundle):
    embedder = ImageEmbedder(tiny_bundle, ImageRequest(**FP32_ORT))
    assert embedder.decode_choice.mode == "draft" and "decode check passed" in embedder.decode_choice.reason
    assert embedder.decode.draft_size == embedder.transform.draft_size
    exact = ImageEmbedder(tiny_bundle, ImageRequest(decode="exact", **FP32_ORT))
    assert exact.decode_choice.mode == "exact" and exact.decode.draft_size is None


@pytest.mark.parametrize("edit,word", [
    (lambda m: m["decode_check"].update(passed=False), "failed"),
    (lambda m: m.pop("decode_check"), "records no decode check"),
])
def test_auto_decodes_exactly_when_the_check_failed_or_is_missing(tiny_bundle, tmp_path, edit, word):
    bundle = edited_bundle(tiny_bundle, tmp_path, edit)
    auto = ImageEmbedder(bundle, ImageRequest(**FP32_ORT))
    assert auto.decode_choice.mode == "exact" and word in auto.decode_choice.reason and auto.decode.draft_size is None
    forced = ImageEmbedder(bundle, ImageRequest(decode="draft", **FP32_ORT))  # the user's word wins
    assert forced.decode_choice.mode == "draft" and forced.decode.draft_size is not None


def test_choice_reasons_are_plain():
    assert choose_decode("exact", None).reason == "--decode exact"
    assert choose_decode("draft", None).reason == "--decode draft"
    assert choose_decode("auto", None).mode == "exact"
    with pytest.raises(OptionError, match="choose one of auto, exact, draft"):
        ImageRequest(decode="fast")


def test_cli_embed_exact_matches_the_local_exact_path_and_auto_drafts(tiny_bundle, frames, tmp_path):
    """``embed --decode exact`` embeds exactly what load_image + the transform + the graph give;
    ``draft`` stays within MIN_COSINE of it, and ``auto`` on this bundle (its check passed) is draft."""
    rows = {}
    for mode in ("exact", "draft", "auto"):
        out = tmp_path / f"{mode}.npy"
        assert cli_main(["embed", str(tiny_bundle), str(frames[0].parent), "--out", str(out), "--no-progress",
                         "--decode", mode, "--precision", "fp32", "--backend", "onnxruntime"]) == 0
        rows[mode] = (np.load(out), json.loads(out.with_suffix(".json").read_text()))
    exact, index = rows["exact"]
    assert index["decode"] == "exact" and index["decode_chosen_because"] == "--decode exact"
    direct = ImageEmbedder(tiny_bundle, ImageRequest(decode="exact", **FP32_ORT))
    want = direct.embed_images([load_image(im["filepath"]).image for im in index["images"]])
    np.testing.assert_allclose(exact, want, atol=1e-5)
    draft, draft_index = rows["draft"]
    assert draft_index["decode"].startswith("draft")
    assert ((draft * exact).sum(1) >= MIN_COSINE).all() and not np.array_equal(draft, exact)
    auto, auto_index = rows["auto"]
    assert auto_index["decode"].startswith("draft") and "check passed" in auto_index["decode_chosen_because"]
    assert auto_index["run_fingerprint"]["decode"] == "fast" != index["run_fingerprint"]["decode"]
    np.testing.assert_array_equal(auto, draft)


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


def test_resume_across_a_decode_change_is_refused(tiny_bundle, mixed_frames, tmp_path, capsys):
    out = tmp_path / "p.csv"
    base = ["classify", str(tiny_bundle), str(mixed_frames[0].parent), "--labels", "lion,zebra", "--out", str(out),
            "--no-progress"]
    assert cli_main([*base, "--decode", "exact"]) == 0
    capsys.readouterr()
    assert cli_main([*base, "--resume"]) == 2  # auto drafts on this bundle: another decoding
    assert "decoding (--decode exact or draft)" in capsys.readouterr().err


def test_fast_decode_is_a_deprecated_alias_for_draft(tiny_bundle, mixed_frames, tmp_path, capsys):
    folder = mixed_frames[0].parent
    out = tmp_path / "p.json"
    assert cli_main(["classify", str(tiny_bundle), str(folder), "--labels", "a,b", "--out", str(out),
                     "--no-progress", "--fast-decode"]) == 0
    err = capsys.readouterr().err
    assert "--fast-decode is deprecated; use --decode draft" in err and "decode: draft (--decode draft)" in err
    meta = json.loads(out.read_text())["info"]["classifier_metadata"]
    assert meta["decode"].startswith("draft") and meta["run_fingerprint"]["decode"] == "fast"
    assert ImageRequest(fast_decode=True).decode == "draft"  # the Python spelling too
    with pytest.raises(OptionError, match="cannot go with --decode exact"):
        ImageRequest(fast_decode=True, decode="exact")
    assert cli_main(["classify", str(tiny_bundle), str(folder), "--labels", "a,b", "--out", str(tmp_path / "q.json"),
                     "--fast-decode", "--decode", "exact"]) == 2


# --- MegaDetector crops ----------------------------------------------------------------------------

def test_crop_rule_keeps_twice_the_model_input():
    side = 448  # twice a 224 px model's input
    assert crop_draft_size((4000, 3000), [(0, 0, 2000, 1500)], side) is not None  # 1500 px: a draft may reduce by 2 or more
    assert crop_draft_size((4000, 3000), [(0, 0, 2000, 1500), (0, 0, 800, 600)], side) is None  # 600 < 2 x 448: exact
    assert crop_draft_size((4000, 3000), [], side) is None and crop_draft_size(None, [(0, 0, 9, 9)], side) is None
    square = crop_draft_size((4000, 3000), [(0, 0, 3000, 1800)], side)  # Pillow keeps both sides >= the square
    scale = min(4000 // square[0], 3000 // square[1])
    assert 1800 / max(s for s in (8, 4, 2, 1) if s <= scale) >= side


def test_detections_crop_from_a_draft_only_when_the_crop_keeps_the_margin(tiny_bundle, mixed_frames, tmp_path,
                                                                          monkeypatch):
    big = next(p for p in mixed_frames if p.name == "rocket.jpg")  # 4000x3000
    md = {"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"}, "images": [
        {"file": big.name, "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.6, 0.7]}]},  # 2400x2100
        {"file": "coffee.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.6, 0.7]}]},  # 1152x756
    ]}
    (tmp_path / "md.json").write_text(json.dumps(md))
    detections = read_detections(tmp_path / "md.json")
    scales: dict[str, int] = {}

    def recording(path, options):
        decoded = load_image(path, options)
        scales[Path(path).name] = decoded.scale
        return decoded

    monkeypatch.setattr(classifier_module, "load_image", recording)
    draft = Classifier(tiny_bundle, ["lion", "zebra"], decode_threads=0, **FP32_ORT)
    list(draft.iter_detections(detections, big.parent))
    assert scales == {"rocket.jpg": 4, "coffee.jpg": 1}  # 2100/4 = 525 >= 448; 756 < 2 x 448: exact
    exact = Classifier(tiny_bundle, ["lion", "zebra"], decode_threads=0, decode="exact", **FP32_ORT)
    a = [d["predictions"][0]["score"] for r in draft.iter_detections(detections, big.parent) for d in r["detections"]]
    b = [d["predictions"][0]["score"] for r in exact.iter_detections(detections, big.parent) for d in r["detections"]]
    assert scales == {"rocket.jpg": 1, "coffee.jpg": 1}  # --decode exact: every frame full size
    np.testing.assert_allclose(a, b, atol=2e-3)  # the drafted crop scores close to the exact one
    assert embedder_module.upright_size(big) == (4000, 3000)

"""--decode auto|exact|draft and the bundle's decode check (issue 14).

The export measures draft vs exact JPEG decoding on camera-trap-size frames and records it in the
manifest (``export.decode_check``); ``auto`` drafts only on a bundle whose check passed, and
exact decoding stays open_clip's preprocessing. MegaDetector crops draft only while the crop keeps
the whole-image margin (``decode_mode.crop_draft_size``).
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
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME, Manifest
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.images import embedder as embedder_module
from bioclip_edge.runtime.images.decode import load_image
from bioclip_edge.runtime.images.decode_mode import choose_decode, crop_draft_size
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.jobs import classifier as classifier_module
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.images.detections import read_detections
from tests.helpers.image_factory import photo

FP32_ORT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}  # decoding is what differs


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> list[Path]:
    """Three sample photos as 1920x1080 JPEGs and one as a 4000x3000 JPEG, as trail cameras write them."""
    folder = tmp_path_factory.mktemp("frames")
    sizes = {"astronaut": (1920, 1080), "chelsea": (1920, 1080), "coffee": (1920, 1080), "rocket": (4000, 3000)}
    for name, size in sizes.items():
        photo(name).resize(size, Image.Resampling.BICUBIC).save(folder / f"{name}.jpg", quality=90)
    return sorted(folder.glob("*.jpg"))


def edited_bundle(tiny_bundle: Path, folder: Path, edit) -> Path:
    """A copy of the tiny bundle whose manifest ``edit(dict)`` changed (as conftest's random_flagged_bundle)."""
    copy = folder / "edited"
    shutil.copytree(tiny_bundle, copy)
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    edit(manifest)
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    return copy


# --- the export's record -----------------------------------------------------------------------

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


def test_decode_exact_fp32_onnxruntime_matches_the_local_exact_path(tiny_bundle, frames, tmp_path):
    """The CLI with --decode exact embeds exactly what load_image + the transform + the graph give;
    the default (auto: draft on this bundle) stays within the check's bound of it."""
    rows = {}
    for mode in ("exact", "auto"):
        out = tmp_path / f"{mode}.npy"
        assert cli_main(["embed", str(tiny_bundle), str(frames[0].parent), "--out", str(out), "--no-progress",
                         "--decode", mode, "--precision", "fp32", "--backend", "onnxruntime"]) == 0
        index = json.loads(out.with_suffix(".json").read_text())
        rows[mode] = (np.load(out), index)
    exact, index = rows["exact"]
    assert index["decode"] == "exact" and index["decode_chosen_because"] == "--decode exact"
    direct = ImageEmbedder(tiny_bundle, ImageRequest(**FP32_ORT))
    want = direct.embed_images([load_image(im["filepath"]).image for im in index["images"]])
    np.testing.assert_allclose(exact, want, atol=1e-5)
    draft, auto_index = rows["auto"]
    assert auto_index["decode"].startswith("draft") and "check passed" in auto_index["decode_chosen_because"]
    assert auto_index["run_fingerprint"]["decode"] == "fast" != index["run_fingerprint"]["decode"]
    assert ((draft * exact).sum(1) >= 0.995).all() and not np.array_equal(draft, exact)


def test_resume_across_a_decode_change_is_refused(tiny_bundle, frames, tmp_path, capsys):
    out = tmp_path / "p.csv"
    base = ["classify", str(tiny_bundle), str(frames[0].parent), "--labels", "lion,zebra", "--out", str(out), "--no-progress"]
    assert cli_main([*base, "--decode", "exact"]) == 0
    capsys.readouterr()
    assert cli_main([*base, "--resume"]) == 2  # auto drafts on this bundle: another decoding
    assert "decoding (--decode exact or draft)" in capsys.readouterr().err


def test_fast_decode_is_a_deprecated_alias_for_draft(tiny_bundle, frames, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli_main(["classify", str(tiny_bundle), str(frames[0].parent), "--labels", "a,b", "--out", str(out),
                     "--no-progress", "--fast-decode"]) == 0
    err = capsys.readouterr().err
    assert "--fast-decode is deprecated; use --decode draft" in err and "decode: draft (--decode draft)" in err
    meta = json.loads(out.read_text())["info"]["classifier_metadata"]
    assert meta["decode"].startswith("draft") and meta["run_fingerprint"]["decode"] == "fast"
    assert ImageRequest(fast_decode=True).decode == "draft"  # the Python spelling too
    with pytest.raises(OptionError, match="cannot go with --decode exact"):
        ImageRequest(fast_decode=True, decode="exact")
    assert cli_main(["classify", str(tiny_bundle), str(frames[0].parent), "--labels", "a,b", "--out", str(tmp_path / "q.json"),
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


def test_detections_crop_from_a_draft_only_when_the_crop_keeps_the_margin(tiny_bundle, frames, tmp_path, monkeypatch):
    big = next(p for p in frames if p.name == "rocket.jpg")  # 4000x3000
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

"""``labels adapt`` on boxes: CSV box columns and a MegaDetector file make each example a crop, cut
by ``classify --detections``' rule. Frames are real photos pasted into a real background at a
known, pixel-exact place (PNG, so the crop gives back the pasted pixels exactly)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.cli import main
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.detections import DetectionsFileError
from bioclip_edge.runtime.adaptation.example_boxes import boxes_from_detections
from bioclip_edge.runtime.adaptation.examples import Example, ExamplesError, embed_examples, read_examples
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.adaptation.site import AdaptRequest, adapt
from tests.helpers.image_factory import photo

FRAME = (640, 480)
BOX = (0.5, 0.25, 0.3125, 0.3125)  # pixels 320..520 x 120..270: exact in binary fractions
DECOY = (0.03125, 0.0625, 0.25, 0.25)
SUBJECTS = {"a cat": "chelsea", "a rocket": "rocket"}


def _frame(subject: str, box=BOX) -> tuple[Image.Image, Image.Image]:
    """A gravel frame with ``subject`` pasted into ``box``; returns (frame, the pasted pixels)."""
    frame = photo("gravel").convert("RGB").resize(FRAME)
    w, h = round(box[2] * FRAME[0]), round(box[3] * FRAME[1])
    patch = photo(subject).convert("RGB").resize((w, h))
    frame.paste(patch, (round(box[0] * FRAME[0]), round(box[1] * FRAME[1])))
    return frame, patch


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Two labelled PNG frames per label, in train/<label>/, and the pasted subjects."""
    root = tmp_path_factory.mktemp("boxes")
    patches = {}
    for label, subject in SUBJECTS.items():
        (root / "train" / label).mkdir(parents=True)
        for i in range(2):
            frame, patch = _frame(subject)
            frame.save(root / "train" / label / f"f{i}.png")
            patches[f"{label}/f{i}.png"] = patch
    return root, patches


def _md(path, entries: dict[str, list[tuple[tuple, float]]]) -> str:
    images = [{"file": name, "detections": [{"category": "1", "conf": conf, "bbox": list(box)} for box, conf in dets]}
              for name, dets in entries.items()]
    path.write_text(json.dumps({"images": images, "detection_categories": {"1": "animal", "2": "person"},
                                "info": {"format_version": "1.4"}}))
    return str(path)


def _embedder(bundle) -> ImageEmbedder:
    return ImageEmbedder(str(bundle), "fp32")


def test_a_boxed_example_is_the_pasted_subject_cut_by_classify_s_rule(trained_fp32_bundle, frames):
    root, patches = frames
    embedder = _embedder(trained_fp32_bundle)
    name = "a cat/f0.png"
    boxed = embed_examples(embedder, [Example(root / "train" / name, "a cat", name, bbox=BOX)], n_views=1)
    whole = embed_examples(embedder, [Example(root / "train" / name, "a cat", name)], n_views=1)
    subject = embedder.embed_images([patches[name]])
    np.testing.assert_allclose(boxed.features[0], subject[0], atol=1e-5)
    assert float(whole.features[0] @ subject[0]) < 0.99  # the whole frame is not the subject
    assert boxed.digest != whole.digest  # the box enters the examples' digest


@pytest.mark.parametrize("layout", ["four-columns", "one-column"])
def test_csv_box_columns_in_either_layout(frames, tmp_path, layout):
    root, _ = frames
    csv_path = root / f"examples-{layout}.csv"
    with open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        if layout == "four-columns":
            writer.writerow(["filepath", "label", "bbox_x", "bbox_y", "bbox_w", "bbox_h"])
            writer.writerow(["train/a cat/f0.png", "a cat", *BOX])
            writer.writerow(["train/a cat/f0.png", "a rocket", *DECOY])  # a second animal in the same frame
            writer.writerow(["train/a rocket/f0.png", "a rocket", "", "", "", ""])  # no box: the whole frame
        else:
            writer.writerow(["filepath", "label", "bbox"])
            writer.writerow(["train/a cat/f0.png", "a cat", ",".join(map(str, BOX))])
            writer.writerow(["train/a cat/f0.png", "a rocket", "[" + ",".join(map(str, DECOY)) + "]"])
            writer.writerow(["train/a rocket/f0.png", "a rocket", ""])
    examples = read_examples(csv_path)
    assert [(e.label, e.bbox) for e in examples] == [("a cat", BOX), ("a rocket", DECOY), ("a rocket", None)]


@pytest.mark.parametrize("cells", [["0.5", "0.25", "1.3", "0.1"], ["0.5", "x", "0.1", "0.1"], ["0.5", "0.2", "0", "0.1"]])
def test_a_bad_box_names_the_line_and_the_rule(frames, cells):
    root, _ = frames
    csv_path = root / "bad-box.csv"
    csv_path.write_text("filepath,label,bbox_x,bbox_y,bbox_w,bbox_h\ntrain/a cat/f0.png,a cat," + ",".join(cells) + "\n")
    with pytest.raises(ExamplesError, match=r"line 2: the box .* fraction 0-1"):
        read_examples(csv_path)


def test_megadetector_boxes_take_the_most_confident_animal_and_skip_frames_without_one(frames, tmp_path):
    root, _ = frames
    md = _md(tmp_path / "md.json", {
        "a cat/f0.png": [(DECOY, 0.4), (BOX, 0.9), ((0.0, 0.0, 1.0, 1.0), 0.95)],  # the 0.95 box is a person
        "a cat/f1.png": [(BOX, 0.1)],  # below the threshold
        "a rocket/f0.png": [(BOX, 0.6)],
    })
    data = json.loads(open(md).read())
    data["images"][0]["detections"][2]["category"] = "2"
    open(md, "w").write(json.dumps(data))
    kept, skipped = boxes_from_detections(read_examples(root / "train"), md, threshold=0.2)
    assert [(e.filepath, e.bbox) for e in kept] == [("a cat/f0.png", BOX), ("a rocket/f0.png", BOX)]
    assert [name for name, _ in skipped] == ["a cat/f1.png", "a rocket/f1.png"]
    assert "no animal box with conf >= 0.2" in skipped[0][1] and "not in --detections" in skipped[1][1]
    kept, skipped = boxes_from_detections(read_examples(root / "train"), md, threshold=0.05)
    assert [e.filepath for e in kept] == ["a cat/f0.png", "a cat/f1.png", "a rocket/f0.png"]


def test_adapt_with_detections_end_to_end(trained_fp32_bundle, frames, tmp_path, capsys):
    root, patches = frames
    md = _md(tmp_path / "md.json", {"a cat/f0.png": [(BOX, 0.9)], "a cat/f1.png": [(BOX, 0.1)],
                                    "a rocket/f0.png": [(BOX, 0.7)], "a rocket/f1.png": [(BOX, 0.8)]})
    out = tmp_path / "site.npz"
    assert main(["labels", "adapt", str(trained_fp32_bundle), "--examples", str(root / "train"), "--detections", md,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "skipped a cat/f1.png: no animal box with conf >= 0.2" in printed
    matrix = LabelMatrix.load(out)
    source = matrix.meta["source"]
    assert source["shots"] == {"a cat": 1, "a rocket": 2}
    assert source["examples"]["detections"] == md and source["examples"]["skipped"] == 1
    from bioclip_edge.runtime.adaptation.site import describe

    assert f"boxes: each frame's most confident animal box in {md} (conf >= 0.2)" in describe(source)
    # the adapted rows still tell the two subjects apart
    embedder = _embedder(trained_fp32_bundle)
    emb = embedder.embed_images([patches["a cat/f0.png"], patches["a rocket/f0.png"]])
    idx, _ = matrix.topk(emb, k=1)
    assert list(idx[:, 0]) == [0, 1]


def test_a_label_left_without_a_box_is_an_error_naming_it(trained_fp32_bundle, frames, tmp_path):
    root, _ = frames
    md = _md(tmp_path / "md.json", {"a cat/f0.png": [(BOX, 0.9)], "a rocket/f0.png": [(BOX, 0.05)]})
    with pytest.raises(ExamplesError, match=r"label 'a rocket' has no example with a box"):
        adapt(AdaptRequest(trained_fp32_bundle, root / "train", tmp_path / "x.npz", detections=tmp_path / "md.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DetectionsFileError, match="not valid JSON"):
        adapt(AdaptRequest(trained_fp32_bundle, root / "train", tmp_path / "x.npz", detections=tmp_path / "bad.json"))



def test_a_box_is_cut_from_the_upright_frame(trained_fp32_bundle, tmp_path):
    """MegaDetector's boxes are on the frame as shown (EXIF orientation applied), and so is the cut."""
    from bioclip_edge.runtime.images.detections import crop_box

    frame, patch = _frame("chelsea")
    stored = frame.transpose(Image.Transpose.ROTATE_90)  # orientation 6: shown after turning 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "turned.jpg", quality=95, exif=exif)
    embedder = _embedder(trained_fp32_bundle)
    boxed = embed_examples(embedder, [Example(tmp_path / "turned.jpg", "a cat", "turned.jpg", bbox=BOX)], n_views=1)
    subject = embedder.embed_images([patch])[0]
    sideways = embedder.embed_images([stored.crop(crop_box(stored.width, stored.height, list(BOX)))])[0]
    upright = float(boxed.features[0] @ subject)
    assert upright > 0.97 and upright > float(sideways @ subject) + 0.05


def test_a_detections_name_two_examples_share_matches_neither_and_a_failed_frame_says_why(frames, tmp_path):
    """f0.png is in both label folders: an entry named only "f0.png" could be either frame, so it
    gives no box to any (never a guess); MegaDetector's own failure is the reason it gives."""
    root, _ = frames
    md = _md(tmp_path / "md.json", {"f0.png": [(BOX, 0.9)], "a rocket/f1.png": []})
    data = json.loads(open(md).read())
    data["images"][1]["failure"] = "Failure image access"
    open(md, "w").write(json.dumps(data))
    kept, skipped = boxes_from_detections(read_examples(root / "train"), md, threshold=0.2)
    assert kept == []
    reasons = dict(skipped)
    assert "not in --detections" in reasons["a cat/f0.png"] and "not in --detections" in reasons["a rocket/f0.png"]
    assert reasons["a rocket/f1.png"].startswith("megadetector: Failure image access")

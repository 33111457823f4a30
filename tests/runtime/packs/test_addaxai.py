"""The AddaxAI pack, loaded by AddaxAI's own classification worker (tests/data/addaxai, copied from
AddaxAI unchanged): its interface check, a batched run over boxes on real photos with degenerate
boxes among them, and top-1 against ``classify --detections`` on the same boxes."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.images.detections import crop_box
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME
from bioclip_edge.runtime.labels.build import build_label_matrix, read_label_source
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.packs.addaxai import AddaxPackRequest, pack_addaxai
from bioclip_edge.runtime.packs.addaxai_model import usable_box
from tests.helpers.trained_tiny import zero_shot_labels

ADDAXAI = Path(__file__).resolve().parents[2] / "data" / "addaxai"
TAXONOMY = {"a photo of a cat": "Animalia,Chordata,Mammalia,Carnivora,Felidae,Felis,Felis catus"}
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")
BOXES = ([0.0, 0.0, 1.0, 1.0], [0.2, 0.15, 0.6, 0.7], [0.05, 0.1, 0.35, 0.45], [0.55, 0.5, 0.45, 0.5],
         [0.5, 0.1, 0.001, 0.5])  # the last: thin but inside the frame, a one-pixel-wide crop
DEGENERATE = ([0.5, 0.5, 0.0, 0.3], [1.2, 0.1, 0.2, 0.2], [-0.5, -0.5, 0.3, 0.3], [0.1, 0.1, 0.2, -0.1])


@pytest.fixture(scope="module")
def labels_file(trained_fp32_bundle, tmp_path_factory) -> Path:
    """The trained model's zero-shot labels as a matrix, one with a taxonomy (a CSV with a name column)."""
    folder = tmp_path_factory.mktemp("pack-labels")
    rows = ["name,kingdom,phylum,class,order,family,genus,species"]
    rows += [f"{name},{TAXONOMY.get(name, ',,,,,,')}" for name in zero_shot_labels()]
    (folder / "site.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    table = read_label_source(folder / "site.csv")
    return build_label_matrix(Bundle.open(trained_fp32_bundle), table, folder / "site.npz", progress=False)


@pytest.fixture(scope="module")
def pack(trained_fp32_bundle, labels_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packs") / "addaxai-bioclip"
    return pack_addaxai(AddaxPackRequest(bundle=trained_fp32_bundle, labels=labels_file, out=out)).folder


@pytest.fixture(scope="module")
def worker():
    """AddaxAI's classification_worker module, imported as its subprocess does (its folder on sys.path).

    Importing it sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` for the whole process, as it does
    in AddaxAI's own; this module's tests run under it, and the switch is put back afterwards (the
    rest of the suite expects truncated JPEGs to fail)."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    sys.path.insert(0, str(ADDAXAI))
    try:
        spec = importlib.util.spec_from_file_location("addaxai_classification_worker", ADDAXAI / "classification_worker.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ADDAXAI))
    yield module
    ImageFile.LOAD_TRUNCATED_IMAGES = before


def test_pack_holds_vision_graphs_labels_and_addaxai_files(pack, trained_fp32_bundle, labels_file):
    assert sorted(p.name for p in pack.iterdir()) == ["bioclip-pack.json", "bundle", "inference.py", "labels.npz",
                                                      "manifest.json", "taxonomy.csv"]
    vision = Bundle.open(pack / "bundle")  # a bundle the runtime checks like any other
    assert [v.name for v in vision.manifest.variants] == ["vision.fp32"]
    assert not list(pack.rglob("text*.onnx")) and not (pack / "bundle" / "tokenizer").exists()
    original = Bundle.open(trained_fp32_bundle).variant("vision", "fp32")
    assert vision.variant("vision", "fp32").sha256 == original.sha256
    assert (pack / "labels.npz").read_bytes() == labels_file.read_bytes()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # AddaxAI's schema uses pydantic's class-based Config
def test_manifest_loads_into_addaxai_schema_and_taxonomy_matches_classes(pack, worker):
    pydantic = pytest.importorskip("pydantic")
    spec = importlib.util.spec_from_file_location("addaxai_model_manifest", ADDAXAI / "model_manifest.py")
    schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema)
    manifest = json.loads((pack / "manifest.json").read_text(encoding="utf-8"))
    model = schema.ModelManifest(**manifest)
    assert model.model_id == pack.name and model.env == "pytorch" and (pack / model.model_fname).is_file()
    with pytest.raises(pydantic.ValidationError):  # the schema does check: a manifest without env fails
        schema.ModelManifest(**{k: v for k, v in manifest.items() if k != "env"})

    with open(pack / "taxonomy.csv", newline="", encoding="utf-8") as fh:  # as AddaxAI's populate_taxonomy_from_csv reads it
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["model_class", "class", "order", "family", "genus", "species"]
    cat = next(r for r in rows if r["model_class"] == "a photo of a cat")
    assert [cat[k] for k in ("class", "order", "family", "genus", "species")] == ["mammalia", "carnivora", "felidae", "felis", "catus"]
    assert next(r for r in rows if r["model_class"] == "a photo of grass")["class"] == ""
    model_inference = worker.load_inference_class(pack, pack / model.model_fname)
    names = model_inference.get_class_names()
    assert {r["model_class"].lower() for r in rows} == {n.lower() for n in names.values()}
    assert list(names) == [str(i) for i in range(1, len(zero_shot_labels()) + 1)] and names["1"] == zero_shot_labels()[0]


def test_addaxai_validates_the_interface_and_the_template_methods_are_all_there(pack, worker):
    model_inference = worker.load_inference_class(pack, pack / "bioclip-pack.json")
    worker.validate_interface(model_inference)
    template = ast.parse((ADDAXAI / "inference_template.py").read_text(encoding="utf-8"))
    cls = next(n for n in template.body if isinstance(n, ast.ClassDef) and n.name == "ModelInference")
    wanted = {f.name for f in cls.body if isinstance(f, ast.FunctionDef) and not f.name.startswith("_")}
    assert wanted == {"check_gpu", "load_model", "get_crop", "get_classification", "get_class_names", "get_tensor", "classify_batch"}
    assert all(callable(getattr(model_inference, name)) for name in wanted)
    assert model_inference.check_gpu() is False  # this onnxruntime has no GPU provider: AddaxAI batches 1 by default


def test_worker_batches_boxes_and_top1_equals_classify_detections(pack, trained_fp32_bundle, labels_file, photo_dir, tmp_path):
    items = [{"source": "image", "image_path": str(photo_dir / f"{name}.jpg"), "bbox": box}
             for name in PHOTOS for box in BOXES]
    bad_at = [3, 9, 10, 20]  # degenerate boxes between good ones, so batches mix both
    for at, box in zip(bad_at, DEGENERATE):
        items.insert(at, {"source": "image", "image_path": str(photo_dir / "chelsea.jpg"), "bbox": box})
    (tmp_path / "in.json").write_text(json.dumps({"items": items, "scoring_detections": {}, "batch_size": 4}))
    run = subprocess.run([sys.executable, str(ADDAXAI / "classification_worker.py"), str(pack), str(pack / "bioclip-pack.json"),
                          str(tmp_path / "in.json"), str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Using batch inference (batch_size=4" in run.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    results = out["results"]
    for at in bad_at:
        assert results[at] == {"success": False, "error": f"Invalid crop for bbox {items[at]['bbox']}"}
    good = [(item, result) for i, (item, result) in enumerate(zip(items, results)) if i not in bad_at]
    assert all(r["success"] and len(r["classifications"]) == 5 for _, r in good)
    assert all(r["classifications"][0][1] >= r["classifications"][1][1] for _, r in good)

    expected = classify_top1(trained_fp32_bundle, labels_file, photo_dir, tmp_path)
    got = {(Path(item["image_path"]).name, tuple(item["bbox"])): r["classifications"][0][0] for item, r in good}
    assert got == expected
    assert len(set(got.values())) >= 4  # real photos, real answers: not one label for everything


def classify_top1(bundle: Path, labels: Path, photo_dir: Path, tmp_path: Path) -> dict[tuple[str, tuple], str]:
    """``bioclip-edge classify --detections`` over the same boxes: top-1 label per (file, box)."""
    md = {"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"}, "detection_categories": {"1": "animal"},
          "images": [{"file": f"{name}.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": box} for box in BOXES]}
                     for name in PHOTOS]}
    (tmp_path / "md.json").write_text(json.dumps(md))
    out = tmp_path / "classified.json"
    assert cli_main(["classify", str(bundle), str(photo_dir), "--detections", str(tmp_path / "md.json"),
                     "--labels", str(labels), "--out", str(out), "--no-progress"]) == 0
    doc = json.loads(out.read_text())
    names = doc["classification_categories"]
    return {(image["file"], tuple(det["bbox"])): names[det["classifications"][0][0]]
            for image in doc["images"] for det in image["detections"]}


def test_per_crop_path_returns_every_class_and_matches_the_batch_path(pack, worker, photo_dir):
    model_inference = worker.load_inference_class(pack, pack / "bioclip-pack.json")
    model_inference.load_model()
    image = Image.open(photo_dir / "coffee.jpg").convert("RGB")
    crop = model_inference.get_crop(image, (0.1, 0.1, 0.8, 0.8))
    single = model_inference.get_classification(crop)
    assert len(single) == len(zero_shot_labels()) and abs(sum(p for _, p in single) - 1.0) < 1e-4
    batch = model_inference.classify_batch(np.stack([model_inference.get_tensor(crop)] * 3))
    assert [name for name, _ in batch[2]] == [name for name, _ in single]
    np.testing.assert_allclose([p for _, p in batch[2]], [p for _, p in single], atol=1e-5)


def test_crops_come_from_the_upright_picture(pack, worker, photo_dir, tmp_path):
    """AddaxAI opens stills without EXIF orientation; boxes (MegaDetector's, classify's) are on the upright picture."""
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: turn 90 degrees clockwise to view
    Image.open(photo_dir / "astronaut.jpg").crop((0, 0, 512, 320)).save(tmp_path / "turned.jpg", exif=exif, quality=95)
    frame = Image.open(tmp_path / "turned.jpg").convert("RGB")  # what AddaxAI's worker hands over
    model_inference = worker.load_inference_class(pack, pack / "bioclip-pack.json")
    box = (0.0, 0.0, 0.5, 0.25)
    upright = ImageOps.exif_transpose(Image.open(tmp_path / "turned.jpg")).convert("RGB")
    want = upright.crop(crop_box(upright.width, upright.height, list(box)))
    got = model_inference.get_crop(frame, box)
    assert got.size == want.size != frame.crop(crop_box(frame.width, frame.height, list(box))).size
    assert np.array_equal(np.asarray(got), np.asarray(want))


def test_degenerate_boxes_are_refused_and_thin_ones_kept():
    assert [usable_box(b) for b in DEGENERATE] == [None] * 4
    assert usable_box([0.2, 0.2, float("nan"), 0.1]) is None and usable_box("box") is None and usable_box([1, 2]) is None
    assert usable_box((0.5, 0.1, 0.001, 0.5)) == [0.5, 0.1, 0.001, 0.5]
    assert usable_box([-0.1, -0.1, 0.2, 0.2]) == [-0.1, -0.1, 0.2, 0.2]  # partly inside: clamped by crop_box


def test_missing_bioclip_edge_says_what_to_install(pack, worker, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioclip_edge.runtime.packs.addaxai_model", None)  # as if not installed
    with pytest.raises(ImportError) as caught:
        worker.load_inference_class(pack, pack / "bioclip-pack.json")
    message = str(caught.value)
    assert f'"{sys.executable}" -m pip install "bioclip-edge>=' in message and str(pack) in message


def test_text_labels_are_packed_as_a_matrix(trained_fp32_bundle, tmp_path, capsys):
    out = tmp_path / "bioclip-two"
    assert cli_main(["pack", "addaxai", str(trained_fp32_bundle), "--labels", "a photo of a cat,a photo of a rocket",
                     "--out", str(out), "--precision", "fp32", "--name", "Two labels", "--region", "africa"]) == 0
    assert "AddaxAI model 'bioclip-two', 2 labels" in capsys.readouterr().out
    assert LabelMatrix.load(out / "labels.npz").names == ["a photo of a cat", "a photo of a rocket"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["friendly_name"] == "Two labels" and manifest["region"] == "africa"
    assert not list(out.rglob("text*.onnx")) and not list(tmp_path.glob(".bioclip-two*"))
    first = (out / "labels.npz").stat().st_mtime_ns
    assert cli_main(["pack", "addaxai", str(trained_fp32_bundle), "--labels", "a photo of a cat,a photo of grass",
                     "--out", str(out), "--overwrite"]) == 0
    assert LabelMatrix.load(out / "labels.npz").names[1] == "a photo of grass" and (out / "labels.npz").stat().st_mtime_ns >= first


@pytest.mark.parametrize("args, message", [
    (["--precision", "int8"], "no variant 'vision.int8'"),
    (["--env", "megadetector"], "AddaxAI runs classifiers in pytorch"),
    (["--region", "mars"], "--region 'mars'"),
    (["--labels", "Lion,lion"], "same name to AddaxAI"),
])
def test_bad_requests_are_refused_before_anything_is_written(trained_fp32_bundle, tmp_path, capsys, args, message):
    out = tmp_path / "pack"
    argv = ["pack", "addaxai", str(trained_fp32_bundle), "--out", str(out)]
    argv += args if "--labels" in args else ["--labels", "a photo of a cat,a photo of grass", *args]
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_existing_folders_are_not_replaced_without_overwrite(trained_fp32_bundle, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    base = ["pack", "addaxai", str(trained_fp32_bundle), "--labels", "a photo of a cat,a photo of grass"]
    assert cli_main(base + ["--out", str(tmp_path / "taken")]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert cli_main(base + ["--out", str(tmp_path / "taken"), "--overwrite"]) == 2
    assert "not a model pack" in capsys.readouterr().err and (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "other-model").mkdir()  # another AddaxAI model: it has a manifest.json too, but is not ours
    (tmp_path / "other-model" / "manifest.json").write_text("{}")
    assert cli_main(base + ["--out", str(tmp_path / "other-model"), "--overwrite"]) == 2
    assert "not a model pack" in capsys.readouterr().err and (tmp_path / "other-model" / "manifest.json").read_text() == "{}"
    assert cli_main(base + ["--out", str(tmp_path / "bad name!")]) == 2
    assert "AddaxAI's model id" in capsys.readouterr().err


def test_worker_classifies_boxes_on_video_frames(pack, photo_dir, tmp_path):
    """AddaxAI streams video frames with OpenCV and crops each frame's boxes through the same get_crop."""
    pytest.importorskip("av")
    from tests.helpers.video_factory import write_video

    video = str(write_video(tmp_path / "clip.mp4", photo_dir / "chelsea.jpg", seconds=2.0, size=(320, 240)))
    boxes = [[0.1, 0.1, 0.6, 0.8], [0.3, 0.2, 0.5, 0.5], [0.4, 0.4, 0.0, 0.2]]  # the last: zero width
    items = [{"source": "video", "video_path": video, "frame_number": n, "bbox": box, "detection_conf": 0.9}
             for n, box in ((3, boxes[0]), (12, boxes[1]), (12, boxes[2]))]
    scoring = {video: [{"frame_number": i["frame_number"], "conf": 0.9, "bbox": i["bbox"]} for i in items]}
    payload = {"items": items, "scoring_detections": scoring, "best_frame_outputs": {video: str(tmp_path / "best")},
               "batch_size": 2}
    (tmp_path / "in.json").write_text(json.dumps(payload))
    run = subprocess.run([sys.executable, str(ADDAXAI / "classification_worker.py"), str(pack), str(pack / "bioclip-pack.json"),
                          str(tmp_path / "in.json"), str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    first, second, thin = out["results"]
    assert first["success"] and second["success"] and len(first["classifications"]) == 5
    assert thin == {"success": False, "error": f"Invalid crop for bbox {boxes[2]}"}
    assert out["best_frames"][video] in (3, 12) and list((tmp_path / "best").glob("frame*.jpg"))


def test_very_large_label_sets_return_the_best_classes_only(pack, worker, photo_dir, monkeypatch):
    from bioclip_edge.runtime.packs import addaxai_model

    model_inference = worker.load_inference_class(pack, pack / "bioclip-pack.json")
    crop = model_inference.get_crop(Image.open(photo_dir / "rocket.jpg").convert("RGB"), (0.2, 0.0, 0.6, 1.0))
    every = model_inference.get_classification(crop)
    monkeypatch.setattr(addaxai_model, "MAX_CLASSES_RETURNED", 3)
    best = model_inference.get_classification(crop)
    assert len(every) == len(zero_shot_labels()) and [n for n, _ in best] == [n for n, _ in every[:3]]
    np.testing.assert_allclose([p for _, p in best], [p for _, p in every[:3]], atol=1e-6)  # still softmax over all

"""``export`` without ``--calibration``: the NNCF int8 variant is calibrated on the built-in sample
photos (export/calibration.py), recorded in the manifest, shown by export, info and verify, and
picked by ``classify``'s defaults on a CPU with int8 kernels. The bundle is ``default_export``
(tests/export/conftest.py); ``--no-nncf`` is checked with the architectures in test_export.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bioclip_edge.cli import main
from bioclip_edge.export.build import ExportConfig, ExportError, export_bundle
from bioclip_edge.export.calibration import BUILTIN_CROP_SEED, builtin_calibration
from bioclip_edge.export.precision import nncf_available
from bioclip_edge.export.sources import ModelRequest
from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.inference import backends
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.runtime.inference.selection import FAST_NNCF_PRESETS, select_vision
from bioclip_edge.runtime.inference.summary import quantization_notes

AMX = ("FP32", "BF16", "FP16", "INT8", "BIN", "EXPORT_IMPORT", "AMX")  # what OpenVINO reports on a Xeon with AMX, plus our AMX marker
VNNI_ONLY = ("FP32", "INT8", "BIN", "EXPORT_IMPORT")
needs_nncf = pytest.mark.skipif(not nncf_available(), reason="nncf is not installed")


@needs_nncf
def test_export_without_calibration_calibrates_nncf_on_builtin_photos(default_export):
    out, printed = default_export.path, default_export.printed
    assert "no --calibration folder: calibrating the NNCF int8 variant on built-in sample photos " \
           "(16 photos + 16 augmented crops): scikit-image's astronaut, chelsea" in printed
    assert "night IR" in printed and "--calibration DIR" in printed
    m = Bundle.open(out).manifest
    names = [v.name for v in m.variants]
    assert "vision.int8-nncf" in names and "vision.int8-static" not in names  # static QDQ only on the user's frames
    nncf = m.variant("vision", name="vision.int8-nncf")
    cal = nncf.quantization["calibration"]
    assert cal["kind"] == "builtin" and cal["images"] == 32 and cal["folder"] is None
    assert cal["source"] == "built-in sample photos (16 photos + 16 augmented crops)"
    assert cal["crop_seed"] == BUILTIN_CROP_SEED and cal["method"] == f"nncf-{nncf.quantization['preset']}"
    assert nncf.parity.passed and "gate on 96 images" in nncf.quantization["preset_note"]  # 64 parity + 32 calibration
    assert nncf.quantization["preset"] in FAST_NNCF_PRESETS  # one of the fast presets passed the gate
    assert f"vision.int8-nncf: NNCF {nncf.quantization['preset']} preset, calibrated on built-in sample photos" in printed


@needs_nncf
def test_info_and_verify_show_the_calibration_source(default_export, capsys):
    out = default_export.path
    preset = Bundle.open(out).variant("vision", name="vision.int8-nncf").quantization["preset"]
    for command in ("info", "verify"):
        assert main([command, str(out)]) == 0
        shown = capsys.readouterr().out
        assert f"vision.int8-nncf: NNCF {preset} preset, calibrated on built-in sample photos " \
               "(16 photos + 16 augmented crops)" in shown, command
        assert "note: built-in photos are daylight pictures" in shown, command


@needs_nncf
def test_defaults_pick_the_builtin_calibrated_graph_on_int8_cpus(default_export, tmp_path, photo_dir, monkeypatch):
    out = default_export.path
    bundle = Bundle.open(out)
    preset = bundle.variant("vision", name="vision.int8-nncf").quantization["preset"]
    assert preset in FAST_NNCF_PRESETS  # taken over bf16 on every int8 CPU, AMX or not
    for caps in (AMX, VNNI_ONLY):
        chosen = select_vision(bundle, caps=caps)
        assert (chosen.variant.name, chosen.backend) == ("vision.int8-nncf", "openvino")
    assert select_vision(bundle, caps=()).variant.name == "vision.int8"  # no OpenVINO: onnxruntime dynamic int8
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed: classify cannot run the NNCF graph here")
    monkeypatch.setattr(backends, "openvino_capabilities", lambda: AMX)
    predictions = tmp_path / "p.json"
    assert main(["classify", str(out), str(photo_dir), "--labels", "cat,dog", "--out", str(predictions),
                 "--no-progress"]) == 0
    meta = json.loads(predictions.read_text())["info"]["classifier_metadata"]
    assert meta["variant"] == "vision.int8-nncf" and meta["backend"].startswith("OpenVINO")
    assert f"NNCF {preset}-preset" in meta["chosen_because"]


def test_calibration_images_must_be_positive(tiny_model_dir: Path, tmp_path: Path):
    with pytest.raises(ExportError, match="--calibration-images 0: .* 32 built-in"):
        export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=tmp_path / "x",
                                   calibration_images=0))


def test_builtin_set_is_whole_photos_then_seeded_crops():
    small = builtin_calibration(8)
    assert (len(small.images()), small.count, small.crops) == (8, 8, 0) and small.source() == \
        "built-in sample photos (8 photos + 0 augmented crops)"
    again = builtin_calibration(20)
    assert (len(again.images()), again.count, again.crops) == (20, 20, 4)
    assert [im.size for im in again.images()] == [im.size for im in builtin_calibration(20).images()]  # seeded


def test_notes_name_user_folders_in_bundles_from_before_the_source_phrase():
    def variant(name: str, quantization: dict) -> Variant:
        return Variant(name=name, tower="vision", precision="int8", file=f"{name}.onnx", sha256="0" * 64,
                       size_bytes=1, opset=20, input_name="pixels", output_name="embeddings",
                       quantization=quantization)

    old = {"mode": "static", "calibration": {"folder": "/data/cards", "images": 6, "method": "minmax"}}
    notes = quantization_notes([variant("vision.int8-static", old), variant("vision.int8", {"mode": "dynamic"})])
    assert notes == ["vision.int8-static: calibrated on user folder /data/cards (6 images)"]

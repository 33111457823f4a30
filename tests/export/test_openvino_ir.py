"""The NNCF int8 graph as an OpenVINO IR (``Variant.format`` ``openvino-ir``): what large towers
(ViT-L/14 and up) get, forced here on the tiny model with ``nncf_format="openvino-ir"``.

Covers the export (files, checksums, parity measured through OpenVINO, the preset fallback's file
renames), the manifest's file kind, and the runtime: ``auto`` runs it on OpenVINO, onnxruntime
is refused with a message, ``verify`` and ``info`` show it, a missing weights file stops the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.export.build import ExportConfig, export_bundle
from bioclip_edge.export.precision import nncf_available
from bioclip_edge.export.sources import ModelRequest
from bioclip_edge.runtime.inference.backends import openvino_capabilities
from bioclip_edge.runtime.inference.bundle import Bundle, BundleError
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME, Manifest, ManifestError
from tests.helpers.nncf_gate import force_preset_fallback

pytestmark = pytest.mark.skipif(not (nncf_available() and openvino_capabilities()), reason="needs nncf and OpenVINO")


@pytest.fixture(scope="module")
def ir_bundle(tmp_path_factory, tiny_model_dir: Path) -> Path:
    """The tiny model with its NNCF graph as OpenVINO IR, written through the preset fallback: a
    gate no graph can pass makes ``auto`` measure all three presets, and the ranking is made to pick
    performance-sq, the candidate measured second, whose .xml and .bin then take the variant's file
    names. Read-only."""
    out = tmp_path_factory.mktemp("ir") / "tiny-ir"
    with pytest.MonkeyPatch.context() as mp:
        measured = force_preset_fallback(mp)
        export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=out, precisions=("fp32", "int8"),
                                   parity_images=6, calibration_images=8, nncf_format="openvino-ir"))
    assert len(measured) == 3  # performance, performance-sq, transformer
    return out


def test_export_writes_the_nncf_graph_as_openvino_ir_with_checksums_and_parity(ir_bundle: Path):
    bundle = Bundle.open(ir_bundle, reuse_verified=False)
    v = bundle.variant("vision", name="vision.int8-nncf")
    assert (v.format, v.file, v.data_file) == ("openvino-ir", "vision.int8-nncf.xml", "vision.int8-nncf.bin")
    assert v.data_size_bytes == (ir_bundle / v.data_file).stat().st_size and len(v.data_sha256) == 64
    assert v.parity is not None and v.parity.passed and v.parity.cosine_min > 0.98  # measured through OpenVINO
    assert v.quantization["tool"] == "nncf" and v.quantization["calibration"]["kind"] == "builtin"
    assert v.quantization["calibration"]["images"] == 8
    raw = json.loads((ir_bundle / MANIFEST_NAME).read_text())
    kinds = {r["name"]: r.get("format") for r in raw["variants"]}
    assert kinds["vision.int8-nncf"] == "openvino-ir" and kinds["vision.fp32"] is None  # onnx is left out
    resources = raw["export_resources"]
    params = raw["model"]["params_vision"] + raw["model"]["params_text"]
    assert 4 * params <= resources["fp32_weights_bytes"] <= 4 * params + 1024  # + logit scale and the like
    assert resources["peak_rss_bytes"] > 100e6 and resources["seconds"] > 0


def test_gate_fallback_measures_every_preset_and_renames_the_ir_pair(ir_bundle: Path):
    """Every preset missed the gate and was measured; the chosen candidate's .xml and .bin took the
    variant's names, the other candidates' pairs are gone, and ``--precision auto`` leaves a graph
    that missed the gate alone."""
    from bioclip_edge.runtime.inference.selection import select_vision
    from bioclip_edge.runtime.inference.summary import quantization_notes

    bundle = Bundle.open(ir_bundle)
    v = bundle.variant("vision", name="vision.int8-nncf")
    note = v.quantization["preset_note"]
    assert all(f"{p} preset missed the gate" in note for p in ("performance", "performance-sq", "transformer"))
    assert "performance-sq preset written as the closer to fp32" in note and "gate on 14 images" in note  # 6 + 8
    assert v.quantization["preset"] == "performance-sq" and v.quantization["gate_passed"] is False
    assert sorted(p.name for p in ir_bundle.glob("vision.int8-nncf*")) == ["vision.int8-nncf.bin", "vision.int8-nncf.xml"]
    assert not list(ir_bundle.glob("*transformer*")) and not list(ir_bundle.glob("*performance*"))
    assert select_vision(bundle, "auto", "auto", caps=("FP32", "BF16", "INT8")).variant.name == "vision.fp32"
    assert any("missed the preset gate" in line for line in quantization_notes(bundle.manifest.variants))


def test_performance_sq_ir_keeps_the_output_projection_float(ir_bundle: Path):
    """performance-sq: SmoothQuant on the performance preset, and the tower's last MatMul (the output
    projection) left in floating point. In the IR a quantized MatMul takes its input through a
    FakeQuantize; the projection takes float weights straight from a constant."""
    import openvino as ov

    ops = ov.Core().read_model(str(ir_bundle / "vision.int8-nncf.xml")).get_ordered_ops()
    matmuls = [op for op in ops if op.get_type_name() == "MatMul"]
    sources = [[op.input_value(i).get_node() for i in range(op.get_input_size())] for op in matmuls]
    quantized = [any(s.get_type_name() == "FakeQuantize" for s in inputs) for inputs in sources]
    assert not quantized[-1]  # the projection: float input ...
    weights = sources[-1][1]
    assert weights.get_type_name() == "Constant" and weights.get_element_type() == ov.Type.f32  # ... and float weights
    assert sum(quantized) >= len(matmuls) // 2  # the blocks' matmuls are int8


def test_auto_runs_the_ir_on_openvino_and_onnxruntime_is_refused(ir_bundle: Path, photo_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "auto.csv"
    assert cli_main(["classify", str(ir_bundle), str(photo_dir), "--labels", "cat,rocket,person", "--out", str(out),
                     "--precision", "int8-nncf"]) == 0
    said = capsys.readouterr()
    assert "vision.int8-nncf on OpenVINO" in said.out + said.err and len(out.read_text().splitlines()) == 7
    code = cli_main(["classify", str(ir_bundle), str(photo_dir), "--labels", "cat,rocket", "--out", str(tmp_path / "x.csv"),
                     "--precision", "int8-nncf", "--backend", "onnxruntime"])
    err = capsys.readouterr().err
    assert code == 2 and "OpenVINO IR" in err and "only OpenVINO runs" in err and not (tmp_path / "x.csv").exists()


def test_verify_and_info_show_the_ir(ir_bundle: Path, capsys):
    assert cli_main(["verify", str(ir_bundle)]) == 0
    assert "vision.int8-nncf" in capsys.readouterr().out
    assert cli_main(["info", str(ir_bundle)]) == 0
    text = capsys.readouterr().out
    assert "OpenVINO IR (vision.int8-nncf.xml + vision.int8-nncf.bin): runs on OpenVINO only" in text
    assert "export:" in text and "peak resident memory" in text


def test_a_missing_ir_weights_file_is_refused_by_name(ir_bundle: Path, tmp_path: Path):
    broken = tmp_path / "broken"
    shutil.copytree(ir_bundle, broken)
    (broken / "vision.int8-nncf.bin").unlink()
    with pytest.raises(BundleError, match="vision.int8-nncf.bin.*missing"):
        Bundle.open(broken)


def test_an_unknown_file_kind_is_refused_with_what_to_do(ir_bundle: Path):
    data = json.loads((ir_bundle / MANIFEST_NAME).read_text())
    for v in data["variants"]:
        if v["name"] == "vision.int8-nncf":
            v["format"] = "tflite"
    with pytest.raises(ManifestError, match="unknown format 'tflite'.*upgrade bioclip-edge"):
        Manifest.from_dict(data)


def test_verify_without_openvino_says_the_ir_was_not_measured(ir_bundle: Path, monkeypatch, capsys):
    import bioclip_edge.export.verify as verify

    monkeypatch.setattr(verify, "openvino_capabilities", lambda: ())
    report = verify.verify_bundle(ir_bundle)
    assert report.unmeasured == ("vision.int8-nncf",) and report.passed  # the ONNX variants were measured
    assert "not re-measured" in report.text() and "bioclip-edge[openvino]" in report.text()

"""Export: bundles for the architectures users bring, checked variant by variant.

Tests marked ``export`` run an export of their own for one option or architecture (``--run-export``
or ``make test-slow``); what they reach is also reached by the default suite's exports: the mixed
architecture below, ``tiny_bundle``, ``default_export`` and the OpenVINO IR bundle (whose NNCF graph
goes through the preset fallback and is performance-sq).
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bioclip_edge.cli import main
from bioclip_edge.export.build import ExportConfig, ExportError, export_bundle
from bioclip_edge.export.parity import BOUNDS
from bioclip_edge.export.precision import nncf_available
from bioclip_edge.export.sources import ModelRequest, SourceError, load_model
from bioclip_edge.runtime.inference.bundle import Bundle, sha256_file
from tests.helpers.models import TINY_VIT_CFG, write_model_dir
from tests.helpers.nncf_gate import force_preset_fallback

# Tiny versions of the families the seed documents name: same code paths, seconds to export.
TINY_QUICKGELU_B32 = {**TINY_VIT_CFG, "quick_gelu": True}
TINY_RN50 = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
# MetaCLIP 2 worldwide: xlm-v token ids (eos pooling, eos_id 2), a tokenizer that lives on the hub.
TINY_WORLDWIDE = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"hf_tokenizer_name": "facebook/xlm-v-base", "pool_type": "eos", "eos_id": 2,
                 "context_length": 77, "vocab_size": 5000, "width": 64, "heads": 2, "layers": 2},
}
# One model that takes each of those paths: a ResNet image tower, QuickGELU, an eos-pooled text
# tower whose tokenizer is on the hub.
TINY_MIXED = {**TINY_WORLDWIDE, "vision_cfg": TINY_RN50["vision_cfg"], "quick_gelu": True}
needs_nncf = pytest.mark.skipif(not nncf_available(), reason="nncf is not installed")


def test_tiny_bundle_has_every_variant_within_bounds(tiny_bundle: Path):
    bundle = Bundle.open(tiny_bundle)
    m = bundle.manifest
    names = [v.name for v in m.variants]
    expected = ["vision.fp32", "vision.fp16", "vision.int8", "text.fp32", "text.fp16", "text.int8", "vision.int8-static"]
    if nncf_available():
        expected.append("vision.int8-nncf")
        nncf_variant = bundle.variant("vision", name="vision.int8-nncf")
        assert nncf_variant.quantization["tool"] == "nncf" and nncf_variant.quantization["calibration"]["images"] == 6
    assert names == expected
    assert m.model.source.kind == "local-dir" and not m.model.source.random_weights
    assert m.model.embed_dim == 32 and m.model.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
    assert m.preprocess.image_size == (224, 224) and m.preprocess.resize_mode == "shortest"
    assert m.tokenizer.kind == "clip_bpe" and m.tokenizer.eot_id == 49407 and m.tokenizer.available
    for v in m.variants:
        assert v.parity is not None and v.parity.passed, (v.name, v.parity)
        assert sha256_file(bundle.path(v.file)) == v.sha256
        assert v.parity.n_inputs > 0 and v.parity.top1_agreement is not None
    static = bundle.variant("vision", name="vision.int8-static")
    assert static.quantization["mode"] == "static" and static.quantization["calibration"]["images"] == 6
    assert static.quantization["calibration"]["kind"] == "folder"  # --calibration DIR: the user's images
    assert static.quantization["calibration"]["source"].startswith("user folder ") and "(6 images)" in \
        static.quantization["calibration"]["source"]
    assert bundle.variant("vision", "int8").quantization["mode"] == "dynamic"
    fp16 = bundle.variant("vision", "fp16")
    assert fp16.storage == "fp16" and fp16.size_bytes < 0.7 * bundle.variant("vision", "fp32").size_bytes


def test_every_variant_loads_and_runs_with_dynamic_shapes(tiny_bundle: Path):
    bundle = Bundle.open(tiny_bundle)
    for v in bundle.manifest.variants:
        s = ort.InferenceSession(str(bundle.path(v.file)), providers=["CPUExecutionProvider"])
        if v.tower == "vision":
            for batch in (1, 3):
                out = s.run(None, {v.input_name: np.random.rand(batch, 3, 224, 224).astype(np.float32)})[0]
                assert out.shape == (batch, 32)
                np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
        else:
            for length in (5, 77):
                ids = np.zeros((2, length), dtype=np.int32)
                ids[:, 0], ids[:, 1], ids[:, 2] = 49406, 320, 49407
                out = s.run(None, {v.input_name: ids})[0]
                assert out.shape == (2, 32)


def test_trimmed_text_context_equals_full_context(tiny_bundle: Path):
    bundle = Bundle.open(tiny_bundle)
    s = ort.InferenceSession(str(bundle.path(bundle.variant("text", "fp32").file)))
    ids = np.zeros((1, 77), dtype=np.int32)
    ids[0, :6] = [49406, 320, 1125, 539, 320, 49407]
    full = s.run(None, {"input_ids": ids})[0]
    trimmed = s.run(None, {"input_ids": ids[:, :6]})[0]
    assert float((full * trimmed).sum()) > 0.99999


def test_verify_passes_then_flags_a_variant_below_its_bound(tiny_bundle: Path, tmp_path: Path, capsys):
    assert main(["verify", str(tiny_bundle)]) == 0
    assert "all variants within their parity bounds" in capsys.readouterr().out
    broken = tmp_path / "b"
    shutil.copytree(tiny_bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    fp32 = next(v for v in manifest["variants"] if v["name"] == "vision.fp32")
    int8 = next(v for v in manifest["variants"] if v["name"] == "vision.int8")
    for key in ("file", "sha256", "size_bytes"):  # the fp32 entry points at the int8 graph
        fp32[key] = int8[key]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(broken), "--json", str(tmp_path / "v.json")]) == 1
    out = capsys.readouterr().out
    assert "BELOW BOUND" in out and "SOME VARIANTS" in out
    figures = json.loads((tmp_path / "v.json").read_text())
    assert figures["passed"] is False and figures["variants"]["vision.fp32"]["passed"] is False
    assert figures["variants"]["vision.fp32"]["cosine_min"] < BOUNDS["fp32"].value


def test_cli_export_of_a_resnet_with_quickgelu_and_a_hub_tokenizer_without_nncf(tmp_path: Path, capsys, caplog):
    import onnx

    model_dir = write_model_dir(tmp_path / "mixed", TINY_MIXED)
    out = tmp_path / "mixed-bundle"
    assert main(["export", f"local-dir:{model_dir}", "--out", str(out), "--precision", "fp32,fp16,int8", "--no-nncf",
                 "--parity-images", "6"]) == 0
    printed = capsys.readouterr().out
    assert "all within their parity bounds" in printed and "calibrat" not in printed  # --no-nncf: nothing calibrated
    assert main(["verify", str(out)]) == 0
    m = Bundle.open(out).manifest
    assert [v.name for v in m.variants] == [f"{t}.{p}" for t in ("vision", "text") for p in ("fp32", "fp16", "int8")]
    ops = {t: {n.op_type for n in onnx.load(str(out / f"{t}.fp32.onnx")).graph.node} for t in ("vision", "text")}
    assert {"Conv", "AveragePool"} <= ops["vision"]  # the ResNet tower
    assert "Sigmoid" in ops["text"] and "Gelu" not in ops["text"]  # QuickGELU
    assert "Equal" in ops["text"]  # eos pooling: the eos id's position, not the largest id's
    assert m.tokenizer.kind == "hf" and not m.tokenizer.available  # xlm-v is on the hub only
    assert m.tokenizer.pool == "eos" and m.tokenizer.eot_id == 2
    assert "UNAVAILABLE" in printed
    assert any("tokenizer" in r.getMessage() and "unavailable" in r.getMessage() for r in caplog.records
               if r.processName == "bioclip-edge-torch-stage")  # the child's warning, passed on


@pytest.mark.export
@pytest.mark.parametrize("name,cfg", [("vit-b32-quickgelu", TINY_QUICKGELU_B32), ("rn50", TINY_RN50),
                                      ("metaclip2-worldwide", TINY_WORLDWIDE)])
def test_cli_export_and_verify_architectures(name, cfg, tmp_path: Path, capsys):
    model_dir = write_model_dir(tmp_path / name, cfg)
    out = tmp_path / f"{name}-bundle"
    assert main(["export", f"local-dir:{model_dir}", "--out", str(out), "--precision", "fp32,fp16,int8"]) == 0
    printed = capsys.readouterr().out
    assert "all within their parity bounds" in printed
    assert main(["verify", str(out)]) == 0
    m = Bundle.open(out).manifest
    builtin = {"vision.int8-nncf"} if nncf_available() else set()  # no --calibration: built-in photos calibrate it
    assert {v.name for v in m.variants} == {f"{t}.{p}" for t in ("vision", "text") for p in ("fp32", "fp16", "int8")} | builtin
    if builtin:
        assert m.variant("vision", name="vision.int8-nncf").quantization["calibration"]["kind"] == "builtin"
    if name == "metaclip2-worldwide":
        assert m.tokenizer.kind == "hf" and not m.tokenizer.available  # xlm-v is on the hub only
        assert m.tokenizer.pool == "eos" and m.tokenizer.eot_id == 2
        assert "UNAVAILABLE" in printed
    else:
        assert m.tokenizer.available


def test_random_fallback_is_said_plainly_and_keeps_the_architecture():
    loaded = load_model(ModelRequest("hf-hub:imageomics/bioclip", allow_random=True, seed=3))
    assert loaded.source.random_weights and loaded.source.seed == 3
    assert "RANDOM WEIGHTS" in loaded.source.note and loaded.architecture == "ViT-B-16"
    assert sum(p.numel() for p in loaded.model.parameters()) == pytest.approx(149.6e6, rel=0.01)


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path: Path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.bin"
    bad.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    with pytest.raises(SourceError, match="weights_only"):
        load_model(ModelRequest("ViT-S-32", pretrained=str(bad)))


def test_bad_requests_fail_before_any_work(tmp_path: Path, tiny_model_dir: Path):
    with pytest.raises(SourceError, match="not an open_clip model name"):
        load_model(ModelRequest("ViT-Q-99"))
    with pytest.raises(SourceError, match="no weights given"):
        load_model(ModelRequest("ViT-B-16"))
    with pytest.raises(SourceError, match="no such folder"):
        load_model(ModelRequest(f"local-dir:{tmp_path / 'missing'}"))
    empty = tmp_path / "noweights"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_VIT_CFG}))
    with pytest.raises(SourceError, match="no weights file"):
        load_model(ModelRequest(f"local-dir:{empty}"))
    req = ModelRequest(f"local-dir:{tiny_model_dir}")
    with pytest.raises(ExportError, match="must include fp32"):
        export_bundle(ExportConfig(request=req, out=tmp_path / "x", precisions=("int8",)))
    with pytest.raises(ExportError, match="add int8 to --precision"):
        export_bundle(ExportConfig(request=req, out=tmp_path / "x", precisions=("fp32",), calibration=tiny_model_dir))
    with pytest.raises(ExportError, match="no images found"):
        export_bundle(ExportConfig(request=req, out=tmp_path / "x", calibration=empty))
    (tmp_path / "exists").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_bundle(ExportConfig(request=req, out=tmp_path / "exists"))


def check_performance_graph(bundle: Bundle) -> None:
    """The performance preset's graph: the matmuls int8, residual adds and the normalisation float."""
    import onnx

    v = bundle.variant("vision", name="vision.int8-nncf")
    assert v.quantization["preset"] == "performance" and v.quantization["tool"] == "nncf"
    assert v.parity.cosine_mean >= 0.99  # the figure is recorded whether or not top-1 holds
    s = ort.InferenceSession(str(bundle.path(v.file)), providers=["CPUExecutionProvider"])
    out_emb = s.run(None, {"pixels": np.random.rand(2, 3, 224, 224).astype(np.float32)})[0]
    np.testing.assert_allclose(np.linalg.norm(out_emb, axis=1), 1.0, atol=1e-3)  # normalisation stays float
    graph = onnx.load(str(bundle.path(v.file))).graph
    made_by = {out: node.op_type for node in graph.node for out in node.output}
    adds = [node for node in graph.node if node.op_type == "Add"]
    assert adds
    assert not [a.name for a in adds if any(made_by.get(i) == "DequantizeLinear" for i in a.input)]  # residual adds float
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) > 4  # the matmuls are int8


@needs_nncf
def test_auto_writes_the_performance_preset_when_it_passes(tiny_bundle: Path):
    bundle = Bundle.open(tiny_bundle)
    note = bundle.variant("vision", name="vision.int8-nncf").quantization["preset_note"]
    assert note.startswith("auto: performance preset passed") and "performance preset written" in note
    check_performance_graph(bundle)


@pytest.mark.export
@needs_nncf
def test_nncf_performance_preset_is_recorded_and_keeps_unit_norms(tiny_model_dir: Path, photo_dir: Path, tmp_path: Path):
    out = tmp_path / "perf"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=out, precisions=("fp32", "int8"),
                               calibration=photo_dir, parity_images=6, nncf_preset="performance"))
    bundle = Bundle.open(out)
    assert "preset_note" not in bundle.variant("vision", name="vision.int8-nncf").quantization  # asked for, not measured
    check_performance_graph(bundle)


def check_performance_sq_graph(bundle: Bundle) -> None:
    """performance-sq: SmoothQuant on the performance preset, and the tower's last MatMul (the output
    projection, where ViT-L/14's remaining error sat) left in floating point; the rest is int8."""
    import onnx

    v = bundle.variant("vision", name="vision.int8-nncf")
    assert v.quantization["preset"] == "performance-sq" and v.parity.passed
    graph = onnx.load(str(bundle.path(v.file))).graph
    made_by = {o: node.op_type for node in graph.node for o in node.output}
    matmuls = [node for node in graph.node if node.op_type == "MatMul"]
    quantized = [m for m in matmuls if any(made_by.get(i) == "DequantizeLinear" for i in m.input)]
    assert matmuls[-1] not in quantized  # the projection: float weights and input
    assert len(quantized) >= len(matmuls) // 2  # the blocks' matmuls are int8


@pytest.mark.export
@needs_nncf
def test_nncf_auto_preset_falls_back_when_the_gate_is_missed(tiny_model_dir: Path, photo_dir: Path, tmp_path: Path,
                                                             monkeypatch):
    """auto measures the performance preset first; while the gate is missed, performance-sq and then
    the transformer preset are measured too, the closest is written under the variant's file name,
    the other candidates' files are deleted, and a graph that missed is marked so ``--precision auto``
    leaves it alone. A gate no graph can pass forces that path; the ranking is made to pick
    performance-sq, the candidate measured second, so its graph is checked here too. The default
    suite takes the same path with the OpenVINO IR format (``ir_bundle`` in test_openvino_ir.py)."""
    from bioclip_edge.runtime.inference.selection import select_vision

    measured = force_preset_fallback(monkeypatch)
    out = tmp_path / "auto"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=out, precisions=("fp32", "int8"),
                               calibration=photo_dir, parity_images=6))
    bundle = Bundle.open(out)
    v = bundle.variant("vision", name="vision.int8-nncf")
    note = v.quantization["preset_note"]
    assert len(measured) == 3 and all(f"{p} preset missed the gate" in note for p in ("performance", "performance-sq",
                                                                                      "transformer"))
    assert "performance-sq preset written as the closer to fp32" in note
    assert "gate on 12 images" in note  # 6 reference + 6 calibration, each preset
    assert v.quantization["gate_passed"] is False and v.file == "vision.int8-nncf.onnx"
    assert sorted(p.name for p in out.glob("vision.int8-nncf*")) == ["vision.int8-nncf.onnx"]  # the others are gone
    check_performance_sq_graph(bundle)
    chosen = select_vision(bundle, "auto", "auto", caps=("FP32", "BF16", "INT8"))
    assert chosen.variant.name == "vision.fp32"  # a graph that missed the gate is not picked by auto
    from bioclip_edge.runtime.inference.summary import quantization_notes

    assert any("missed the preset gate" in line for line in quantization_notes(bundle.manifest.variants))


def test_nncf_preset_choice_prefers_a_pass_then_closeness():
    from bioclip_edge.export.nncf_gate import GateFigures, choose_preset, preset_verdict
    from bioclip_edge.runtime.inference.manifest import Top1Check

    def figures(cos_min: float) -> GateFigures:
        return GateFigures(40, cos_min, Top1Check(30, 30, 10, 40, 0.001, 10, bound=0.99))

    fast, safe = ("performance", "P", figures(0.998)), ("transformer", "T", figures(0.999))
    assert choose_preset([fast])[0] == "performance"
    assert choose_preset([("performance", "P", figures(0.990)), safe])[0] == "transformer"  # only it passes
    closer = choose_preset([("performance", "P", figures(0.994)), ("transformer", "T", figures(0.978))])
    assert closer[0] == "performance"  # both miss: the closer to fp32 (what the trained tiny model showed)
    assert "both missed" in preset_verdict([("performance", "P", figures(0.994)), ("transformer", "T", figures(0.978))],
                                           "performance")


def test_performance_gate_holds_top1_on_clear_margins_only():
    from bioclip_edge.export.nncf_gate import GateFigures, gate_misses
    from bioclip_edge.runtime.inference.manifest import Top1Check

    def figures(cos_min: float, agree: int, clear: int = 100) -> GateFigures:
        return GateFigures(120, cos_min, Top1Check(agree, clear, 120 - clear, 120, 0.001, 10, bound=0.99))

    assert gate_misses(figures(0.998, 99)) == ""
    assert "top-1 agreement 97/100 on clear margins < 0.99" in gate_misses(figures(0.998, 97))
    assert gate_misses(figures(0.998, 3, clear=4)) == ""  # 4 clear images: not measurable, not held
    assert "min cosine 0.9900" in gate_misses(figures(0.99, 100))
    assert "not measurable" in figures(0.998, 3, clear=4).text()


@pytest.mark.export
@needs_nncf
def test_nncf_performance_sq_keeps_the_output_projection_float(tiny_model_dir: Path, photo_dir: Path, tmp_path: Path):
    out = tmp_path / "sq"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=out, precisions=("fp32", "int8"),
                               calibration=photo_dir, parity_images=6, nncf_preset="performance-sq"))
    check_performance_sq_graph(Bundle.open(out))

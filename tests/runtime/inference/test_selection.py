"""``--precision auto`` / ``--backend auto``: which vision graph runs where, and why (runtime.inference.selection).

The machine is simulated by replacing OpenVINO's reported CPU capabilities, so every branch is
tested on any machine; the bundle is the tiny test bundle with its manifest edited in memory.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.inference import backends
from bioclip_edge.runtime.inference.backends import BackendError
from bioclip_edge.runtime.inference.selection import SelectionError, select_vision

AMX = ("FP32", "BF16", "FP16", "INT8", "BIN", "EXPORT_IMPORT", "AMX")  # what OpenVINO reports on this Xeon, plus our AMX marker
VNNI_ONLY = ("FP32", "INT8", "BIN", "EXPORT_IMPORT")  # an AVX-512 VNNI / AVX2 CPU without bf16
BF16_NO_AMX = ("FP32", "BF16", "INT8", "BIN", "EXPORT_IMPORT")  # AVX-512 BF16 + VNNI without AMX (an AMD EPYC)


def _machine(monkeypatch, caps: tuple[str, ...]) -> None:
    monkeypatch.setattr(backends, "openvino_capabilities", lambda: caps)


def _edited(bundle: Bundle, name: str, **changes) -> Bundle:
    """The bundle with one variant's manifest entry changed (quantization keys merge)."""
    def edit(v):
        if v.name != name:
            return v
        if "quantization" in changes:
            changes["quantization"] = {**(v.quantization or {}), **changes["quantization"]}
        if "parity_passed" in changes:
            changes["parity"] = dataclasses.replace(v.parity, passed=changes.pop("parity_passed"))
        return dataclasses.replace(v, **changes)

    manifest = dataclasses.replace(bundle.manifest, variants=tuple(edit(v) for v in bundle.manifest.variants))
    return dataclasses.replace(bundle, manifest=manifest)


@pytest.fixture()
def bundle(tiny_bundle: Path) -> Bundle:
    b = Bundle.open(tiny_bundle)
    if "vision.int8-nncf" not in {v.name for v in b.manifest.variants}:
        pytest.skip("the test bundle has no NNCF variant (nncf not installed)")
    return _edited(b, "vision.int8-nncf", quantization={"preset": "transformer"})


@pytest.mark.parametrize("caps,preset,variant,backend,why", [
    (AMX, "performance", "vision.int8-nncf", "openvino", "NNCF performance-preset"),
    (AMX, "transformer", "vision.fp32", "openvino", "bf16"),  # bf16 beats the transformer-preset graph
    (VNNI_ONLY, "performance", "vision.int8-nncf", "openvino", "int8"),  # int8 kernels are enough
    (VNNI_ONLY, "transformer", "vision.int8-nncf", "openvino", "transformer-preset"),  # int8 kernels, no bf16
    (BF16_NO_AMX, "transformer", "vision.int8-nncf", "openvino", "no AMX"),  # int8 beats bf16 without AMX
    (BF16_NO_AMX, "performance", "vision.int8-nncf", "openvino", "performance-preset"),
    ((), "performance", "vision.int8", "onnxruntime", "OpenVINO is not installed"),  # portable int8
])
def test_auto_picks_per_machine(bundle, monkeypatch, caps, preset, variant, backend, why):
    _machine(monkeypatch, caps)
    s = select_vision(_edited(bundle, "vision.int8-nncf", quantization={"preset": preset}))
    assert (s.variant.name, s.backend) == (variant, backend) and why in s.reason


def test_auto_never_picks_a_variant_that_failed_parity(bundle, monkeypatch):
    _machine(monkeypatch, ())
    s = select_vision(_edited(bundle, "vision.int8", parity_passed=False))
    assert (s.variant.name, s.backend) == ("vision.fp32", "onnxruntime") and "no verified dynamic int8" in s.reason
    _machine(monkeypatch, AMX)
    failed_nncf = _edited(bundle, "vision.int8-nncf", quantization={"preset": "performance"}, parity_passed=False)
    assert select_vision(failed_nncf).variant.name == "vision.fp32"


def test_explicit_backends_and_gpu_providers(bundle, monkeypatch):
    _machine(monkeypatch, AMX)
    assert select_vision(bundle, backend="onnxruntime").variant.name == "vision.int8"
    exact = select_vision(bundle, backend="openvino-f32")
    assert (exact.variant.name, exact.backend) == ("vision.fp32", "openvino-f32")
    gpu = select_vision(bundle, providers=("cuda", "cpu"))
    assert (gpu.variant.name, gpu.backend) == ("vision.fp32", "onnxruntime") and "GPU" in gpu.reason
    _machine(monkeypatch, ())
    with pytest.raises(BackendError, match="OpenVINO is not installed"):
        select_vision(bundle, backend="openvino")


def test_named_precisions_are_taken_as_asked(bundle, monkeypatch):
    _machine(monkeypatch, AMX)
    s = select_vision(bundle, "int8")
    assert (s.variant.name, s.backend) == ("vision.int8", "onnxruntime")  # dynamic int8 stays in onnxruntime
    assert select_vision(bundle, "int8-static").variant.name == "vision.int8-static"
    assert select_vision(bundle, "fp16").variant.name == "vision.fp16"
    with pytest.raises(SelectionError, match="choose one of auto, fp32"):
        select_vision(bundle, "bf16")
    without = dataclasses.replace(bundle, manifest=dataclasses.replace(
        bundle.manifest, variants=tuple(v for v in bundle.manifest.variants if v.name != "vision.int8-nncf")))
    with pytest.raises(SelectionError, match=r"no vision.int8-nncf variant \(it has: .*vision.int8-static"):
        select_vision(without, "int8-nncf")


def test_classify_says_what_auto_chose_in_the_console_and_the_output(tiny_bundle, photo_dir, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "cat,dog", "--out", str(out),
                     "--no-progress"]) == 0
    meta = json.loads(out.read_text())["info"]["classifier_metadata"]
    chosen = select_vision(Bundle.open(tiny_bundle))  # the same machine, the same answer
    assert meta["variant"] == chosen.variant.name and meta["chosen_because"] == chosen.reason
    assert f"{chosen.variant.name} on " in capsys.readouterr().err

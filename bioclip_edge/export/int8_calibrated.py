"""The vision int8 variants that need calibration images: static QDQ and NNCF's for OpenVINO.

With ``--calibration``: static QDQ and NNCF's, both on the user's images. Without: only NNCF's,
on the built-in sample photos (``export.calibration``), because ``--precision auto`` runs it on
OpenVINO; the static QDQ graph is for onnxruntime users who name it, and is worth its size only
when calibrated on their own frames.

NNCF's graph is written as ONNX QDQ for small towers (onnxruntime can run it too) and as OpenVINO
IR for large ones (ViT-L/14 and up: ``NNCF_IR_ABOVE_BYTES``, ``precision.quantize_nncf_openvino``);
``nncf_format`` forces either. Both quantize from the fp32 file after the PyTorch model is freed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.export import precision as prec
from bioclip_edge.export.nncf_gate import choose_preset, gate_figures, gate_misses, preset_verdict
from bioclip_edge.export.onnx_export import OnnxFile
from bioclip_edge.export.parity import Reference
from bioclip_edge.export.resources import give_back_memory
from bioclip_edge.export.variant_record import variant_record

NNCF_FORMATS = ("auto", "onnx", "openvino-ir")
# ``auto`` writes OpenVINO IR for fp32 vision graphs above this size. NNCF's ONNX path holds many
# copies of the graph: on ViT-L/14 (1.2 GB) the export peaked at 13.1 GB in it, against 3.9 GB for
# the same quantization through OpenVINO (32 images, 100 s); over 2 GB (ViT-H/14) the ONNX path
# cannot run at all. Below it (ViT-B/16: 350 MB) the ONNX QDQ graph stays, which onnxruntime runs too.
NNCF_IR_ABOVE_BYTES = 1_000_000_000


@dataclass(frozen=True)
class NncfRequest:
    """How the NNCF variant is made: preset (auto: gated, see ``nncf_variant``) and file kind."""

    preset: str = "auto"
    format: str = "auto"  # auto: OpenVINO IR above NNCF_IR_ABOVE_BYTES of fp32 graph, else ONNX
    opset: int = 20

    def file_format(self, fp32: OnnxFile) -> str:
        if self.format != "auto":
            return self.format
        size = fp32.graph.stat().st_size + (fp32.data.stat().st_size if fp32.data else 0)
        return "openvino-ir" if size > NNCF_IR_ABOVE_BYTES else "onnx"


def static_variant(work: Path, fp32: OnnxFile, pixels: np.ndarray, calibration: dict, opset: int,
                   say: Callable[[str], None]) -> Variant:
    """onnxruntime's static QDQ int8 of the vision graph, calibrated on the user's images."""
    say(f"quantizing vision int8 (static QDQ, calibrated on {len(pixels)} images from {calibration.get('folder')})")
    q = prec.QuantSettings("static", calibration=calibration)
    f8s = prec.quantize_static_int8(fp32.graph, work / "vision.int8-static.onnx",
                                    (pixels[i:i + 8] for i in range(0, len(pixels), 8)), "pixels", q)
    return variant_record(work, f8s, "vision", "int8", "pixels", opset, False, name="vision.int8-static",
                          storage="int8", compute="int8", quantization=q.to_manifest())


# ``--nncf-preset auto`` measures these in order and writes the first that passes the gate: the
# two fast presets first (the same int8 kernels; ``performance-sq`` adds SmoothQuant and a float
# output projection, which ViT-L/14 needed), then the transformer preset (closest on ViT-B/16, but
# only faster than bf16 on CPUs without AMX).
AUTO_PRESETS = ("performance", "performance-sq", "transformer")


def nncf_variant(work: Path, fp32: OnnxFile, pixels: np.ndarray, embeddings: np.ndarray, calibration: dict,
                 ref: Reference, request: NncfRequest, say: Callable[[str], None]) -> Variant:
    """The NNCF int8 vision graph for OpenVINO. Preset ``auto`` quantizes the ``AUTO_PRESETS`` in
    order, *measuring each* on the reference photos plus the calibration images
    (``nncf_gate.choose_preset``), and stops at the first that passes; when none does, the one
    closest to fp32 is written. The manifest records every figure, the decision and
    ``gate_passed``: ``--precision auto`` never picks a graph that missed the gate."""
    fmt = request.file_format(fp32)
    suffix = ".xml" if fmt == "openvino-ir" else ".onnx"
    target = work / f"vision.int8-nncf{suffix}"
    if request.preset != "auto":
        return _candidate(work, fp32, pixels, calibration, request.preset, target, fmt, request.opset, say)[0]
    gate_pixels = np.concatenate([ref.pixels, pixels])
    gate_want = np.concatenate([ref.image_embeddings, embeddings])  # PyTorch fp32 on both
    backend = "openvino-f32" if fmt == "openvino-ir" else "onnxruntime"  # as parity.run_variant measures it
    measured, files = [], {}
    for preset in AUTO_PRESETS:
        files[preset] = target if preset == AUTO_PRESETS[0] else work / f"vision.int8-nncf.{preset}{suffix}"
        variant, graph = _candidate(work, fp32, pixels, calibration, preset, files[preset], fmt, request.opset, say)
        measured.append((preset, variant, _gate(gate_want, graph, gate_pixels, ref, backend)))
        if not gate_misses(measured[-1][2]):
            break
    preset, variant, figures = choose_preset(measured)
    note = f"auto: {preset_verdict(measured, preset)}"
    say(note)
    if files[preset] != target:  # the chosen graph takes the variant's file names
        variant = _rename(work, variant, files[preset], target)
    for other in (p for p in files if p != preset and files[p] != target):
        _remove(files[other])
    quant = {**(variant.quantization or {}), "preset_note": note, "gate_passed": not gate_misses(figures)}
    return dataclasses.replace(variant, quantization=quant)


def _gate(want: np.ndarray, candidate: OnnxFile, pixels: np.ndarray, ref: Reference, backend: str):
    """The gate's figures for one candidate; its session's memory goes back before the next step
    (a ViT-L/14 export started the transformer preset 1.3 GB higher without it)."""
    figures = gate_figures(want, candidate.graph, pixels, ref.text_embeddings, backend)
    give_back_memory()
    return figures


def _candidate(work: Path, fp32: OnnxFile, pixels: np.ndarray, calibration: dict, preset: str, target: Path,
               fmt: str, opset: int, say: Callable[[str], None]) -> tuple[Variant, OnnxFile]:
    """One preset's NNCF graph at ``target``, as the ``vision.int8-nncf`` variant it would be."""
    kind = "OpenVINO IR, from the file" if fmt == "openvino-ir" else "ONNX QDQ"
    say(f"quantizing vision int8 with NNCF ({preset} preset, {kind}, for OpenVINO) on {len(pixels)} images")
    qn = prec.QuantSettings("static", op_types=("all",), calibration={**calibration, "method": f"nncf-{preset}"})
    batches = [pixels[i:i + 1] for i in range(len(pixels))]
    if fmt == "openvino-ir":
        f8n = prec.quantize_nncf_openvino(fp32.graph, target, batches, "pixels", preset)
    else:
        f8n = prec.quantize_nncf_int8(fp32.graph, target, batches, "pixels", qn, preset)
    give_back_memory()
    quant = {**qn.to_manifest(), "tool": "nncf", "preset": preset, "for_backend": "openvino"}
    variant = variant_record(work, f8n, "vision", "int8", "pixels", opset, False, name="vision.int8-nncf",
                             storage="int8", compute="int8", quantization=quant, format=fmt)
    return variant, f8n


def _rename(work: Path, variant: Variant, source: Path, target: Path) -> Variant:
    """Move a candidate's graph (and its IR weights) to the variant's file names."""
    os.replace(source, target)
    changes = {"file": target.name}
    if variant.data_file:
        data_target = target.with_suffix(".bin")
        os.replace(work / variant.data_file, data_target)
        changes["data_file"] = data_target.name
    return dataclasses.replace(variant, **changes)


def _remove(graph: Path) -> None:
    graph.unlink(missing_ok=True)
    if graph.suffix == ".xml":
        graph.with_suffix(".bin").unlink(missing_ok=True)

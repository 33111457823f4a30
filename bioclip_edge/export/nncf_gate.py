"""The gate that decides which NNCF preset ships (``--nncf-preset auto``).

The fast presets quantize more of the graph than the transformer preset, so the exporter keeps
one only when, on the parity photos plus the calibration images, it follows the fp32 graph
closely: minimum cosine >= 0.995 and zero-shot top-1 agreement >= 0.99 on the images with a clear
margin (``parity.clear_top1``, the same rule as every other top-1 figure).

Candidates are measured in order (``int8_calibrated.AUTO_PRESETS``: performance, performance-sq,
transformer) until one passes. Each fallback is measured before it is written: on a small
*trained* model (tests/export/test_trained_tiny.py) the performance preset missed on min cosine (0.9940)
while the transformer preset, once written unmeasured as the fallback, was further from fp32 still
(0.978); on random-weight ViT-L/14 both missed (0.9908, 0.9901) and performance-sq passed (0.9953).
``choose_preset`` ships the first that passes, or, when all miss, the closest, and records
``gate_passed: false`` so ``--precision auto`` leaves it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bioclip_edge.runtime.inference.manifest import Top1Check
from bioclip_edge.export.parity import clear_top1

NNCF_GATE_COSINE_MIN = 0.995
NNCF_GATE_TOP1 = 0.99


@dataclass(frozen=True)
class GateFigures:
    """How the NNCF performance-preset graph followed the fp32 graph on the gate's images."""

    images: int
    cosine_min: float
    top1: Top1Check  # zero-shot top-1 on clear margins, held to NNCF_GATE_TOP1

    def text(self) -> str:
        return f"gate on {self.images} images: min cosine {self.cosine_min:.4f}, {self.top1.text()}"


def gate_figures(want: np.ndarray, int8_graph: Path, pixels: np.ndarray, text_embeddings: np.ndarray,
                 int8_backend: str = "onnxruntime") -> GateFigures:
    """Cosine and zero-shot top-1 agreement of the int8 graph with fp32 on ``pixels``. ``want`` are
    PyTorch fp32's normalised embeddings of them (the fp32 graph equals them within 1e-6, measured
    at every export): no fp32 session is opened, which on ViT-L/14 held 3.6 GB on top of the export.
    The int8 graph runs on ``int8_backend`` (``openvino-f32`` for an OpenVINO IR, which onnxruntime
    cannot read: int8 ops in int8, the rest in fp32, as onnxruntime runs a QDQ graph)."""
    from bioclip_edge.runtime.common.arrays import normalize_rows
    from bioclip_edge.runtime.inference.session import SessionOptions, make_session

    session = make_session(int8_graph, SessionOptions(backend=int8_backend))
    got = normalize_rows(np.concatenate([session.run(None, {"pixels": pixels[i:i + 8]})[0]
                                         for i in range(0, len(pixels), 8)]))
    del session
    want = normalize_rows(np.asarray(want, dtype=np.float32))
    top1 = clear_top1(want @ text_embeddings.T, got @ text_embeddings.T, NNCF_GATE_TOP1)
    return GateFigures(int(len(pixels)), float((want * got).sum(axis=1).min()), top1)


def gate_misses(figures: GateFigures) -> str:
    """Why the NNCF performance preset is not good enough, or "" when it is: minimum cosine to
    fp32 >= 0.995 on every image, and zero-shot top-1 agreement >= 0.99 on the images with a clear
    margin (``parity.clear_top1``: near-ties, which random weights are full of, are not counted;
    too few clear images to judge leaves top-1 unheld and the note says so)."""
    misses = []
    if figures.cosine_min < NNCF_GATE_COSINE_MIN:
        misses.append(f"min cosine {figures.cosine_min:.4f} < {NNCF_GATE_COSINE_MIN}")
    if not figures.top1.passed:
        misses.append(f"top-1 agreement {figures.top1.agree}/{figures.top1.clear} on clear margins < {figures.top1.bound}")
    return "; ".join(misses)


def gate_text() -> str:
    return f"min cosine >= {NNCF_GATE_COSINE_MIN}, top-1 agreement >= {NNCF_GATE_TOP1} on images with a clear margin"


def _rank(figures: GateFigures) -> tuple[bool, bool, float]:
    """Passing the gate first, then held top-1, then closeness to fp32."""
    return (not gate_misses(figures), bool(figures.top1.passed), figures.cosine_min)


def choose_preset(measured: list[tuple[str, Any, GateFigures]]) -> tuple[str, Any, GateFigures]:
    """``(preset, variant, figures)`` to ship from the measured candidates, performance first: it
    wins whenever it passes; otherwise the best by ``_rank`` (ties keep the earlier, faster one)."""
    best = measured[0]
    for candidate in measured[1:]:
        if _rank(candidate[2]) > _rank(best[2]):
            best = candidate
    return best


def preset_verdict(measured: list[tuple[str, Any, GateFigures]], chosen: str) -> str:
    """One line for the manifest and the console: each preset's figures and what was written, why."""
    parts = []
    for preset, _, figures in measured:
        missed = gate_misses(figures)
        parts.append(f"{preset} preset {'missed the gate (' + missed + ')' if missed else 'passed'}: {figures.text()}")
    chosen_figures = next(f for p, _, f in measured if p == chosen)
    if not gate_misses(chosen_figures):
        why = f"{chosen} preset written ({gate_text()})"
    else:
        why = (f"both missed; {chosen} preset written as the closer to fp32, marked gate_passed=false: "
               "--precision auto will not pick it")
    return "; ".join(parts) + "; " + why

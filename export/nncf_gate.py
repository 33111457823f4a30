"""The gate that decides whether the NNCF *performance* preset may ship (``--nncf-preset auto``).

The performance preset (residual Adds and output normalisation kept float) is ~1.6x faster than
OpenVINO bf16 on ViT-B/16 but quantizes more of the graph than the transformer preset, so the
exporter keeps it only when, on the parity photos plus the calibration images, it follows the fp32
graph closely: minimum cosine >= 0.995 and zero-shot top-1 agreement >= 0.99 on the images with
a clear margin (``parity.clear_top1``, the same rule as every other top-1 figure).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.engine.manifest import Top1Check
from .parity import clear_top1

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


def gate_figures(fp32_graph: Path, int8_graph: Path, pixels: np.ndarray, text_embeddings: np.ndarray) -> GateFigures:
    """Cosine and zero-shot top-1 agreement of the int8 graph with the fp32 graph (equal to
    PyTorch within 1e-6, measured at every export) on ``pixels``, through onnxruntime."""
    from ..runtime.common.arrays import normalize_rows
    from ..runtime.engine.session import SessionOptions, make_session

    outs = []
    for graph in (fp32_graph, int8_graph):
        session = make_session(graph, SessionOptions())
        outs.append(normalize_rows(np.concatenate([session.run(None, {"pixels": pixels[i:i + 8]})[0]
                                              for i in range(0, len(pixels), 8)])))
    want, got = outs
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

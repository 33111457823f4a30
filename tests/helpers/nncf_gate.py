"""The NNCF preset gate, forced to its fallback path for export tests."""

from __future__ import annotations

import pytest


def force_preset_fallback(mp: pytest.MonkeyPatch) -> list:
    """Make ``--nncf-preset auto`` measure all three presets (a gate no graph can pass) and write
    performance-sq, the one measured second; returns the gate figures measured, in order."""
    import bioclip_edge.export.nncf_gate as gate

    measured: list = []
    real = gate.gate_figures

    def record(*args, **kw):
        figures = real(*args, **kw)
        measured.append(figures)
        return figures

    mp.setattr(gate, "NNCF_GATE_COSINE_MIN", 1.5)
    mp.setattr(gate, "_rank", lambda f: (False, f is measured[1], 0.0))
    mp.setattr("bioclip_edge.export.int8_calibrated.gate_figures", record)
    return measured

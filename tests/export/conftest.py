"""The export tests' shared bundle: the tiny model exported as ``bioclip-edge export`` does by
default, once per session. (The calibrated tiny bundle, ``tiny_bundle``, is in tests/conftest.py.)"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from bioclip_edge.cli import main


@dataclass(frozen=True)
class CliExport:
    """A bundle written by the ``export`` command, what it printed, and the log records it gave."""

    path: Path
    printed: str
    records: tuple[logging.LogRecord, ...]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def run_cli(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


@pytest.fixture(scope="session")
def default_export(tiny_model_dir: Path, tmp_path_factory) -> CliExport:
    """The tiny model through ``export`` with its defaults: no --calibration (the NNCF int8 variant is
    calibrated on the built-in photos) and the full parity set (64 photos x 110 labels); fp16 is left
    out for speed. Read-only. INFO log records are collected while it runs (the PyTorch stage's
    child process sends them to this one)."""
    out = tmp_path_factory.mktemp("default-export") / "tiny"
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        code, printed = run_cli(["export", f"local-dir:{tiny_model_dir}", "--out", str(out), "--precision", "fp32,int8"])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert code == 0, printed
    return CliExport(out, printed, tuple(handler.records))


"""The environment the tests run in is the locked one CI tested (requirements/lock.txt).

A fresh machine resolves pyproject.toml's ranges to whatever is newest that day (torch 2.14.1 on
one machine, 2.15 on another), and a suite green on one proves little about the other. `make setup`
installs with the lock as constraints; this test catches a venv that drifted from it. A venv set up
on purpose from the ranges (`make setup UNLOCKED=1`, or BIOCLIP_EDGE_UNLOCKED=1) skips it.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"
CHECKED = ("torch", "onnxruntime", "numpy", "open_clip_torch", "openvino", "onnx")


def read_lock(path: Path) -> tuple[str, dict[str, str]]:
    """(python minor version, {canonical name: version}) from a pip constraints file."""
    python, pins = "", {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# python:"):
            python = line.split(":", 1)[1].strip()
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name)] = version.strip()
    return python, pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unlocked() -> bool:
    return os.environ.get("BIOCLIP_EDGE_UNLOCKED") == "1" or (Path(sys.prefix) / ".unlocked").exists()


def test_lock_is_well_formed():
    python, pins = read_lock(LOCK)
    assert re.fullmatch(r"3\.\d+", python), "the lock's header names the Python it was made for"
    for name in CHECKED + ("megadetector", "pytest", "pip"):
        assert canonical(name) in pins, f"{name} is not pinned in {LOCK}"
    assert "bioclip-edge" not in pins  # the project itself is installed editable, never pinned


@pytest.mark.skipif(unlocked(), reason="venv installed from pyproject.toml's ranges on purpose (UNLOCKED=1)")
def test_installed_versions_match_the_lock():
    python, pins = read_lock(LOCK)
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" == python, f"the lock is for Python {python}"
    drift = {name: (metadata.version(name), pins[canonical(name)]) for name in CHECKED
             if metadata.version(name) != pins[canonical(name)]}
    assert not drift, f"installed (got, locked) differ from {LOCK.name}: {drift}; run 'make setup' (or 'make lock')"

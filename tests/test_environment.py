"""The environment the tests run in is the locked one CI tested (requirements/lock.txt).

A fresh machine resolves pyproject.toml's ranges to whatever is newest that day (torch 2.14.1 on
one machine, 2.15 on another), and a suite green on one proves little about the other. The lock is
universal: one version of each package for every Python on its `# pythons:` line, with environment
markers where a package is needed on some platforms only. `make setup` installs with the lock as
constraints; this test catches a venv that drifted from it. A venv set up on purpose from the ranges
(`make setup UNLOCKED=1`, or BIOCLIP_EDGE_UNLOCKED=1) skips it. That the lock resolves from wheels on
every listed Python needs the package index: `make lock-check` shows it (CI runs it).
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "lock.txt"
CHECKED = ("torch", "onnxruntime", "numpy", "open_clip_torch", "openvino", "onnx")
LINUX_X86_64 = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
                "platform_machine": "x86_64", "implementation_name": "cpython",
                "platform_python_implementation": "CPython"}


def read_lock(path: Path, environment: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(the Pythons the lock is for, {canonical name: version} of the pins whose marker holds in
    `environment`: this interpreter's when None)."""
    pythons, pins = [], {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# pythons:"):
            pythons = line.split(":", 1)[1].split()
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(environment):
            continue
        versions = [spec.version for spec in req.specifier if spec.operator == "=="]
        assert len(versions) == 1 and len(req.specifier) == 1, f"{line!r} is not one exact pin"
        assert canonical(req.name) not in pins, f"{req.name} is pinned twice for {environment or 'this Python'}"
        pins[canonical(req.name)] = versions[0]
    return pythons, pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def unlocked() -> bool:
    return os.environ.get("BIOCLIP_EDGE_UNLOCKED") == "1" or (Path(sys.prefix) / ".unlocked").exists()


def test_lock_is_well_formed():
    pythons, _ = read_lock(LOCK)
    assert {"3.11", "3.12", "3.13"} <= set(pythons), "the lock's header names the Pythons it was made for"
    for python in pythons:
        env = {**LINUX_X86_64, "python_version": python, "python_full_version": f"{python}.0"}  # over this machine's
        _, pins = read_lock(LOCK, env)
        for name in CHECKED + ("megadetector", "pytest", "pip", "mypy"):
            assert canonical(name) in pins, f"{name} is not pinned in {LOCK} for Python {python}"
        assert "bioclip-edge" not in pins  # the project itself is installed editable, never pinned


@pytest.mark.skipif(unlocked(), reason="venv installed from pyproject.toml's ranges on purpose (UNLOCKED=1)")
def test_installed_versions_match_the_lock():
    pythons, pins = read_lock(LOCK)
    assert f"{sys.version_info[0]}.{sys.version_info[1]}" in pythons, f"the lock is for Python {pythons}"
    drift = {name: (metadata.version(name), pins[canonical(name)]) for name in CHECKED
             if metadata.version(name) != pins[canonical(name)]}
    assert not drift, f"installed (got, locked) differ from {LOCK.name}: {drift}; run 'make setup' (or 'make lock')"

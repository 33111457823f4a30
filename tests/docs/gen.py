"""The docs' generator scripts (docs/gen/*.py: scripts, not a package), loaded by path for the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
GEN = ROOT / "docs" / "gen"


def load(name: str) -> ModuleType:
    """docs/gen/<name>.py as a module (cached in sys.modules under its own name, as the mkdocs hook imports it)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GEN / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

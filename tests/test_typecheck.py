"""mypy resolves every import of the package, with the config checked in (pyproject.toml's
[tool.mypy]), from the checkout, as Python resolves it.

A module that moved without its importers, a name imported from a module that no longer defines
it, or an import of the old top-level layout (``runtime.jobs...``) fails here before it fails at
run time in a code path no test reaches. Other type errors are counted, not gated.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "bioclip_edge"

# path:line: error: message  [code]
ERROR = re.compile(r"^(?P<where>[^:\n]+:\d+): error: (?P<message>.*?)(?:  \[(?P<code>[a-z-]+)\])?$")
SUMMARY = re.compile(r"(?:Found \d+ errors? in \d+ files? \(checked|Success: no issues found in) (?P<n>\d+) source files?")
# Every import resolves: a module (ours, or a third-party one the config does not list) that is
# not found or not typed, a name an import asks of a module that lacks it, a name left undefined.
IMPORT_CODES = {"import", "import-not-found", "import-untyped", "name-defined"}
MODULE_ATTRIBUTE = re.compile(r'^Module "[^"]+" (?:has no attribute|does not explicitly export attribute)|^Module has no attribute')


def unlocked() -> bool:
    return os.environ.get("BIOCLIP_EDGE_UNLOCKED") == "1" or (Path(sys.prefix) / ".unlocked").exists()


def resolution_errors(output: str) -> list[str]:
    """The lines of mypy's output that say an import did not resolve."""
    found = []
    for line in output.splitlines():
        m = ERROR.match(line)
        if not m:
            continue
        code, message = m["code"], m["message"]
        if code is None or code in IMPORT_CODES or (code == "attr-defined" and MODULE_ATTRIBUTE.match(message)):
            found.append(line)  # no code: a blocking error (a module found twice, a syntax error)
    return found


def run_mypy(root: Path, cache: Path) -> subprocess.CompletedProcess:
    # The config's own settings (packages, follow_imports, overrides), a cache no earlier run warmed.
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), "--no-pretty",
                           "--no-color-output", "--hide-error-context"],
                          cwd=root, capture_output=True, text=True, timeout=600)


@pytest.mark.typecheck
def test_mypy_resolves_every_import_of_the_package(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        if unlocked():
            pytest.skip("mypy is not installed in this venv (set up from pyproject.toml's ranges, UNLOCKED=1)")
        pytest.fail("mypy is not installed; it is in the test extra and requirements/lock.txt: run 'make setup'")
    proc = run_mypy(ROOT, tmp_path / "mypy-cache")
    output = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), f"mypy stopped (exit {proc.returncode}):\n{output[-4000:]}"
    unresolved = resolution_errors(output)
    assert not unresolved, "imports mypy cannot resolve:\n" + "\n".join(unresolved)
    summary = SUMMARY.search(output)
    assert summary, output[-2000:]
    modules = [p for p in (ROOT / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts]
    folders = {p.parent for p in modules}
    assert all((f / "__init__.py").exists() for f in folders), \
        f"folders without __init__.py (mypy and pkgutil see them differently): {sorted(f for f in folders if not (f / '__init__.py').exists())}"
    assert int(summary["n"]) == len(modules), \
        f"mypy checked {summary['n']} source files, the package has {len(modules)}:\n{output[-2000:]}"


@pytest.mark.parametrize("line, gated", [
    ('bioclip_edge/cli.py:3: error: Cannot find implementation or library stub for module named "bioclip_edge.gone"  [import-not-found]', True),
    ('bioclip_edge/cli.py:3: error: Cannot find implementation or library stub for module named "runtime.jobs"  [import-not-found]', True),
    ('bioclip_edge/cli.py:3: error: Skipping analyzing "yaml": module is installed, but missing library stubs or py.typed marker  [import-untyped]', True),
    ('bioclip_edge/cli.py:3: error: Module "bioclip_edge.errors" has no attribute "Gone"  [attr-defined]', True),
    ('bioclip_edge/cli.py:3: error: Module has no attribute "gone"  [attr-defined]', True),
    ('bioclip_edge/cli.py:3: error: Name "gone" is not defined  [name-defined]', True),
    ('bioclip_edge/cli.py: error: Duplicate module named "runtime"', False),  # no line number: see below
    ('bioclip_edge/cli.py:3: error: "object" has no attribute "size"  [attr-defined]', False),
    ('bioclip_edge/cli.py:3: error: Argument 1 to "f" has incompatible type "str"; expected "int"  [arg-type]', False),
    ('bioclip_edge/cli.py:3: note: See https://mypy.readthedocs.io/en/stable/running_mypy.html#missing-imports', False),
])
def test_what_counts_as_an_unresolved_import(line, gated):
    # Blocking errors without a line number make mypy exit 2, which the test above refuses.
    assert bool(resolution_errors(line)) is gated

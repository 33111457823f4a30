"""The import rules of the package, checked on the source (docs/explanations/architecture.md).

- The runtime never imports export, profiling or the top-level CLI: a field box installs the
  runtime alone, and the bundle is the only contract between export and runtime.
- No import cycles between modules (package ``__init__`` re-exports aside).
- Importing any module changes no process-wide state: warning filters and the root logger's
  filters are configured by the CLI entry point, never at import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bioclip_edge"


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("bioclip_edge", *path.relative_to(PACKAGE).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports (absolute or relative; ``from X import mod`` resolved)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in known and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_runtime_never_imports_export_profiling_or_the_cli():
    upward = {(m, t) for m, targets in graph().items() if m.startswith("bioclip_edge.runtime")
              for t in targets if t.startswith(("bioclip_edge.export", "bioclip_edge.profiling")) or t == "bioclip_edge.cli"}
    assert not upward, f"runtime imports upward: {sorted(upward)}"


RUNTIME_LAYERS = ("common", "inference", "images", "text", "labels", "jobs", "cluster", "preview", "evaluation", "adaptation", "camtrap", "sorting", "packs", "cli")  # docs/explanations/architecture.md


def test_runtime_sub_packages_import_only_those_below_them():
    def layer(module: str) -> int | None:
        parts = module.split(".")
        return RUNTIME_LAYERS.index(parts[2]) if len(parts) > 2 and parts[2] in RUNTIME_LAYERS else None

    upward = [(m, t) for m, targets in graph().items() if m.startswith("bioclip_edge.runtime.") for t in targets
              if layer(m) is not None and layer(t) is not None and layer(t) > layer(m)]
    assert not upward, f"imports against the sub-package order {RUNTIME_LAYERS}: {upward}"


def test_no_import_cycles_between_modules():
    edges = {m: {t for t in ts if not _is_package(t)} for m, ts in graph().items() if not _is_package(m)}
    cycles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_the_rule_checker_sees_a_cycle_and_an_upward_import(tmp_path):
    """The two checks above can fail: they find a planted cycle and an upward import."""
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("from bioclip_edge.runtime import b\nimport bioclip_edge.export.build\n")
    b.write_text("from . import a\n")
    known = {"bioclip_edge.runtime.a", "bioclip_edge.runtime.b", "bioclip_edge.runtime", "bioclip_edge.export.build"}
    edges = {"bioclip_edge.runtime.a": imports("bioclip_edge.runtime.a", a, known),
             "bioclip_edge.runtime.b": imports("bioclip_edge.runtime.b", b, known)}
    assert "bioclip_edge.export.build" in edges["bioclip_edge.runtime.a"]
    edges = {m: {t for t in ts if t in edges} for m, ts in edges.items()}
    assert any(len(c) == 2 for c in _strongly_connected(edges))


def test_imports_change_no_process_wide_state():
    """No module of ours calls warnings.filterwarnings/simplefilter or adds a root-logger filter
    at import (third-party libraries may: only calls made from our own files are counted)."""
    names = sorted(n for n in modules() if not n.startswith("bioclip_edge.demo"))
    code = (
        "import importlib, logging, sys, warnings\n"
        f"ours = {str(ROOT)!r}\n"
        "calls = []\n"
        "def spy(real, what):\n"
        "    def wrapper(*a, **k):\n"
        "        caller = sys._getframe(1).f_code.co_filename\n"
        "        if caller.startswith(ours) and '/.venv/' not in caller: calls.append((what, caller))\n"
        "        return real(*a, **k)\n"
        "    return wrapper\n"
        "warnings.filterwarnings = spy(warnings.filterwarnings, 'filterwarnings')\n"
        "warnings.simplefilter = spy(warnings.simplefilter, 'simplefilter')\n"
        "logging.Logger.addFilter = spy(logging.Logger.addFilter, 'addFilter')\n"
        "logging.basicConfig = spy(logging.basicConfig, 'basicConfig')\n"
        f"for m in {names!r}:\n"
        "    try: importlib.import_module(m)\n"
        "    except ImportError: pass\n"
        "print('CALLS', calls)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "CALLS []", result.stdout[-2000:]


def _is_package(name: str) -> bool:
    return modules().get(name, Path()).name == "__init__.py"


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            groups.append(group)

    for v in list(edges):
        if v not in index:
            visit(v)
    return groups


def test_one_copy_of_every_module_from_the_checkout():
    """The three parts live only under bioclip_edge/: from the repository root ``import runtime``
    (or export, profiling) finds nothing, so no class exists twice under two module names."""
    code = ("import importlib.util, sys\n"
            "print([n for n in ('runtime', 'export', 'profiling') if importlib.util.find_spec(n) is not None])\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]", f"importable from the checkout's root: {result.stdout.strip()}"
    import bioclip_edge.runtime

    assert Path(bioclip_edge.runtime.__file__).resolve().parent == PACKAGE / "runtime"


def test_imports_are_absolute():
    """Every import of our own modules names them in full (``from bioclip_edge.runtime.x import y``)."""
    relative = [f"{path.relative_to(ROOT)}:{node.lineno}" for path in modules().values()
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.ImportFrom) and node.level]
    assert not relative, f"relative imports: {relative}"

"""The wheel on its own: built from the checkout, installed with the base (torch-free) dependencies
into a fresh venv with no source tree on the path, every module imported, and the installed
``bioclip-edge classify`` run on the tiny bundle.

An editable install hides what the wheel lacks (a sub-package left out of discovery, a data file
left out of package-data, a runtime module that imports torch at module level); only an install
of the wheel itself, run from outside the checkout, shows it.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
PACKAGE = "bioclip_edge"

# A module outside the runtime may fail to import on the base install only for want of one of
# these, each brought by the named extra (torchvision and huggingface_hub come with open_clip_torch).
OPTIONAL_IMPORTS = {
    "torch": "export", "torchvision": "export", "open_clip": "export", "onnx": "export",
    "onnxscript": "export", "safetensors": "export", "skimage": "export", "transformers": "export",
    "huggingface_hub": "export",
    "openvino": "openvino", "nncf": "openvino",
    "av": "video",
    "pyarrow": "parquet",
    "ray": "ray",
    "matplotlib": "profiling", "psutil": "profiling",
}
# What the base install must import, whatever extras are missing: the torch-free runtime and the
# package's top-level modules (the command line loads its subcommands lazily).
ALWAYS_IMPORTS = (f"{PACKAGE}.runtime", f"{PACKAGE}.cli", f"{PACKAGE}.errors")

# Run inside the installed venv: where the package comes from, and how each module it holds imports.
PROBE = r"""
import importlib, importlib.util, json, pkgutil, sys
import bioclip_edge

walk_errors = {}
def onerror(name):
    walk_errors[name] = repr(sys.exc_info()[1])

names = ["bioclip_edge"] + [m.name for m in pkgutil.walk_packages(bioclip_edge.__path__, "bioclip_edge.", onerror=onerror)]
modules = {}
for name in names:
    try:
        importlib.import_module(name)
        modules[name] = {"ok": True}
    except ImportError as e:
        modules[name] = {"ok": False, "type": type(e).__name__, "missing": e.name, "message": str(e)}
    except Exception as e:
        modules[name] = {"ok": False, "type": type(e).__name__, "missing": None, "message": str(e)}
optional = sys.argv[1].split(",")
print(json.dumps({
    "file": bioclip_edge.__file__,
    "sys_path": sys.path,
    "modules": modules,
    "walk_errors": walk_errors,
    "installed_optional": [m for m in optional if importlib.util.find_spec(m) is not None],
}))
"""


def unlocked() -> bool:
    return os.environ.get("BIOCLIP_EDGE_UNLOCKED") == "1" or (Path(sys.prefix) / ".unlocked").exists()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would put the checkout (or this venv) on the path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env.update(PYTHONNOUSERSITE="1", PYTHONSAFEPATH="1", **extra)
    return env


def run(cmd: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(), capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def source_snapshot(dest: Path) -> Path:
    """What a fresh clone holds (tracked files, and new files git does not ignore), copied out so the
    build leaves nothing (build/, *.egg-info) in the checkout. Without git: the tree, less the usual
    build leftovers."""
    listed = None
    if (ROOT / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode == 0:
            listed = [p for p in proc.stdout.split("\0") if p]
    if listed is None:
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache"))
        return dest
    for rel in listed:
        src = ROOT / rel
        if src.is_file():  # a tracked file deleted in the working tree is not in a clone of it either
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


class Installed:
    def __init__(self, root: Path):
        self.root = root
        self.src = source_snapshot(root / "src")
        dist = root / "dist"
        # Build isolation: the build uses pyproject.toml's [build-system] requires, as on a fresh machine.
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", self.src, "-w", dist], cwd=root)
        (self.wheel,) = dist.glob("*.whl")
        self.venv = root / "venv"
        # No pip of its own (ensurepip is the slow part of a venv): this venv's pip installs into it.
        run([sys.executable, "-m", "venv", "--without-pip", self.venv], cwd=root)
        self.python = self.venv / "bin" / "python"
        constraints = [] if unlocked() else ["-c", LOCK]
        run([sys.executable, "-m", "pip", "--python", self.python, "install", "-q", *constraints, self.wheel], cwd=root)
        self.work = root / "work"  # cwd of every command: outside the checkout, nothing importable in it
        self.work.mkdir()

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as zf:
            return zf.namelist()

    def metadata(self) -> email.message.Message:
        with zipfile.ZipFile(self.wheel) as zf:
            (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
            return email.message_from_bytes(zf.read(name))


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    return Installed(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def probe(installed) -> dict:
    proc = run([installed.python, "-c", PROBE, ",".join(OPTIONAL_IMPORTS)], cwd=installed.work)
    return json.loads(proc.stdout)


def test_wheel_holds_every_module_and_data_file_of_the_checkout(installed):
    names = set(installed.wheel_names())
    package_files = {p.relative_to(installed.src).as_posix() for p in (installed.src / PACKAGE).rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts}
    missing = sorted(package_files - names)
    assert not missing, f"in the checkout's {PACKAGE}/ but not in the wheel: {missing}"
    assert f"{PACKAGE}/profiling/hardware.json" in names  # package data, read at run time
    tops = {n.split("/", 1)[0] for n in names}
    stray = sorted(t for t in tops if t != PACKAGE and not t.endswith((".dist-info", ".data")))
    assert not stray, f"the wheel installs top-level names besides {PACKAGE}: {stray}"
    entry_points = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(installed.wheel) as zf:
        assert "bioclip-edge = bioclip_edge.cli:main" in zf.read(entry_points[0]).decode()


def test_installed_package_comes_from_the_venv_alone(installed, probe):
    site = installed.venv.resolve()
    assert Path(probe["file"]).resolve().is_relative_to(site), probe["file"]
    on_path = [p for p in probe["sys_path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    assert not on_path, f"the checkout is on the installed venv's sys.path: {on_path}"
    # The base install is the torch-free runtime; were torch here, the imports below would prove nothing.
    assert "torch" not in probe["installed_optional"], "the base install pulled in torch"


def test_every_module_imports_or_lacks_only_an_optional_dependency(installed, probe):
    modules = probe["modules"]
    # walk_packages must reach every module file the wheel holds: a package failing to import, or a
    # folder without __init__.py, would hide modules from the walk.
    in_wheel = {n[:-3].replace("/", ".").removesuffix(".__init__") for n in installed.wheel_names()
                if n.startswith(f"{PACKAGE}/") and n.endswith(".py")}
    assert not probe["walk_errors"], probe["walk_errors"]
    unwalked = sorted(in_wheel - set(modules))
    assert not unwalked, f"modules in the wheel that pkgutil.walk_packages does not reach (a folder without __init__.py?): {unwalked}"
    assert set(modules) <= in_wheel, sorted(set(modules) - in_wheel)
    extras = set(installed.metadata().get_all("Provides-Extra") or [])

    must = [m for m in modules if m == PACKAGE or any(m == a or m.startswith(a + ".") for a in ALWAYS_IMPORTS)]
    assert len(must) > 50, must  # the runtime's modules, all of them
    problems = [f"{m} (runtime) does not import on the base install: {modules[m]}" for m in must if not modules[m]["ok"]]
    for name, result in modules.items():
        if result["ok"] or name in must:
            continue
        missing = (result["missing"] or "").split(".")[0]
        if result["type"] != "ModuleNotFoundError" or missing not in OPTIONAL_IMPORTS:
            problems.append(f"{name} fails on the base install, not for want of an optional dependency: {result}")
        elif missing in probe["installed_optional"]:
            problems.append(f"{name}: {missing} is installed, yet {result}")
        elif OPTIONAL_IMPORTS[missing] not in extras:
            problems.append(f"{name} needs {missing}, from no extra the wheel declares ({sorted(extras)})")
        elif not name.startswith((f"{PACKAGE}.export.", f"{PACKAGE}.profiling.")):
            problems.append(f"{name} needs the optional {missing}, outside export/ and profiling/")
    assert not problems, "\n".join(problems)


def test_installed_console_script_classifies_like_the_checkout(installed, tiny_bundle, photo_dir, tmp_path):
    from bioclip_edge.cli import main as checkout_cli

    photos = tmp_path / "photos"
    photos.mkdir()
    chosen = sorted(photo_dir.glob("*.jpg"))[:3]
    assert len(chosen) == 3
    for p in chosen:
        shutil.copy2(p, photos / p.name)
    labels = "lion,leopard,domestic cat,coffee cup,rocket"
    args = [tiny_bundle, photos, "--labels", labels, "--top-k", "3", "--precision", "fp32",
            "--backend", "onnxruntime", "--threads", "0", "--no-progress"]
    script = installed.venv / "bin" / "bioclip-edge"
    out = tmp_path / "installed.jsonl"
    run([script, "classify", *args, "--out", out], cwd=installed.work)

    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(Path(r["filepath"]).name for r in rows) == sorted(p.name for p in chosen)
    for r in rows:
        assert not r["failures"], r
        assert len(r["predictions"]) == 3
        assert {p["label"] for p in r["predictions"]} <= set(labels.split(","))
        scores = [p["score"] for p in r["predictions"]]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6

    # The installed wheel gives what the checkout gives.
    ref = tmp_path / "checkout.jsonl"
    assert checkout_cli(["classify", *map(str, args), "--out", str(ref)]) == 0
    expected = {Path(r["filepath"]).name: r["predictions"] for r in
                (json.loads(line) for line in ref.read_text(encoding="utf-8").splitlines())}
    for r in rows:
        want = expected[Path(r["filepath"]).name]
        assert [p["label"] for p in r["predictions"]] == [p["label"] for p in want]
        assert [p["score"] for p in r["predictions"]] == pytest.approx([p["score"] for p in want], abs=1e-5)

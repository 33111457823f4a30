"""Make and check requirements/lock.txt, the one universal lock of the development environment.

    python requirements/lock.py make [--upgrade]   # rewrite the lock (run by `make lock`)
    python requirements/lock.py check              # show it resolves on every listed Python (`make lock-check`)

Run with the tools of requirements/tools.txt (uv, packaging) installed: requirements/make_lock.sh sets
them up. The lock is a pip constraints file: `pip install -c requirements/lock.txt -e .[dev]` takes
exactly these versions, on every Python of its `# pythons:` line. uv resolves it once for all of them
(`uv pip compile --universal`), so a package has one version everywhere; an environment marker says
where a package is needed at all (a CUDA library on Linux only, say), and pip skips the lines whose
marker is false. `make` keeps each locked version that still fits pyproject.toml's ranges (uv reads the
old lock as preferences), so adding a dependency adds it and moves nothing else; `--upgrade` takes the
newest of everything instead. Either way the caps of pip's own configuration (a machine's
`constraint =` file, like this workplace's torch<=2.14.1) bound the resolution, so pip here can still
install what the lock says.

`check` resolves the [dev] extra again for each listed Python, for Linux on x86_64, from wheels only
(no source builds, as a new machine installs), with the lock as constraints. It fails when a locked
version has no wheel for that Python, when the pins conflict, when the resolution needs a package the
lock lacks (pyproject.toml changed without `make lock`), or when the lock pins a package that no
listed Python needs any more.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
EXTRA_INPUT = ROOT / "requirements" / "lock.in"
# The Pythons the lock is made and checked for: the oldest is the resolution's floor. The dependencies
# resolve on 3.14 too; add it here once a test run on it has shown it works.
PYTHONS = ("3.11", "3.12", "3.13")
# Installed with --no-deps (see the Makefile): locked, but its own dependencies are not resolved.
NO_DEPS = ("megadetector",)
# What `check` resolves for: the Linux this project runs on (Debian 12's glibc 2.36).
PLATFORM = os.environ.get("LOCK_PLATFORM", "x86_64-manylinux_2_36")
MARKER_ENV = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
              "platform_machine": "x86_64", "implementation_name": "cpython",
              "platform_python_implementation": "CPython"}

HEADER = """\
# bioclip-edge development lock: every package of 'pip install -e .[dev]' + {no_deps} (--no-deps).
# pythons: {pythons}
# Universal: one version of each package for every Python above; a marker says where a package is needed.
# Refresh with 'make lock', check with 'make lock-check' (requirements/lock.py); install with 'make setup'.
"""


def uv(*args: str) -> str:
    """Runs `uv ARGS` (the uv installed beside this Python), returns its stdout; stops on failure."""
    exe = Path(sys.executable).with_name("uv")
    cmd = [str(exe) if exe.exists() else "uv", *args]
    done = subprocess.run(cmd, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}")
    return done.stdout


def pip_caps() -> list[str]:
    """The constraints files pip's own configuration applies (PIP_CONSTRAINT, `constraint =`)."""
    files = os.environ.get("PIP_CONSTRAINT", "").split()
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        if key.split(".")[-1] == "constraint":
            files += value.strip().strip("'\"").split()
    return [f for f in dict.fromkeys(files) if Path(f).is_file()]


def constraint_args(files: Iterable[str | Path]) -> list[str]:
    return [arg for f in files for arg in ("-c", str(f))]


def pin_lines(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def read_lock(path: Path = LOCK) -> tuple[list[str], list[Requirement]]:
    """(the Pythons on its `# pythons:` line, its pins)."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^# pythons:(.*)$", text, re.M)
    return (match.group(1).split() if match else []), [Requirement(line) for line in pin_lines(text)]


def pins_for(pins: list[Requirement], python: str) -> dict[str, str]:
    """{name: version} of the pins whose marker holds on Linux x86_64 with this Python."""
    env = {**MARKER_ENV, "python_version": python, "python_full_version": f"{python}.0"}  # over this machine's
    out: dict[str, str] = {}
    for req in pins:
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        (version,) = [spec.version for spec in req.specifier if spec.operator == "=="]
        name = canonicalize_name(req.name)
        if name in out:
            raise SystemExit(f"{LOCK.name} pins {name} twice for Python {python}")
        out[name] = version
    return out


def make(upgrade: bool) -> None:
    caps = pip_caps()
    with tempfile.TemporaryDirectory() as tmp:
        main, no_deps = Path(tmp, "main.txt"), Path(tmp, "no_deps.txt")
        if LOCK.exists() and not upgrade:  # uv keeps the versions of an existing output file
            old = pin_lines(LOCK.read_text(encoding="utf-8"))
            main.write_text("\n".join(old) + "\n")
            no_deps.write_text("\n".join(l for l in old if canonicalize_name(Requirement(l).name) in NO_DEPS) + "\n")
        # fewest: one version of a package for all the Pythons wherever one fits them all, rather than
        # the newest for each (a release that dropped 3.11 would otherwise split the lock by Python).
        common = ["--universal", "--python-version", PYTHONS[0], "--fork-strategy", "fewest",
                  "--no-header", "--no-annotate", "--quiet", *constraint_args(caps), *(["--upgrade"] if upgrade else [])]
        uv("pip", "compile", "pyproject.toml", str(EXTRA_INPUT), "--extra", "dev", "-o", str(main), *common)
        Path(tmp, "no_deps.in").write_text("\n".join(NO_DEPS) + "\n")
        uv("pip", "compile", str(Path(tmp, "no_deps.in")), "--no-deps", "-o", str(no_deps), *common)
        lines = pin_lines(main.read_text()) + pin_lines(no_deps.read_text())
    lines = sorted(dict.fromkeys(lines), key=lambda l: canonicalize_name(Requirement(l).name))
    LOCK.write_text(HEADER.format(no_deps=", ".join(NO_DEPS), pythons=" ".join(PYTHONS)) + "\n".join(lines) + "\n",
                    encoding="utf-8")
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(lines)} pins for Python {', '.join(PYTHONS)}"
          + (f" (capped by {', '.join(caps)})" if caps else ""))


def resolve(python: str, inputs: list[str], *extra: str) -> dict[str, str]:
    out = uv("pip", "compile", *inputs, "--python-version", python, "--python-platform", PLATFORM,
             "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet",
             *constraint_args([LOCK, *pip_caps()]), *extra)
    pins = [Requirement(line) for line in pin_lines(out)]
    return {canonicalize_name(r.name): next(iter(r.specifier)).version for r in pins}


def find_python(version: str) -> str | None:
    """An interpreter of this minor version on this machine (on PATH, or pyenv's), if there is one."""
    found = [shutil.which(f"python{version}")]
    found += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python{version}")), reverse=True)
    wanted = f"import sys; sys.exit('%d.%d' % sys.version_info[:2] != '{version}')"
    return next((exe for exe in found if exe and subprocess.run([exe, "-c", wanted], capture_output=True).returncode == 0),
                None)


def pip_resolve(exe: str) -> dict[str, str]:
    """What pip itself would install into a new venv of `exe` (`make setup`'s steps, as a dry run)."""
    def pip(py: Path, *args: str) -> None:
        done = subprocess.run([str(py), "-m", "pip", *args], cwd=ROOT, text=True, capture_output=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout + done.stderr)
            raise SystemExit(f"pip failed ({done.returncode}) for {exe}: pip {' '.join(args)}")

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([exe, "-m", "venv", f"{tmp}/venv"], check=True)
        py, got = Path(tmp, "venv", "bin", "python"), dict[str, str]()
        pip(py, "install", "-q", "-c", str(LOCK), "--upgrade", "pip")
        for n, args in enumerate([["-e", ".[dev]"], ["--no-deps", *NO_DEPS]]):
            report = Path(tmp, f"report{n}.json")
            pip(py, "install", "-q", "--dry-run", "--ignore-installed", "--only-binary", ":all:",
                "--report", str(report), "-c", str(LOCK), *args)
            for item in json.loads(report.read_text())["install"]:
                got[canonicalize_name(item["metadata"]["name"])] = item["metadata"]["version"]
    got.pop("bioclip-edge", None)
    return got


def check() -> None:
    pythons, pins = read_lock()
    if not pythons:
        raise SystemExit(f"{LOCK.name} has no '# pythons:' line")
    problems: list[str] = []
    used: set[str] = set()
    versions: dict[str, set[str]] = {}
    for python in pythons:
        locked = pins_for(pins, python)
        for name, version in locked.items():
            versions.setdefault(name, set()).add(version)
        resolved = resolve(python, ["pyproject.toml", str(EXTRA_INPUT)], "--extra", "dev")
        with tempfile.NamedTemporaryFile("w", suffix=".in") as f:
            f.write("\n".join(NO_DEPS) + "\n")
            f.flush()
            resolved.update(resolve(python, [f.name], "--no-deps"))
        missing = sorted(set(resolved) - set(locked))
        differ = sorted(n for n in set(resolved) & set(locked) if resolved[n] != locked[n])
        problems += [f"Python {python}: needs {n}=={resolved[n]}, which the lock does not pin" for n in missing]
        problems += [f"Python {python}: resolves {n}=={resolved[n]}, the lock pins {locked[n]}" for n in differ]
        used |= set(resolved)
        print(f"Python {python} ({PLATFORM}): uv resolves {len(resolved)} packages from wheels to the lock's versions"
              f" (torch {resolved.get('torch')}, numpy {resolved.get('numpy')}, onnxruntime {resolved.get('onnxruntime')})")
        # pip is what installs: where this machine has the Python, pip's own resolution must match too.
        exe = find_python(python) if os.environ.get("LOCK_CHECK_PIP", "1") == "1" else None
        if exe is None:
            print(f"Python {python}: no interpreter here (or LOCK_CHECK_PIP=0), pip's dry run skipped")
            continue
        by_pip = pip_resolve(exe)
        problems += [f"Python {python}: pip installs {n}=={v}, the lock pins {locked.get(n, 'nothing')}"
                     for n, v in sorted(by_pip.items()) if locked.get(n) != v]
        print(f"Python {python}: pip ({exe}) would install {len(by_pip)} packages, from wheels, all at the lock's versions"
              if all(locked.get(n) == v for n, v in by_pip.items()) else f"Python {python}: pip differs from the lock")
    unused = sorted(set().union(*(pins_for(pins, p) for p in pythons)) - used)
    problems += [f"the lock pins {n}, which no listed Python needs on {PLATFORM}" for n in unused]
    split = sorted(n for n, v in versions.items() if len(v) > 1)
    print(f"pinned at different versions on different Pythons: {', '.join(split) or 'none'}")
    if problems:
        raise SystemExit("\n".join(problems) + "\nrun 'make lock' to refresh requirements/lock.txt")
    print(f"{LOCK.relative_to(ROOT)} resolves for Python {', '.join(pythons)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("make", help="rewrite the lock")
    made.add_argument("--upgrade", action="store_true", help="newest versions, not the locked ones")
    sub.add_parser("check", help="resolve the lock for every listed Python")
    args = parser.parse_args()
    make(args.upgrade) if args.command == "make" else check()


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Refresh requirements/lock.txt: resolve the development environment from pyproject.toml's ranges in
# a fresh, empty venv, exactly as a new machine would, and freeze every version it installed.
# Run through `make lock`. The lock is a pip constraints file (`pip install -c requirements/lock.txt`):
# it pins every package the environment holds, and packages a platform does not need are ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
venv="$(mktemp -d)/venv"
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"
# MegaDetector's output validator, without the detector's own dependencies (torch, YOLO, ...):
# its validator imports only what the [test] extra already brings.
"$venv/bin/python" -m pip install -q --no-deps megadetector
py="$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
{
  echo "# bioclip-edge development lock: every package of 'pip install -e .[dev]' + megadetector (--no-deps)."
  echo "# python: $py"
  echo "# Refresh with 'make lock' (requirements/make_lock.sh); install with 'make setup'."
  "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -v '^bioclip-edge' | LC_ALL=C sort -f
} > requirements/lock.txt
rm -rf "$(dirname "$venv")"
echo "wrote requirements/lock.txt (python $py): $(grep -vc '^#' requirements/lock.txt) packages"

#!/usr/bin/env bash
# `make lock` and `make lock-check`: runs requirements/lock.py (its docstring says what each does) with
# the tools of requirements/tools.txt, in a venv of their own under requirements/.tools (git-ignored),
# set up from PyPI on first use. Usage: make_lock.sh [--upgrade] | make_lock.sh --check
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tools=requirements/.tools
if ! cmp -s requirements/tools.txt "$tools/tools.txt" 2>/dev/null; then
  rm -rf "$tools"
  "$PYTHON" -m venv "$tools"
  echo '*' > "$tools/.gitignore"
  "$tools/bin/python" -m pip install -q -r requirements/tools.txt
  cp requirements/tools.txt "$tools/tools.txt"
fi
if [ "${1:-}" = --check ]; then
  exec "$tools/bin/python" requirements/lock.py check
fi
exec "$tools/bin/python" requirements/lock.py make "$@"

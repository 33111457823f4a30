"""Every example a docs page marks runnable (``<!-- runnable -->`` on the line before its fence) runs.

The marked blocks of a page run in order, in one folder laid out as the pages assume: the tiny
exported bundle at ``bundles/bioclip`` and real photos in ``DCIM/`` (also ``$BUNDLE`` and ``$PHOTOS``).
Shell blocks run with ``bash -euo pipefail`` and the venv's ``bioclip-edge`` first on PATH; Python
blocks with this interpreter. A block that fails fails the page's test with its output.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.gen import ROOT

DOCS = ROOT / "docs"
MARK = "<!-- runnable -->"
BLOCK = re.compile(r"^<!-- runnable -->\s*\n```(bash|python)[^\n]*\n(.*?)^```", re.S | re.M)


def runnable_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each marked block, in page order."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def marks(text: str) -> int:
    """Lines that are the mark (a page may name the mark inside a sentence without marking anything)."""
    return sum(line.strip() == MARK for line in text.splitlines())


def pages_with_examples() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if marks(p.read_text(encoding="utf-8")))


def test_every_mark_is_on_a_block_that_runs():
    """A mark that does not sit right above a bash or python fence would silently run nothing."""
    for page in pages_with_examples():
        text = page.read_text(encoding="utf-8")
        assert marks(text) == len(runnable_blocks(text)), f"{page}: a {MARK} not followed by a bash/python block"


def test_the_extractor_finds_marked_blocks_only():
    text = "```bash\nnot me\n```\n\n<!-- runnable -->\n```bash title=\"x\"\necho a\n```\n<!-- runnable -->\n```python\nprint(1)\n```\n"
    assert runnable_blocks(text) == [("bash", "echo a\n"), ("python", "print(1)\n")]


@pytest.fixture
def workspace(tmp_path, tiny_bundle, photo_dir) -> Path:
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "bioclip").symlink_to(tiny_bundle, target_is_directory=True)
    shutil.copytree(photo_dir, tmp_path / "DCIM")
    return tmp_path


@pytest.mark.parametrize("page", pages_with_examples(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_runnable_examples(page, workspace):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "BUNDLE": str(workspace / "bundles" / "bioclip"), "PHOTOS": str(workspace / "DCIM"),
           "PYTHONPATH": str(ROOT)}
    for i, (language, code) in enumerate(runnable_blocks(page.read_text(encoding="utf-8")), start=1):
        cmd = ["bash", "-euo", "pipefail", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (f"{page.relative_to(DOCS)} block {i} ({language}) exited {proc.returncode}:\n"
                                      f"{code}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")

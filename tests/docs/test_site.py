"""The site builds with --strict (broken links, anchors, pages missing from the nav fail), loads
nothing from the network, and the README stays a short front door."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.gen import ROOT

README = ROOT / "README.md"
EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+\"", re.I)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out


def test_the_site_builds_strict_and_offline(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 20
    for page in pages:
        found = EXTERNAL.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(site)} loads from the network: {found[:3]}"
    cli = (site / "reference" / "cli.html").read_text(encoding="utf-8")
    assert "bioclip-edge labels adapt" in cli and "--detection-threshold" in cli
    assert "Machine:" in (site / "performance" / "index.html").read_text(encoding="utf-8")


def test_readme_is_short_and_opens_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines: move detail into docs/"
    fence = lines.index("```bash")
    first = [line.split("#")[0].strip() for line in lines[fence + 1:fence + 3]]
    assert lines[0].startswith("# ") and fence <= 3
    assert first == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command_and_builds_the_docs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test$", ci, re.M) and re.search(r"^make docs$", ci, re.M)
    assert ci.index("make test") < ci.index("make docs")


def test_the_readme_commands_parse():
    """The README's commands are not run (they need the hub and a real card), but each must still be
    a command line the current parser accepts."""
    import shlex

    from bioclip_edge.cli import build_parser

    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["bioclip-edge"]:
                commands.append(words)
    assert len(commands) >= 10
    for words in commands:
        try:
            build_parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"README command no longer parses: {shlex.join(words)}")

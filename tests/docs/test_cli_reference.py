"""The generated CLI reference cannot drift: every command and option the parsers have is on the
page, every visible option has a help string, and every command's --help ends with example lines
that still parse."""

from __future__ import annotations

import argparse
import shlex

import pytest

from bioclip_edge.cli import build_parser
from tests.docs.gen import load

ref = load("cli_reference")


def _commands():
    return list(ref.commands(ref.walk(build_parser())))


def test_every_command_is_walked_including_groups():
    names = {c.name for c in _commands()}
    assert {"bioclip-edge classify", "bioclip-edge labels build", "bioclip-edge labels adapt",
            "bioclip-edge profile size", "bioclip-edge export"} <= names


def test_every_visible_option_has_help():
    assert ref.problems(build_parser()) == [], "document these in the command's add_arguments (help=...)"


def test_the_check_catches_an_undocumented_option_and_missing_examples():
    parser = argparse.ArgumentParser(prog="bioclip-edge")
    sub = parser.add_subparsers()
    p = sub.add_parser("new", help="a new command")
    p.add_argument("--documented", help="says what it does")
    p.add_argument("--forgotten")
    found = ref.problems(parser)
    assert "bioclip-edge new: --forgotten FORGOTTEN has no help" in found
    assert "bioclip-edge new: no example lines (EPILOG 'examples:' + lines starting 'bioclip-edge')" in found


@pytest.mark.parametrize("cmd", _commands(), ids=lambda c: c.anchor)
def test_help_ends_with_the_examples_and_they_parse(cmd):
    examples = ref.example_lines(cmd.parser)
    assert examples, f"{cmd.name}: add EPILOG = 'examples:\\n  bioclip-edge ...'"
    assert cmd.parser.format_help().rstrip().endswith(ref.example_block(cmd.parser)[-1].strip())
    parser = build_parser()
    for line in examples:
        words = shlex.split(line, comments=True)
        assert words[:len(cmd.path) + 1] == ["bioclip-edge", *cmd.path], line
        try:
            parser.parse_args(words[1:])
        except SystemExit as exc:  # argparse rejected the example
            pytest.fail(f"{cmd.name}: example does not parse ({exc}): {line}")


def test_the_page_shows_every_option_and_example():
    page = ref.render(build_parser())
    for cmd in _commands():
        assert f"## {cmd.name} " in page or f"### {cmd.name} " in page or f"#### {cmd.name} " in page
        for action in ref.visible_actions(cmd.parser):
            assert f"`{ref.invocation(cmd.parser, action)}`" in page, (cmd.name, action.dest)
        for line in ref.example_block(cmd.parser):
            assert line in page

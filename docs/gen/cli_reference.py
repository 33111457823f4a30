"""The CLI reference page, generated from the argparse parsers (``bioclip_edge.cli.build_parser``).

The page is made at build time (``docs/gen/hooks.py``), so it always shows the options the
installed code has: there is no committed copy to go stale. ``tests/docs/test_cli_reference.py``
holds every command to the rules that keep it useful: each visible option has a help string, and
each command ends its ``--help`` with example lines that parse.

    .venv/bin/python docs/gen/cli_reference.py > /tmp/cli.md     # to read it without building
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from typing import Iterator

EXAMPLES_HEADER = "examples:"


@dataclass
class Command:
    """One parser of the tree: ``bioclip-edge``, a command, or a group's action."""

    path: tuple[str, ...]  # ("labels", "build")
    parser: argparse.ArgumentParser
    help: str = ""
    children: list["Command"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(("bioclip-edge",) + self.path)

    @property
    def anchor(self) -> str:
        return "-".join(self.path) or "bioclip-edge"


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), help: str = "") -> Command:
    """The parser tree, subparsers followed recursively, in the order ``--help`` lists them."""
    node = Command(path, parser, help)
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            node.children.append(walk(sub, path + (name,), helps.get(name, "")))
    return node


def commands(root: Command) -> Iterator[Command]:
    """Every command below the root, depth first."""
    for child in root.children:
        yield child
        yield from commands(child)


def visible_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """Options and positionals a user sees in ``--help`` (not -h, not subparsers, not suppressed ones)."""
    return [a for a in parser._actions
            if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def example_block(parser: argparse.ArgumentParser) -> list[str]:
    """The epilog's example lines as ``--help`` shows them (after ``examples:``), dedented."""
    lines = (parser.epilog or "").splitlines()
    stripped = [line.strip() for line in lines]
    if EXAMPLES_HEADER not in stripped:
        return []
    block = lines[stripped.index(EXAMPLES_HEADER) + 1:]
    indent = min((len(line) - len(line.lstrip()) for line in block if line.strip()), default=0)
    return [line[indent:].rstrip() for line in block]


def example_lines(parser: argparse.ArgumentParser) -> list[str]:
    """The example commands: continuation lines joined, ``a && b`` split, those starting ``bioclip-edge``."""
    joined, current = [], ""
    for line in example_block(parser):
        current += line.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip() + " "
            continue
        joined.append(current)
        current = ""
    commands = [part.strip() for line in joined for part in re.split(r"&&|;", line)]
    return [c for c in commands if c.startswith("bioclip-edge")]


def problems(parser: argparse.ArgumentParser) -> list[str]:
    """What keeps a command's reference from being complete: options without help, no examples."""
    found = []
    for cmd in commands(walk(parser)):
        found += [f"{cmd.name}: {invocation(cmd.parser, a)} has no help"
                  for a in visible_actions(cmd.parser) if not (a.help or "").strip()]
        if not example_lines(cmd.parser):
            found.append(f"{cmd.name}: no example lines (EPILOG 'examples:' + lines starting 'bioclip-edge')")
    return found


def invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    return formatter._format_action_invocation(action)


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help as ``--help`` prints it (``%(default)s`` filled in), on one line."""
    if not action.help:
        return ""
    formatter = parser._get_formatter()
    return " ".join(formatter._expand_help(action).split())


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("_", "\\_")


def render_command(cmd: Command) -> list[str]:
    depth = min(len(cmd.path) + 1, 4)
    lines = [f"{'#' * depth} {cmd.name} {{#{cmd.anchor}}}", ""]
    description = cmd.parser.description or cmd.help
    if description:
        lines += ["```text", description.strip("\n"), "```", ""]
    usage = cmd.parser.format_usage().strip().removeprefix("usage: ")
    lines += ["```text", usage, "```", ""]
    actions = visible_actions(cmd.parser)
    if actions:
        lines += [f"- `{invocation(cmd.parser, a)}`: {_escape(help_text(cmd.parser, a))}"
                  + (" *(required)*" if a.required and a.option_strings else "") for a in actions]
        lines.append("")
    if cmd.children:
        lines += [f"- [`{c.name}`](#{c.anchor}): {_escape(c.help)}" for c in cmd.children]
        lines.append("")
    examples = example_block(cmd.parser)
    if examples:
        lines += ["Examples:", "", "```bash", *examples, "```", ""]
    return lines


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole reference page as Markdown."""
    if parser is None:
        from bioclip_edge.cli import build_parser

        parser = build_parser()
    root = walk(parser)
    lines = ["# Command-line reference", "",
             "Generated from the parsers of the installed `bioclip-edge` each time the site is built: every "
             "command, every option, and the example lines each `--help` ends with. Options are listed as "
             "`--help` lists them.", "",
             "Exit codes of every command: **0** done; **1** some inputs failed (listed in the output) or a "
             "variant is below its parity bound; **2** bad input (the message names it); **3** the output "
             "could not be written (disk full, read-only); **130** interrupted (finished work is kept).", "",
             "## Global options {#global}", "", "```text", parser.format_usage().strip().removeprefix("usage: "), "```", ""]
    lines += [f"- `{invocation(parser, a)}`: {_escape(help_text(parser, a))}" for a in visible_actions(parser)]
    lines.append("")
    for cmd in commands(root):
        lines += render_command(cmd)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

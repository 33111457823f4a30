"""The ``bioclip-edge`` command.

argparse from the standard library keeps ``--help`` fast: each subcommand lives in a small
module that imports only the standard library at module level and loads numpy, onnxruntime or
torch inside its ``run`` function.

A subcommand module provides::

    HELP = "one line"
    EPILOG = "examples:\n  bioclip-edge ..."   # optional: shown at the end of --help, and in the docs' reference
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int          # exit code

Command groups (``labels``, ``profile``) add their own subparsers in ``add_arguments`` and set
``args.run`` for the chosen sub-subcommand; ``main`` calls ``args.run`` when it is set.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from typing import Sequence

from bioclip_edge import __version__
from bioclip_edge.errors import WRITE_FAILURE_EXIT, CommandError, UserError, WriteFailure  # noqa: F401  (CommandError: re-exported)

# name -> module; order is the order shown in --help.
COMMANDS: dict[str, str] = {
    "export": "bioclip_edge.export.cli_export",
    "verify": "bioclip_edge.export.cli_verify",
    "classify": "bioclip_edge.runtime.cli.classify",
    "embed": "bioclip_edge.runtime.cli.embed",
    "labels": "bioclip_edge.runtime.cli.labels",
    "profile": "bioclip_edge.profiling.cli",
    "info": "bioclip_edge.runtime.cli.info",
    "preview": "bioclip_edge.runtime.cli.preview",
    "evaluate": "bioclip_edge.runtime.cli.evaluate",
    "camtrap-dp": "bioclip_edge.runtime.cli.camtrap_dp",
    "sort": "bioclip_edge.runtime.cli.sort",
    "pack": "bioclip_edge.runtime.cli.pack",
}

EXIT_CODES = """exit codes:
  0    done
  1    done, but some images failed (each has a failure row in the output)
  2    bad input or options: nothing was done, or a refused --resume; the message says what to change
  3    a file could not be written (disk full, read-only card, I/O error): finished work was kept;
       fix the disk, then run the same command again (with --resume where the command has it)
  130  interrupted (Ctrl-C): finished work was kept; --resume continues"""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps a one-paragraph description as argparse does, but keeps text written in lines (an
    epilog's example commands, a description's list) line for line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bioclip-edge",
        description="Export BioCLIP / open_clip models to verified ONNX bundles and run them on camera-trap images.",
        epilog=EXIT_CODES, formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bioclip-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # subcommand not part of this build
                continue
            raise
        p = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                           epilog=getattr(module, "EPILOG", None),
                           formatter_class=getattr(module, "FORMATTER", HelpFormatter))
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    configure_process(args.verbose)
    run = getattr(args, "run", None) or args._module.run
    try:
        return int(run(args) or 0)
    except WriteFailure as exc:
        return _write_failed(args, exc, exc)
    except UserError as exc:
        print(f"bioclip-edge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a refused write that no writer turned into a WriteFailure
        from bioclip_edge.runtime.common.files import is_write_error, write_failure

        if not is_write_error(exc):
            raise
        return _write_failed(args, write_failure(exc, exc.filename or getattr(args, "out", None)), exc)
    except KeyboardInterrupt:
        print(f"bioclip-edge {args.command}: interrupted; finished work was kept", file=sys.stderr)
        return 130


def _write_failed(args: argparse.Namespace, failure: WriteFailure, cause: BaseException) -> int:
    """A file the disk refused: one line (the traceback too with -v), exit code 3."""
    if args.verbose:
        traceback.print_exception(cause)
    resume = "--resume" if hasattr(args, "resume") else None
    print(f"bioclip-edge {args.command}: error: {failure.text(resume)}", file=sys.stderr)
    return WRITE_FAILURE_EXIT


def configure_process(verbose: int) -> None:
    """Logging and warning filters for a command-line run: set here, never when a module is imported."""
    from bioclip_edge.runtime.images.decode import quiet_pillow_warnings

    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s: %(message)s")
    quiet_pillow_warnings()


if __name__ == "__main__":
    sys.exit(main())

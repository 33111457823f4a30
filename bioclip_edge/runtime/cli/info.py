"""``bioclip-edge info``: what a bundle holds, and whether it can be trusted.

Prints the model, where its weights came from (a RANDOM-WEIGHTS warning first when they are
random), the preprocessing, the tokenizer, and every variant with its size and measured parity
against PyTorch. ``--json`` prints the manifest instead. The bundle is opened with checksum
verification, so a corrupt copy is reported here rather than mid-run.
"""

from __future__ import annotations

import argparse

HELP = "show a bundle's model, weights source, preprocessing and variants with sizes and parity"

EPILOG = """examples:
  bioclip-edge info bundles/bioclip
  bioclip-edge info bundles/bioclip --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.add_argument("--no-verify", action="store_true", help="skip sha256 checks (faster on huge bundles)")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.inference.bundle import Bundle

    bundle = Bundle.open(args.bundle, verify_checksums=not args.no_verify)
    if args.json:
        print(bundle.manifest.to_json(), end="")
        return 0
    print(describe(bundle))
    return 0


def describe(bundle) -> str:
    """The bundle (one renderer, shared with ``export``) and what this machine would run."""
    from bioclip_edge.runtime.inference.summary import describe_bundle

    return describe_bundle(bundle.root, bundle.manifest) + f"\n\non this machine: {_auto_choice(bundle)}"


def _auto_choice(bundle) -> str:
    """What ``classify``/``embed`` run with the default ``--precision auto --backend auto``."""
    from bioclip_edge.errors import UserError
    from bioclip_edge.runtime.inference.selection import select_vision

    try:
        chosen = select_vision(bundle)
    except UserError as exc:
        return f"--precision auto cannot choose ({exc})"
    return f"--precision auto runs {chosen.variant.name} on {chosen.backend} ({chosen.reason})"

"""``bioclip-edge verify``: re-measure a bundle's parity against its stored PyTorch reference."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "check a bundle's files and re-measure every variant's parity; exit 1 if any is below its bound"
DESCRIPTION = """Checks the manifest, files and checksums, then runs every variant on the PyTorch reference
inputs stored in the bundle (parity/reference.npz) and prints a parity table. Needs no torch.
Exit code: 0 all within bounds, 1 a variant is below its bound, 2 the bundle is broken."""
EPILOG = """examples:
  bioclip-edge verify bundles/bioclip
  bioclip-edge verify bundles/bioclip --json parity.json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", type=Path, help="bundle folder")
    p.add_argument("--json", dest="json_out", type=Path, help="also write the measured figures as JSON here")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.export.verify import verify_bundle

    report = verify_bundle(args.bundle)
    print(report.text())
    if args.json_out:
        from bioclip_edge.runtime.common.files import write_atomic

        write_atomic(args.json_out, report.to_json())
    return 0 if report.passed else 1

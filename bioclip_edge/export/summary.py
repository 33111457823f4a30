"""What ``bioclip-edge export`` prints after writing a bundle (the runtime's one renderer)."""

from __future__ import annotations

from pathlib import Path

from bioclip_edge.runtime.inference.manifest import Manifest
from bioclip_edge.runtime.inference.summary import describe_bundle, parity_table

__all__ = ["parity_table", "print_bundle_summary"]


def print_bundle_summary(folder: Path, manifest: Manifest) -> None:
    print()
    print(describe_bundle(folder, manifest))

"""A vision-only copy of a bundle: the graphs a pack runs, under a manifest that names only them.

A pack scores against a label matrix, so the text tower, the tokenizer and the parity reference
stay behind (on a ViT-B/16 bundle the text graphs are about half the bytes). The copy is still
a bundle: ``Bundle.open`` checks it like any other (every named file present, sizes and sha256 as
recorded), and the runtime's graph selection reads the same manifest fields it reads in the
original. ``precision`` ``auto`` keeps every vision graph, so the machine the pack runs on makes
the choice ``classify`` would make there; a named precision keeps that graph alone.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.runtime.inference.selection import named_variant

TEXT_LEFT_OUT = "text tower left out: this copy scores images against a label matrix"


def vision_variants(bundle: Bundle, precision: str) -> tuple[Variant, ...]:
    """The vision graphs a pack of ``precision`` needs (``auto``: all of them)."""
    if precision == "auto":
        return tuple(v for v in bundle.manifest.variants if v.tower == "vision")
    return (named_variant(bundle, "vision", precision),)


def copy_vision_bundle(bundle: Bundle, dest: Path, precision: str) -> Bundle:
    """Copy ``bundle``'s vision graphs for ``precision`` into ``dest`` with a manifest naming only
    them; returns the copy, opened (and so checked) as a bundle."""
    variants = vision_variants(bundle, precision)
    dest.mkdir(parents=True, exist_ok=True)
    for variant in variants:
        for rel in (variant.file, variant.data_file):
            if rel:
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(bundle.path(rel), target)
    manifest = bundle.manifest
    tokenizer = dataclasses.replace(manifest.tokenizer, files={}, available=False, note=TEXT_LEFT_OUT)
    dataclasses.replace(manifest, variants=variants, tokenizer=tokenizer, parity_reference=None).write(dest)
    return Bundle.open(dest)

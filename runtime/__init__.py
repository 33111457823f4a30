"""The torch-free runtime: open a bundle, preprocess images, embed, score against labels.

Imports only numpy, onnxruntime and Pillow (and tokenizers for label text). Importing this
package is cheap: ``Classifier`` and ``LabelMatrix`` load their modules (and numpy) on first use.

    from bioclip_edge.runtime import Bundle, Classifier
    bundle = Bundle.open("bundles/bioclip")
"""

from __future__ import annotations

import importlib

from .bundle import Bundle, BundleError
from .manifest import Manifest, ManifestError

_LAZY = {
    "Classifier": "classifier",
    "ImageEmbedder": "embedder",
    "LabelMatrix": "labels",
    "TextEncoder": "text",
    "Tokenizer": "tokenizer",
}

__all__ = ["Bundle", "BundleError", "Manifest", "ManifestError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

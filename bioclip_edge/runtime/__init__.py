"""The torch-free runtime: open a bundle, preprocess images, embed, score against labels.

Imports only numpy, onnxruntime and Pillow (and tokenizers for label text). Importing this
package is cheap: ``Classifier`` and ``LabelMatrix`` load their modules (and numpy) on first use.

Sub-packages, each importing only those listed before it: ``inference`` (manifest, bundle, graph
selection, sessions), ``images`` (discovery, decoding, transform, pipeline, boxes), ``text``
(tokenizer, recipes, encoder), ``labels`` (matrices, build/import, scoring), ``jobs`` (Classifier,
records, classify/embed jobs, the job runner, checkpoints, writers) and ``cli`` (the commands).

    from bioclip_edge.runtime import Bundle, Classifier
    bundle = Bundle.open("bundles/bioclip")
"""

from __future__ import annotations

import importlib

_LAZY = {  # loaded on first use, so `bioclip-edge --help` imports none of them
    "Bundle": "inference.bundle",
    "BundleError": "inference.bundle",
    "Manifest": "inference.manifest",
    "ManifestError": "inference.manifest",
    "Classifier": "jobs.classifier",
    "ClassifierDescription": "jobs.classifier",
    "ClassifyRequest": "jobs.classifier",
    "ClassifyJob": "jobs.classify_job",
    "run_classify": "jobs.classify_job",
    "EmbedJob": "jobs.embed_job",
    "run_embed": "jobs.embed_job",
    "JobConfig": "jobs.runner",
    "JobSpec": "jobs.runner",
    "run_job": "jobs.runner",
    "Record": "jobs.records",
    "ImageEmbedder": "images.embedder",
    "ImageRequest": "images.request",
    "LabelMatrix": "labels.matrix",
    "TextEncoder": "text.encoder",
    "Tokenizer": "text.tokenizer",
}

__all__ = [*_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

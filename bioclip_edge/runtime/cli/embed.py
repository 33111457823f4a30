"""``bioclip-edge embed``: image embeddings for folders of images, no torch.

Writes ``--out embeddings.npy`` (float32 or float16 [N, dim], unit length, one row per image
that could be read) and a sidecar ``embeddings.json``: the model, variant, dimension, the
random-weights flag, ``images`` (the row order: filepath plus EXIF fields) and ``failures``
(filepath and reason for each file that could not be read) and the ``run_fingerprint``. Both are
written atomically, checked before any image is read, and never replaced without ``--overwrite``;
``--resume`` appends images new to the inputs (``runtime.jobs.embed_job``).
Exit code 1 when some images failed, 2 for a bad bundle, option or output target.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bioclip_edge.runtime.cli.options import (add_engine_arguments, add_image_arguments, add_input_arguments,
                                              add_output_arguments, engine, image_request, progress)

HELP = "embed images (files, folders, lists) with a bundle's vision tower into a .npy or .parquet file"
EPILOG = """examples:
  bioclip-edge embed bundles/bioclip DCIM/ --out embeddings.npy        # + embeddings.json: paths, failures
  bioclip-edge embed bundles/bioclip DCIM/ --out embeddings.parquet    # one row per image"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser, "image files, folders (recursive) or .txt lists of paths")
    parser.add_argument("--out", default="embeddings.npy",
                        help="output .npy (default embeddings.npy; index beside it: same name, .json) or .parquet (one file, "
                             "one row per image: filepath, embedding, failure, EXIF fields)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="stored dtype (default float32)")
    add_image_arguments(parser)
    add_output_arguments(parser,
                         resume_help="extend an existing embeddings file: its rows are kept (failed images retried), images new "
                                     "to INPUTS are appended; the bundle, variant, backend, --dtype and options must be the same",
                         overwrite_help="replace existing embeddings (and index) files")
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                        help="save finished embeddings every N images (default 500); --resume continues from them")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="... or every this many seconds (default 60)")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.jobs.embed_job import EmbedJob

    request = image_request(args)  # bad options stop here
    job = EmbedJob(out=args.out, dtype=args.dtype, relative_paths=bool(args.relative_paths), resume=args.resume,
                   overwrite=args.overwrite, progress=progress(args), checkpoint_images=args.checkpoint_every,
                   checkpoint_seconds=args.checkpoint_seconds)
    job.check_targets()  # both files, before any image is read or the model loads
    items = job.items(args.inputs)
    where = engine(args)  # a cluster is joined and checked here, before the model loads
    try:
        return _embed(args, request, job, items, where)
    finally:
        where.close()


def _embed(args: argparse.Namespace, request: Any, job: Any, items: list, where: Any) -> int:
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.jobs.embed_job import run_embed
    from bioclip_edge.runtime.inference.memory import closing_line

    bundle = Bundle.open(args.bundle, defer_hashing=True)
    embedder = ImageEmbedder(bundle, request)
    if bundle.random_weights:
        print(f"WARNING: {args.bundle} holds RANDOM weights; these embeddings mean nothing. Use them for testing only.", file=sys.stderr)
    print(f"{bundle.manifest.model.id}: {embedder.variant.name} on {embedder.provider} ({embedder.plan.reason})",
          file=sys.stderr)
    print(f"decode: {embedder.decode_choice.mode} ({embedder.decode_choice.reason})", file=sys.stderr)
    if embedder.flow.memory is not None and not embedder.flow.memory.over_budget:  # else logged as a warning
        print(embedder.flow.memory.text(), file=sys.stderr)
    summary = run_embed(embedder, job, items, engine=where)
    print(summary.line())
    print(closing_line(embedder.flow.memory), file=sys.stderr)
    return 1 if summary.failed else 0

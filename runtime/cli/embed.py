"""``bioclip-edge embed``: image embeddings for folders of images, no torch.

Writes ``--out embeddings.npy`` (float32 or float16 [N, dim], unit length, one row per image
that could be read) and a sidecar ``embeddings.json``: the model, variant, dimension, the
random-weights flag, ``images`` (the row order: filepath plus EXIF fields) and ``failures``
(filepath and reason for each file that could not be read) and the ``run_fingerprint``. Both are
written atomically, checked before any image is read, and never replaced without ``--overwrite``;
``--resume`` appends images new to the inputs (``runtime.jobs.embed``).
Exit code 1 when some images failed, 2 for a bad bundle, option or output target.
"""

from __future__ import annotations

import argparse
import sys

from bioclip_edge.runtime.engine.session import add_session_arguments

HELP = "embed images (files, folders, lists) with a bundle's vision tower into a .npy file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by 'bioclip-edge export'")
    parser.add_argument("inputs", metavar="INPUTS", nargs="+", help="image files, folders (recursive) or .txt lists of paths")
    parser.add_argument("--out", default="embeddings.npy", help="output .npy (default embeddings.npy); sidecar: same name, .json")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="stored dtype (default float32)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
    parser.add_argument("--threads", type=int, default=None, help="image-decoding threads (default: min(4, CPUs); 0: inline)")
    add_session_arguments(parser)
    parser.add_argument("--relative-paths", action="store_true", help="write paths relative to the input folder")
    parser.add_argument("--max-pixels", type=int, default=None, help="decompression-bomb guard (default 100 MP)")
    parser.add_argument("--fast-decode", action="store_true",
                        help="decode JPEGs at reduced scale (kept at least twice the model's input size) before the resize: "
                             "faster on large frames, not bit-identical to open_clip's preprocessing; other formats decode exactly")
    parser.add_argument("--resume", action="store_true",
                        help="extend an existing embeddings file: its rows are kept (failed images retried), images new "
                             "to INPUTS are appended; the bundle, variant, backend, --dtype and options must be the same")
    parser.add_argument("--overwrite", action="store_true", help="replace existing embeddings (and index) files")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bioclip_edge.runtime.engine.bundle import Bundle
    from bioclip_edge.runtime.jobs.classifier import default_threads
    from bioclip_edge.runtime.jobs.embed import EmbedJob, run_embed
    from bioclip_edge.runtime.images.embedder import EmbedOptions, ImageEmbedder
    from bioclip_edge.runtime.images.decode import DEFAULT_MAX_PIXELS, DecodeOptions
    from bioclip_edge.runtime.images.discover import discover, require_images
    from bioclip_edge.runtime.jobs.runner import OptionError
    from bioclip_edge.runtime.engine.session import session_options_from

    if args.batch_size < 1 or (args.threads is not None and args.threads < 0):
        raise OptionError("--batch-size must be at least 1 and --threads 0 or more")
    job = EmbedJob(out=Path(args.out), dtype=args.dtype, relative_paths=bool(args.relative_paths), resume=args.resume,
                   overwrite=args.overwrite, progress=False if args.no_progress else None)
    job.check_targets()  # both files, before any image is read or the model loads
    items = require_images(discover(args.inputs, relative=args.relative_paths), args.inputs)
    bundle = Bundle.open(args.bundle, defer_hashing=True)
    embedder = ImageEmbedder(bundle, args.precision, EmbedOptions(args.batch_size, session_options_from(args)))
    if bundle.random_weights:
        print(f"WARNING: {args.bundle} holds RANDOM weights; these embeddings mean nothing. Use them for testing only.", file=sys.stderr)
    print(f"{bundle.manifest.model.id}: {embedder.variant.name} on {embedder.backend} ({embedder.selection.reason})",
          file=sys.stderr)
    threads = default_threads() if args.threads is None else args.threads
    draft = embedder.transform.draft_size if args.fast_decode else None
    decode = DecodeOptions(max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, draft_size=draft)
    summary = run_embed(embedder, job, items, threads, decode)
    print(summary.line())
    return 1 if summary.failed else 0

"""``bioclip-edge embed``: image embeddings for folders of images, no torch.

Writes ``--out embeddings.npy`` (float32 or float16 [N, dim], unit length, one row per image
that could be read) and a sidecar ``embeddings.json``: the model, variant, dimension, the
random-weights flag, ``images`` (the row order: filepath plus EXIF fields) and ``failures``
(filepath and reason for each file that could not be read). Both are written atomically.
Exit code 1 when some images failed, 2 for a bad bundle or option.
"""

from __future__ import annotations

import argparse
import sys

from .session import add_session_arguments

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
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def sidecar_path(out):
    from pathlib import Path

    out = Path(out)
    return out.with_suffix(".json") if out.suffix == ".npy" else out.with_name(out.name + ".json")


def run(args: argparse.Namespace) -> int:
    import io
    import json
    import time

    import numpy as np

    from ..cli import CommandError
    from .bundle import Bundle
    from .classifier import default_threads
    from .cli_classify import decode_description
    from .embedder import EmbedOptions, ImageEmbedder, iter_embeddings
    from .images import DEFAULT_MAX_PIXELS, DecodeOptions
    from .inputs import discover, require_images
    from .jobs import progress_bar
    from .outputs import write_atomic
    from .session import session_options_from

    if args.batch_size < 1 or (args.threads is not None and args.threads < 0):
        raise CommandError("--batch-size must be at least 1 and --threads 0 or more")
    items = require_images(discover(args.inputs, relative=args.relative_paths), args.inputs)
    bundle = Bundle.open(args.bundle, defer_hashing=True)
    session = session_options_from(args)
    embedder = ImageEmbedder(bundle, args.precision, EmbedOptions(args.batch_size, session))
    if bundle.random_weights:
        print(f"WARNING: {args.bundle} holds RANDOM weights; these embeddings mean nothing. Use them for testing only.", file=sys.stderr)
    print(f"{bundle.manifest.model.id}: {embedder.variant.name} on {embedder.backend} ({embedder.selection.reason})",
          file=sys.stderr)
    threads = default_threads() if args.threads is None else args.threads
    draft = embedder.transform.draft_size if args.fast_decode else None
    decode = DecodeOptions(max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, draft_size=draft)
    rows, images, failures = [], [], []
    start = time.monotonic()
    bar = progress_bar(len(items), False if args.no_progress else None)
    try:
        for prepared, vector in iter_embeddings(embedder, items, threads, decode):
            bar.update(1)
            if vector is None:
                failures.append({"filepath": prepared.item.filepath, "reason": prepared.failure})
                continue
            rows.append(vector)
            images.append({"filepath": prepared.item.filepath, **prepared.info})
    finally:
        bar.close()
    seconds = time.monotonic() - start
    matrix = np.stack(rows).astype(args.dtype) if rows else np.zeros((0, embedder.dim), dtype=args.dtype)
    buf = io.BytesIO()
    np.save(buf, matrix)
    out = _write_bytes_atomic(args.out, buf.getvalue())
    model = bundle.manifest.model
    sidecar = {
        "embeddings": out.name,
        "model": model.id,
        "architecture": model.architecture,
        "variant": embedder.variant.name,
        "backend": embedder.backend,
        "chosen_because": embedder.selection.reason,
        "dim": int(embedder.dim),
        "dtype": args.dtype,
        "normalised": True,
        "decode": decode_description(draft),
        "random_weights": bool(model.source.random_weights),
        "images": images,
        "failures": failures,
    }
    side = write_atomic(sidecar_path(out), json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n")
    rate = len(items) / seconds if seconds > 0 else 0.0
    print(f"embedded {len(images)} image(s) in {seconds:.1f} s ({rate:.1f} images/s); "
          f"{len(failures)} of {len(items)} failed; embeddings: {out}, index: {side}")
    return 1 if failures else 0


def _write_bytes_atomic(path, data: bytes):
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path

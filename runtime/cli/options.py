"""Argument blocks shared by ``classify`` and ``embed``, and the one place that turns parsed
arguments into the request (``ImageRequest`` / ``ClassifyRequest``) passed down unchanged.

Standard library only at module level: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bioclip_edge.runtime.engine.session import add_session_arguments, session_options_from

if TYPE_CHECKING:
    from bioclip_edge.runtime.images.request import ImageRequest
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

FAST_DECODE_HELP = ("decode JPEGs at reduced scale (1/2, 1/4 or 1/8, kept at least twice the model's input size) before the "
                    "resize: faster on large frames, not bit-identical to open_clip's preprocessing; other formats decode exactly")


def add_input_arguments(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    """BUNDLE and INPUTS, the first two positionals of every image command."""
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by 'bioclip-edge export'")
    parser.add_argument("inputs", metavar="INPUTS", nargs="+", help=inputs_help)


def add_image_arguments(parser: argparse.ArgumentParser, fast_decode_note: str = "") -> None:
    """Batching, decoding and the engine (the session block): the fields of ``ImageRequest``."""
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="image-decoding threads working alongside the model (default: min(4, CPUs); 0: decode inline)")
    add_session_arguments(parser)
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse images with more pixels (decompression-bomb guard; default 100 MP)")
    parser.add_argument("--fast-decode", action="store_true", help=FAST_DECODE_HELP + fast_decode_note)


def add_output_arguments(parser: argparse.ArgumentParser, resume_help: str, overwrite_help: str) -> None:
    """How an existing output is treated, paths in it, and the progress bar: the fields of the jobs."""
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    parser.add_argument("--relative-paths", action="store_true", help="write paths relative to the input folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def image_request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``ImageRequest``'s fields, from the arguments ``add_image_arguments`` added."""
    return {"precision": args.precision, "batch_size": args.batch_size, "threads": args.threads,
            "max_pixels": args.max_pixels, "fast_decode": bool(args.fast_decode), "session": session_options_from(args)}


def image_request(args: argparse.Namespace) -> ImageRequest:
    from bioclip_edge.runtime.images.request import ImageRequest

    return ImageRequest(**image_request_fields(args))


def classify_request(args: argparse.Namespace, label_cache_dir: str | None) -> ClassifyRequest:
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

    return ClassifyRequest(**image_request_fields(args), top_k=args.top_k, recipe=args.recipe, label_cache_dir=label_cache_dir)


def progress(args: argparse.Namespace) -> bool | None:
    """--no-progress: never; otherwise a bar when stderr is a terminal (None)."""
    return False if args.no_progress else None

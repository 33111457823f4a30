"""``bioclip-edge preview``: a static site to look at a classify output in any browser, offline.

Standard library only at module level (``--help`` stays fast); Pillow loads in ``run``.
Exit codes: 0 the site was written, 2 a predictions file that is missing or not an output of
ours or MegaDetector's, or an ``--out`` that is a file or a folder of other things.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

HELP = "write a static HTML preview (per-label thumbnail pages, charts, failures) of a classify output"
DESCRIPTION = (
    "Read a classify output (MegaDetector JSON, CSV, JSON Lines or Parquet, or a MegaDetector detector file) and write a "
    "static site into --out: an index with the run, files per top-1 label and a score histogram, one paged "
    "thumbnail page per label (with --detections boxes drawn), video frame strips and a failures page. No server, "
    "no network: open DIR/index.html, or zip the folder and mail it. Thumbnails are reused by the next run."
)

EPILOG = """examples:
  bioclip-edge preview predictions.json --out preview/      # then open preview/index.html
  bioclip-edge preview predictions.csv --out preview/ --image-root DCIM/"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", metavar="PREDICTIONS", help="the output file 'bioclip-edge classify' wrote")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the site (new, empty, or an earlier preview)")
    add_preview_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_preview_arguments(parser: argparse.ArgumentParser) -> None:
    """The options ``preview`` shares with ``classify --preview``."""
    parser.add_argument("--image-root", metavar="DIR", default=None,
                        help="folder that relative image paths (--relative-paths) start from (default: the predictions file's folder)")
    parser.add_argument("--per-page", type=int, default=100, metavar="N", help="thumbnails per page (default 100)")
    parser.add_argument("--thumb-size", type=int, default=256, metavar="PX", help="thumbnail longest side in pixels (default 256)")
    parser.add_argument("--thumb-threads", type=int, default=None, metavar="N",
                        help="threads making thumbnails (default: min(4, CPUs))")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.preview.site import build_preview

    summary = build_preview(preview_config(args, args.predictions, args.out, args.image_root))
    print(summary.line())
    return 0


def preview_config(args: argparse.Namespace, predictions: str | os.PathLike, out: str | os.PathLike, image_root: str | os.PathLike | None):
    """The ``PreviewConfig`` the options describe (``classify --preview`` passes its own paths)."""
    from bioclip_edge.errors import OptionError
    from bioclip_edge.runtime.preview.site import PreviewConfig
    from bioclip_edge.runtime.preview.thumbnails import ThumbConfig

    if args.thumb_size < 16 or args.per_page < 1:
        raise OptionError(f"--thumb-size must be >= 16 and --per-page >= 1 (got {args.thumb_size} and {args.per_page})")
    if image_root is not None and not Path(image_root).is_dir():
        raise OptionError(f"--image-root {image_root}: not a folder; give the folder the output's relative image paths start from")
    thumbs = ThumbConfig(size=args.thumb_size, progress=False if args.no_progress else None)
    if args.thumb_threads is not None:  # else ThumbConfig's default, defined there once
        thumbs = dataclasses.replace(thumbs, threads=args.thumb_threads)
    return PreviewConfig(predictions=Path(predictions), out=Path(out), image_root=Path(image_root) if image_root else None,
                         per_page=args.per_page, thumbs=thumbs)


def check_target(out: str | os.PathLike) -> None:
    """``classify --preview DIR``: refuse a bad DIR before the model loads (exit 2, nothing done)."""
    from bioclip_edge.runtime.preview.site import check_preview_target

    check_preview_target(out)


def preview_after_run(predictions: str | os.PathLike, out: str | os.PathLike, inputs: list[str], meta: dict,
                      progress: bool | None) -> str:
    """``classify --preview DIR``: the same site as ``preview``, default settings; returns the summary line.
    Relative paths (``--relative-paths``, ``--detections``) start from the first input: its folder, or
    a list file's folder (discovery's rule; with several input folders only the first one's resolve)."""
    from bioclip_edge.runtime.preview.site import PreviewConfig, build_preview
    from bioclip_edge.runtime.preview.thumbnails import ThumbConfig

    first = Path(inputs[0])
    root = first if first.is_dir() else first.parent
    config = PreviewConfig(predictions=Path(predictions), out=Path(out), image_root=root, thumbs=ThumbConfig(progress=progress))
    return build_preview(config, meta).line()

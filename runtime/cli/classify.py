"""``bioclip-edge classify``: label folders of camera-trap images with a bundle, no torch.

Standard library only at module level (``--help`` stays fast); the runtime loads in ``run``.
Exit codes: 0 every image classified, 1 the run finished but some images failed (the summary
says how many; each has a failure reason in the output), 2 a bad bundle, label file or option
or output target, or an existing output without --resume/--overwrite (nothing was done), 130 interrupted
(finished results are in the checkpoint: use --resume).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from bioclip_edge.runtime.engine.session import add_session_arguments

if TYPE_CHECKING:  # the runtime loads in run(): --help stays fast
    from bioclip_edge.runtime.jobs.classifier import Classifier
    from bioclip_edge.runtime.jobs.classify import ClassifyJob
    from bioclip_edge.runtime.images.discover import ImageItem

HELP = "classify images (files, folders, lists) against labels; MegaDetector JSON, CSV or JSONL out"
DESCRIPTION = (
    "Classify camera-trap images with a bundle and a label set. Whole images by default; with "
    "--detections, each MegaDetector box above --detection-threshold. Results are checkpointed as "
    "they come; --resume continues an interrupted run or extends a finished output. An existing output is never "
    "replaced without --overwrite."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by 'bioclip-edge export'")
    parser.add_argument("inputs", metavar="INPUTS", nargs="+",
                        help="image files, folders (recursive) or .txt files listing paths; with --detections: the folder "
                             "the MegaDetector file's relative paths start from")
    parser.add_argument("--labels", required=True, metavar="LABELS",
                        help='label matrix (from "bioclip-edge labels build/import"; recognised by content, any name), a text file with one label per line, '
                             'or "lion,leopard,empty savanna"')
    parser.add_argument("--out", default=None, help="output file (default: predictions.json, .csv or .jsonl by --format)")
    parser.add_argument("--format", choices=("megadetector", "csv", "jsonl"), default=None,
                        help="output format (default: from --out's suffix; MegaDetector JSON otherwise)")
    parser.add_argument("--top-k", type=int, default=5, help="labels kept per image or box (default 5)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per model call (default 16)")
    parser.add_argument("--threads", type=int, default=None,
                        help="image-decoding threads working alongside the model (default: min(4, CPUs); 0: decode inline)")
    add_session_arguments(parser)
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its checkpoint, or extend a finished output: images already "
                             "in it are kept (failed ones retried), images new to INPUTS are classified and added; the "
                             "bundle, labels and options must be the same")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (and discard a checkpoint)")
    parser.add_argument("--relative-paths", action="store_true", help="write paths relative to the input folder")
    parser.add_argument("--detections", metavar="MD_JSON", default=None, help="MegaDetector output: classify its boxes")
    parser.add_argument("--detection-threshold", type=float, default=0.2, help="classify boxes with conf >= this (default 0.2)")
    parser.add_argument("--detection-categories", default="animal",
                        help='detection category names to classify, comma-separated, or "all" (default animal)')
    parser.add_argument("--max-pixels", type=int, default=None, help="refuse images with more pixels (decompression-bomb guard; default 100 MP)")
    parser.add_argument("--fast-decode", action="store_true",
                        help="decode JPEGs at reduced scale (1/2, 1/4 or 1/8, kept at least twice the model's input size) "
                             "before the resize: faster on large frames, not bit-identical to open_clip's preprocessing; "
                             "whole images only (ignored with --detections); other formats decode exactly")
    parser.add_argument("--recipe", default="plain", help="text recipe for labels given as text (default plain)")
    parser.add_argument("--label-cache", default=None, metavar="DIR",
                        help="where text labels' embeddings are cached (default: ~/.cache/bioclip-edge/labels, "
                             "or $BIOCLIP_EDGE_CACHE_DIR/labels; BIOCLIP_EDGE_CACHE_DIR=off: no cache)")
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="checkpoint every N images (default 500)")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="... or every this many seconds (default 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.jobs.classify import run_classify

    job = job_from_args(args)  # options, the detections file and the output target: before the model loads
    items = _items(args, job)
    clf = _classifier(args, job)
    summary = run_classify(clf, job, items)
    print(summary.line("classified" if job.detections is None else "processed"))
    if clf.bundle.random_weights:
        print("WARNING: random-weight bundle: the labels above are not predictions of a trained model.", file=sys.stderr)
    return 1 if summary.failed else 0


def job_from_args(args: argparse.Namespace) -> ClassifyJob:
    """The ClassifyJob the options describe; refuses bad options and unwritable or taken outputs."""
    import dataclasses
    from pathlib import Path

    from bioclip_edge.runtime.jobs.classify import DEFAULT_NAMES, ClassifyJob
    from bioclip_edge.runtime.images.detections import read_detections
    from bioclip_edge.runtime.jobs.runner import OptionError
    from bioclip_edge.runtime.jobs.writers import format_for

    _check_numbers(args, OptionError)
    fmt = format_for(args.out or "", args.format)
    job = ClassifyJob(out=Path(args.out or DEFAULT_NAMES[fmt]), fmt=fmt, resume=args.resume, overwrite=args.overwrite,
                      threshold=args.detection_threshold, categories=_categories(args.detection_categories),
                      relative_paths=bool(args.relative_paths), checkpoint_images=args.checkpoint_every,
                      checkpoint_seconds=args.checkpoint_seconds, progress=False if args.no_progress else None)
    job.check_target()
    if args.detections is None:
        return job
    if len(args.inputs) != 1:
        raise OptionError("with --detections, give exactly one INPUT: the folder the MegaDetector file's paths are relative to")
    if not Path(args.inputs[0]).is_dir():
        raise OptionError(f"{args.inputs[0]}: not a folder; with --detections, INPUT is the folder the MegaDetector file's paths start from")
    return dataclasses.replace(job, detections=read_detections(args.detections), image_root=Path(args.inputs[0]))


def _items(args: argparse.Namespace, job: ClassifyJob) -> list[ImageItem]:
    """Whole-image inputs: a mistyped input, or inputs holding no image, stop here, before the model loads."""
    from bioclip_edge.runtime.images.discover import discover, require_images

    if job.detections is not None:
        return []
    return require_images(discover(args.inputs, relative=args.relative_paths), args.inputs)


def _classifier(args: argparse.Namespace, job: ClassifyJob) -> Classifier:
    """Bundle and labels, checked before any image is read; says what runs."""
    from bioclip_edge.runtime.engine.bundle import Bundle
    from bioclip_edge.runtime.engine.cache import cache_dir
    from bioclip_edge.runtime.jobs.classifier import ClassifyOptions, Classifier
    from bioclip_edge.runtime.images.decode import DEFAULT_MAX_PIXELS, DecodeOptions
    from bioclip_edge.runtime.images.transform import ImageTransform
    from bioclip_edge.runtime.engine.session import session_options_from

    bundle = Bundle.open(args.bundle, defer_hashing=True)
    fast = bool(args.fast_decode) and job.detections is None
    if args.fast_decode and job.detections is not None:
        print("note: --fast-decode is ignored with --detections (crops need the full-resolution image)", file=sys.stderr)
    draft = ImageTransform.from_manifest(bundle.manifest.preprocess).draft_size if fast else None
    options = ClassifyOptions(
        precision=args.precision, top_k=args.top_k, batch_size=args.batch_size, threads=args.threads,
        decode=DecodeOptions(max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, draft_size=draft),
        session=session_options_from(args), recipe=args.recipe, label_cache_dir=args.label_cache or cache_dir("labels"),
    )
    clf = Classifier(bundle, args.labels, options)  # labels are checked here, before any image
    if clf.bundle.random_weights:
        why = (clf.bundle.manifest.model.source.note or "no trained checkpoint.").removeprefix("RANDOM WEIGHTS: ")
        print(f"WARNING: {args.bundle} holds RANDOM weights: {why} Use it for testing only.", file=sys.stderr)
    meta = clf.describe()
    print(f"{meta['model']} ({meta['architecture']}): {meta['variant']} on {meta['backend']} ({meta['chosen_because']}); "
          f"{len(clf.names)} labels", file=sys.stderr)
    return clf


def _categories(text: str) -> tuple[str, ...] | None:
    """--detection-categories: names, or None for "all"."""
    if text.strip().lower() == "all":
        return None
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _check_numbers(args: argparse.Namespace, error: type) -> None:
    if args.top_k < 1:
        raise error(f"--top-k must be at least 1 (got {args.top_k})")
    if args.batch_size < 1:
        raise error(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.threads is not None and args.threads < 0:
        raise error(f"--threads must be 0 or more (got {args.threads})")
    if not 0.0 <= args.detection_threshold <= 1.0:
        raise error(f"--detection-threshold must be between 0 and 1 (got {args.detection_threshold})")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise error(f"--max-pixels must be positive (got {args.max_pixels})")

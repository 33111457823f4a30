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

from bioclip_edge.runtime.cli import preview as preview_cli
from bioclip_edge.runtime.cli.options import (add_engine_arguments, add_image_arguments, add_input_arguments,
                                              add_output_arguments, classify_request, engine, progress)

if TYPE_CHECKING:  # the runtime loads in run(): --help stays fast
    from bioclip_edge.runtime.jobs.classifier import Classifier, ClassifyRequest
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob

HELP = "classify images (files, folders, lists) against labels; MegaDetector JSON, CSV, JSONL or Parquet out"
DESCRIPTION = (
    "Classify camera-trap images with a bundle and a label set. Whole images by default; with "
    "--detections, each MegaDetector box above --detection-threshold. Results are checkpointed as "
    "they come; --resume continues an interrupted run or extends a finished output. An existing output is never "
    "replaced without --overwrite."
)

EPILOG = """examples:
  bioclip-edge classify bundles/bioclip DCIM/ --labels "lion,leopard,empty savanna" --out predictions.json --relative-paths
  bioclip-edge classify bundles/bioclip DCIM/ --labels kenya.npz --detections md.json --out md-species.json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser, "image files, folders (recursive) or .txt files listing paths; with --detections: the "
                                "folder the MegaDetector file's relative paths start from")
    parser.add_argument("--labels", required=True, metavar="LABELS",
                        help='label matrix (from "bioclip-edge labels build/import"; recognised by content, any name), a text file with one label per line, '
                             'or "lion,leopard,empty savanna"')
    parser.add_argument("--out", default=None, help="output file (default: predictions.json, .csv, .jsonl or .parquet by --format)")
    parser.add_argument("--format", choices=("megadetector", "csv", "jsonl", "parquet"), default=None,
                        help="output format (default: from --out's suffix; MegaDetector JSON otherwise)")
    parser.add_argument("--top-k", type=int, default=5, help="labels kept per image or box (default 5)")
    add_image_arguments(parser, decode_note="; with --detections, a frame is drafted only while its smallest crop keeps "
                                            "that margin, else decoded exactly")
    add_output_arguments(parser,
                         resume_help="continue an interrupted run from its checkpoint, or extend a finished output: images already "
                                     "in it are kept (failed ones retried), images new to INPUTS are classified and added; the "
                                     "bundle, labels and options must be the same",
                         overwrite_help="replace an existing output (and discard a checkpoint)")
    _add_detection_arguments(parser)
    parser.add_argument("--recipe", default="plain", help="text recipe for labels given as text (default plain)")
    parser.add_argument("--label-cache", default=None, metavar="DIR",
                        help="where text labels' embeddings are cached (default: ~/.cache/bioclip-edge/labels, "
                             "or $BIOCLIP_EDGE_CACHE_DIR/labels; BIOCLIP_EDGE_CACHE_DIR=off: no cache)")
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="checkpoint every N images (default 500)")
    parser.add_argument("--sequence-gap", type=float, default=None, metavar="SECONDS",
                        help="group images into sequences (bursts): same folder and camera, each capture time within SECONDS "
                             "of the previous; adds seq_id, seq_num_frames, frame_num and the sequence's top-k")
    parser.add_argument("--smooth", action="store_true",
                        help="with --sequence-gap: write the sequence's top-k as each image's labels, keeping the image's own alongside")
    parser.add_argument("--checkpoint-seconds", type=float, default=60.0, help="... or every this many seconds (default 60)")
    parser.add_argument("--preview", metavar="DIR", default=None,
                        help="after the run, write a static HTML preview of the output into DIR (see 'bioclip-edge preview')")
    add_engine_arguments(parser)


def _add_detection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--detections", metavar="MD_JSON", default=None, help="MegaDetector output: classify its boxes")
    parser.add_argument("--detection-threshold", type=float, default=0.2, help="classify boxes with conf >= this (default 0.2)")
    parser.add_argument("--detection-categories", default="animal",
                        help='detection category names to classify, comma-separated, or "all" (default animal)')


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.inference.cache import cache_dir
    from bioclip_edge.runtime.inference.memory import closing_line
    from bioclip_edge.runtime.jobs.classify_job import run_classify

    request = classify_request(args, args.label_cache or cache_dir("labels"))  # bad options stop here
    job = job_from_args(args)  # the detections file and the output target: before the model loads
    if args.preview:
        preview_cli.check_target(args.preview)  # a bad --preview DIR stops here too
    items = job.items(args.inputs)
    where = engine(args)  # a cluster is joined and checked here, before the model loads
    try:
        clf = _classifier(args, request, job)
        summary = run_classify(clf, job, items, engine=where)
    finally:
        where.close()
    print(summary.line("classified" if job.detections is None else "processed"))
    print(closing_line(clf.embedder.flow.memory), file=sys.stderr)
    if args.preview:
        print(preview_cli.preview_after_run(job.out, args.preview, args.inputs, clf.description.to_dict(), progress(args)))
    if clf.bundle.random_weights:
        print("WARNING: random-weight bundle: the labels above are not predictions of a trained model.", file=sys.stderr)
    return 1 if summary.failed else 0


def job_from_args(args: argparse.Namespace) -> ClassifyJob:
    """The ClassifyJob the options describe; refuses bad options and unwritable or taken outputs."""
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob
    from bioclip_edge.runtime.jobs.sequences import SequenceOptions

    job = ClassifyJob(out=args.out, fmt=args.format, resume=args.resume, overwrite=args.overwrite,
                      threshold=args.detection_threshold, categories=_categories(args.detection_categories),
                      relative_paths=bool(args.relative_paths), checkpoint_images=args.checkpoint_every,
                      checkpoint_seconds=args.checkpoint_seconds, progress=progress(args),
                      sequences=SequenceOptions(gap=args.sequence_gap, smooth=bool(args.smooth)))
    job.check_target()
    return job if args.detections is None else job.with_detections(args.detections, args.inputs)


def _classifier(args: argparse.Namespace, request: ClassifyRequest, job: ClassifyJob) -> Classifier:
    """Bundle and labels, checked before any image is read; says what runs."""
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.jobs.classifier import Classifier

    bundle = Bundle.open(args.bundle, defer_hashing=True)
    clf = Classifier(bundle, args.labels, request)  # labels are checked here, before any image
    if clf.bundle.random_weights:
        why = (clf.bundle.manifest.model.source.note or "no trained checkpoint.").removeprefix("RANDOM WEIGHTS: ")
        print(f"WARNING: {args.bundle} holds RANDOM weights: {why} Use it for testing only.", file=sys.stderr)
    about = clf.description
    print(f"{about.model} ({about.architecture}): {about.variant} on {about.provider} ({about.chosen_because}); "
          f"{about.labels} labels", file=sys.stderr)
    print(f"decode: {clf.embedder.decode_choice.mode} ({about.decode_chosen_because})", file=sys.stderr)
    if clf.embedder.flow.memory is not None and not clf.embedder.flow.memory.over_budget:  # else logged as a warning
        print(clf.embedder.flow.memory.text(), file=sys.stderr)
    return clf


def _categories(text: str) -> tuple[str, ...] | None:
    """--detection-categories: names, or None for "all"."""
    if text.strip().lower() == "all":
        return None
    return tuple(c.strip() for c in text.split(",") if c.strip())

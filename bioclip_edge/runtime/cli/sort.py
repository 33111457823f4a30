"""``bioclip-edge sort``: file a classify output's images into one folder per species, and undo it.

Standard library only at module level (``--help`` stays fast); the predictions reader loads in ``run``.
Exit codes: 0 sorted (or undone, or a dry run printed), 1 an undo that left some files as they
were (they are listed), 2 a bad option or input, a missing photo, or an ``--into`` folder that is
not this sort's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "file a classify output's images into one folder per species (link, copy or move), with a manifest to undo it"
DESCRIPTION = (
    "Read a classify output (MegaDetector JSON, CSV, JSON Lines or Parquet) and put each image or video into a folder "
    "of --into named for its top-1 label (at --rank, with a taxonomy): below --threshold into unsure/, failed files "
    "into failed/, --detections images without a box into blank/. Files are hard-linked by default (symbolic links "
    "across file systems), or copied, or moved (each copy checked byte for byte before the original is removed). "
    "Nothing is ever overwritten: a clashing name gets a suffix (IMG_0001__2.JPG). Every step is journaled in "
    "--into/.bioclip-edge-sort.jsonl: run the same command again to resume after a kill, and 'sort --undo DIR' to "
    "take the sort back (moved files return byte for byte)."
)
EPILOG = """examples:
  bioclip-edge sort predictions.json --into sorted/ --rank species --threshold 0.6 --dry-run
  bioclip-edge sort predictions.json --into sorted/ --mode move && bioclip-edge sort --undo sorted/"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", nargs="?", metavar="PREDICTIONS", help="the output file 'bioclip-edge classify' wrote")
    parser.add_argument("--into", metavar="DIR", help="folder to sort into: new, empty, or this sort's own (to resume)")
    parser.add_argument("--mode", choices=("link", "copy", "move"), default="link",
                        help="link (default: hard links, symbolic links across file systems), copy, or move")
    parser.add_argument("--threshold", type=float, default=0.5, metavar="S",
                        help="top-1 scores below S go to unsure/ (default 0.5; 0 files every image under its label)")
    parser.add_argument("--rank", default=None, metavar="RANK",
                        help="folders per taxon at this rank (kingdom .. genus, species), scores summed per taxon; needs "
                             "a taxonomy: a MegaDetector output's category descriptions, or --labels")
    parser.add_argument("--labels", default=None, metavar="LABELS.npz", help="the label matrix classify used (its taxonomy, for --rank)")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder relative paths in the output start from (default: the predictions file's folder)")
    parser.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                        help="--detections outputs: count boxes with conf >= T (default: every box classify classified); "
                             "an image with none goes to blank/")
    parser.add_argument("--dry-run", action="store_true", help="print where each file would go; touch nothing")
    parser.add_argument("--undo", metavar="DIR", default=None,
                        help="take back the sort in DIR: moved files go back, links and copies it made are removed")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.errors import CommandError

    if args.undo is not None:
        if args.predictions or args.into:
            raise CommandError("--undo DIR takes no PREDICTIONS and no --into; run 'bioclip-edge sort --undo DIR' alone")
        return _undo(Path(args.undo))
    if not args.predictions or not args.into:
        raise CommandError("give PREDICTIONS and --into DIR (e.g. 'bioclip-edge sort predictions.json --into sorted/'), "
                           "or --undo DIR")
    from bioclip_edge.runtime.sorting import SortRequest, sort_files

    request = SortRequest(predictions=Path(args.predictions), into=Path(args.into), mode=args.mode, threshold=args.threshold,
                          rank=args.rank, labels=Path(args.labels) if args.labels else None,
                          image_root=Path(args.image_root) if args.image_root else None,
                          detection_threshold=args.detection_threshold, dry_run=args.dry_run)
    result = sort_files(request)
    if args.dry_run:
        for p in result.placements:
            if p.source not in result.placed_before:
                print(f"{request.mode} {p.source} -> {Path(request.into) / p.dest}")
    from bioclip_edge.runtime.sorting.report import summary

    print(summary(result))
    return 0


def _undo(into: Path) -> int:
    from bioclip_edge.runtime.sorting import undo_sort
    from bioclip_edge.runtime.sorting.report import undo_summary

    result = undo_sort(into)
    print(undo_summary(result))
    return 0 if result.finished else 1

"""``bioclip-edge evaluate``: how right a classify output is on your labels.

Standard library only at module level (``--help`` stays fast); numpy loads in ``run``.
Exit codes: 0 the report was written, 2 a missing or malformed input, an unknown rank, no file
shared by the predictions and the truth, or an ``--out`` that would replace files without ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "measure a classify output against your labels: accuracy, per-class F1, confusion matrix, thresholds"
DESCRIPTION = (
    "Compare a classify output (MegaDetector JSON, CSV, JSON Lines or Parquet) with your labels: a folder with one "
    "subfolder per label, or a CSV with filepath,label columns (paths relative to the CSV). Files pair by path: "
    "the same absolute path (relative prediction paths start from --image-root, default the predictions file's "
    "folder), else the longest tail of folders and name that only one file on each side has. Writes metrics.json, "
    "report.md and, with matplotlib, a confusion-matrix and a threshold-curve PNG into --out, and prints a short table. "
    "Metrics follow scikit-learn's definitions (a 0/0 precision or recall counts as 0)."
)

EPILOG = """examples:
  bioclip-edge evaluate predictions.csv --truth truth/ --out eval-report/
  bioclip-edge evaluate predictions.json --truth truth.csv --out eval-genus/ --rank genus --labels kenya.npz"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", metavar="PREDICTIONS", help="the output file 'bioclip-edge classify' wrote")
    parser.add_argument("--truth", required=True, metavar="PATH", help="folder-per-label tree, or a CSV with filepath,label")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for metrics.json, report.md and the PNGs")
    parser.add_argument("--rank", default=None, metavar="RANK",
                        help="evaluate at this rank (kingdom, phylum, class, order, family, genus, species), both sides rolled up")
    parser.add_argument("--labels", default=None, metavar="LABELS.npz",
                        help="the label matrix classify used: its taxonomy and common names (default: the MegaDetector "
                             "output's category descriptions)")
    parser.add_argument("--target-precision", type=float, default=None, metavar="P",
                        help="suggest the lowest top-1 score threshold whose kept labels are at least this precise")
    parser.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                        help="--detections outputs: count boxes with conf >= T (default: every box classify classified); "
                             "an image with none is 'blank'")
    parser.add_argument("--image-root", default=None, metavar="DIR",
                        help="folder relative prediction paths start from (default: the predictions file's folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier report's files in --out")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.evaluation.evaluate import EvaluateRequest, evaluate
    from bioclip_edge.runtime.evaluation.report import console

    request = EvaluateRequest(predictions=Path(args.predictions), truth=Path(args.truth), out=Path(args.out), rank=args.rank,
                              target_precision=args.target_precision, detection_threshold=args.detection_threshold,
                              labels=Path(args.labels) if args.labels else None,
                              image_root=Path(args.image_root) if args.image_root else None, overwrite=args.overwrite)
    print(console(evaluate(request)))
    return 0

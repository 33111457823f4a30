"""``bioclip-edge labels adapt``: a site's label matrix from a few labelled examples (``adaptation.site``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bioclip_edge.runtime.text.recipes import RECIPES

EXAMPLE = "labels adapt BUNDLE --examples train/ --out labels/site.npz [--base labels/kenya.npz]"


def add_adapt_parser(sub) -> None:
    """Register ``adapt`` under ``labels``' sub-commands."""
    a = sub.add_parser("adapt", help="adapt label rows to your site from a few labelled examples (train/<label>/*.jpg)",
                       description=f"{EXAMPLE}\nEach labelled class starts from its zero-shot row and moves towards its "
                                   "examples; --base rows without examples are kept unchanged.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  bioclip-edge labels adapt bundles/bioclip --examples train/ --base labels/kenya.npz --out labels/site.npz
  bioclip-edge labels adapt bundles/bioclip --examples train/ --base labels/kenya.npz --out labels/site.npz --cross-validate 4""")
    a.add_argument("bundle", type=Path, help="bundle folder whose vision tower embeds the examples")
    a.add_argument("--examples", type=Path, required=True,
                   help="a folder with one subfolder of images per label, or a CSV with filepath,label columns "
                        "(optional bbox_x,bbox_y,bbox_w,bbox_h or bbox \"x,y,w,h\": normalised 0-1 boxes to crop)")
    a.add_argument("--detections", type=Path, default=None,
                   help="MegaDetector output for the example frames: each frame becomes a crop of its most "
                        "confident animal box (frames without one are listed and skipped); a CSV row's own "
                        "bbox columns win")
    a.add_argument("--detection-threshold", type=float, default=0.2,
                   help="with --detections: boxes with conf >= this (default 0.2, as classify)")
    a.add_argument("--out", type=Path, required=True, help="label file to write, exactly as named")
    a.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse, exit 2)")
    a.add_argument("--base", type=Path, default=None,
                   help="label matrix whose rows start the labelled classes (matched by name or common name); "
                        "its other rows are kept unchanged")
    a.add_argument("--method", choices=("clap", "prototype"), default="clap",
                   help="clap: cross-entropy held near the zero-shot rows, per class as far as zero-shot is right "
                        "(default); prototype: mix each text row with its examples' mean")
    a.add_argument("--recipe", choices=tuple(RECIPES), default="plain",
                   help="text recipe for the label names when there is no --base (default plain)")
    a.add_argument("--k", dest="prototype_k", type=float, default=4.0,
                   help="prototype: the text row counts as k examples (default 4)")
    a.add_argument("--penalty", type=float, default=1.0, help="clap: strength of the pull back to zero-shot (default 1)")
    a.add_argument("--views", type=int, choices=(1, 2, 3, 4), default=4,
                   help="views embedded per example: whole, mirror, central crop, its mirror (default 4)")
    a.add_argument("--dtype", choices=("fp32", "fp16", "int8"), default=None,
                   help="stored matrix type (default: --base's, else fp32)")
    a.add_argument("--precision", default="auto", help="vision variant that embeds the examples (default auto)")
    a.add_argument("--cross-validate", type=int, default=0, metavar="K",
                   help="also score zero-shot against adapted on K held-out folds of whole groups (camera or "
                        "sequence folders below each label folder; else each file), and say whether adapting helps")
    a.add_argument("--suggest", type=int, default=0, metavar="N",
                   help="list the N --pool images to label next (smallest top-1/top-2 margin, spread over bursts and folders) "
                        "in OUT's name + .suggest.csv, with a page to look at them (.suggest.html)")
    a.add_argument("--pool", type=Path, default=None, help="folder of unlabelled images for --suggest")
    a.add_argument("--sequence-gap", type=float, default=60.0, metavar="SECONDS",
                   help="--suggest: frames of one folder and camera taken within this many seconds of the previous "
                        "(EXIF time, else file time) are one burst, and one burst gives one frame before any gives "
                        "two (default 60)")
    a.set_defaults(run=run_adapt)


def run_adapt(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.adaptation.methods import ClapSettings
    from bioclip_edge.runtime.adaptation.site import AdaptRequest, adapt

    result = adapt(AdaptRequest(
        bundle=args.bundle, examples=args.examples, out=args.out, base=args.base, method=args.method,
        recipe=args.recipe, prototype_k=args.prototype_k, clap=ClapSettings(penalty=args.penalty), views=args.views,
        dtype=args.dtype, precision=args.precision, overwrite=args.overwrite, cross_validate=args.cross_validate,
        suggest=args.suggest, pool=args.pool, detections=args.detections, sequence_gap=args.sequence_gap,
        detection_threshold=args.detection_threshold))
    for name, reason in result.failures:
        print(f"skipped {name}: {reason}")
    shots = ", ".join(f"{label} {n}" for label, n in result.shots.items())
    for line in result.cross_validation.lines() if result.cross_validation else []:
        print(line)
    print(f"wrote {result.out}: {result.labels} labels, {len(result.adapted)} adapted ({args.method}); shots: {shots}")
    if result.suggestions:
        print(f"wrote {result.suggestions}: the {args.suggest} images to label next; to look at them, open "
              f"{result.suggestion_page}")
    return 0


def info_lines(source) -> list[str]:
    """What ``labels info`` adds for an adapted matrix."""
    from bioclip_edge.runtime.adaptation.site import describe

    return describe(source)

"""``bioclip-edge labels``: build, import, subset and describe label matrices."""

from __future__ import annotations

import argparse
from pathlib import Path

from bioclip_edge.runtime.cli.adapt import add_adapt_parser, info_lines
from bioclip_edge.errors import CommandError
from bioclip_edge.runtime.cli.inference_options import add_model_threads_argument
from bioclip_edge.runtime.cli.place import add_place_arguments, place_requested, print_place, run_place_subset
from bioclip_edge.runtime.text.recipes import RECIPES

HELP = "build, import, adapt, subset and inspect label matrices (precomputed label embeddings)"
DESCRIPTION = """Label matrices hold the text embeddings that zero-shot classification scores images against.
  labels build BUNDLE --from species.csv --out labels/kenya.npz      embed your own labels
  labels import BUNDLE txt_emb_species.npy txt_emb_species.json --out tol.npz --dtype fp16
  labels adapt BUNDLE --examples train/ --base labels/kenya.npz --out labels/site.npz   from your labelled frames
  labels subset tol.npz --where class=Aves --out birds.npz
  labels subset tol.npz --geofence geofence_release.json --country KEN --out kenya.npz
  labels subset tol.npz --checklist gbif-kenya.csv --out kenya.npz
  labels info tol.npz
--out is written exactly as named; an existing file is kept unless --overwrite is given."""
EPILOG = """examples:
  bioclip-edge labels build bundles/bioclip --from species.csv --out labels/kenya.npz
  bioclip-edge labels subset labels/tol.npz --where class=Aves --out labels/birds.npz"""
FORMATTER = argparse.RawDescriptionHelpFormatter  # DESCRIPTION's example lines stay one per line
DTYPE_NAMES = ("fp32", "fp16", "int8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="labels_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="embed labels from a CSV (taxonomy columns) or a text file (one label a line)",
                       formatter_class=FORMATTER, epilog="""examples:
  bioclip-edge labels build bundles/bioclip --from species.csv --out labels/kenya.npz
  bioclip-edge labels build bundles/bioclip --from names.txt --out labels/tol.npz --recipe tol""")
    b.add_argument("bundle", type=Path, help="bundle folder whose text tower embeds the labels")
    b.add_argument("--from", dest="source", type=Path, required=True,
                   help="labels: .csv/.tsv with kingdom..species, common_name (or a 'name' column), or a .txt list")
    _add_out(b)
    b.add_argument("--recipe", choices=tuple(RECIPES), default="plain",
                   help="text recipe: plain name, 'a photo of {name}.', tol (TreeOfLife: ranks + common name, 80 templates), "
                        "openai (80 templates); default plain")
    b.add_argument("--dtype", choices=DTYPE_NAMES, default="fp16", help="stored matrix type (default fp16: half the size, same top-1)")
    b.add_argument("--precision", default="fp32", help="text tower variant to run (default fp32)")
    b.add_argument("--batch-size", type=int, default=256, help="labels embedded per text-tower run (default %(default)s)")
    add_model_threads_argument(b, type=int)
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(run=run_build)

    i = sub.add_parser("import", help="import an official TreeOfLife matrix (.npy [dim, N] + .json names)",
                       formatter_class=FORMATTER, epilog="""examples:
  bioclip-edge labels import bundles/bioclip2 txt_emb_species.npy txt_emb_species.json --out labels/tol.npz""")
    i.add_argument("bundle", type=Path, help="bundle the embeddings belong to (its dim is checked)")
    i.add_argument("embeddings", type=Path, help="txt_emb_species.npy: float array [dim, N]")
    i.add_argument("names", type=Path, help="txt_emb_species.json: [[kingdom, ..., species_epithet], common_name] per label")
    _add_out(i)
    i.add_argument("--dtype", choices=DTYPE_NAMES, default="fp16", help="stored matrix type (default fp16)")
    i.set_defaults(run=run_import)

    s = sub.add_parser("subset", help="keep the labels whose columns match (--where class=Aves), or those of a place "
                                      "(--geofence FILE --country ISO3, --checklist FILE)",
                       formatter_class=FORMATTER, epilog="""examples:
  bioclip-edge labels subset labels/tol.npz --where class=Mammalia --out labels/mammals.npz
  bioclip-edge labels subset labels/tol.npz --geofence geofence_release.json --country KEN --out labels/kenya.npz""")
    s.add_argument("labels", type=Path, help="label file")
    s.add_argument("--where", action="append", metavar="COLUMN=VALUE[,VALUE]",
                   help="select rows (case-insensitive); repeat to require several; columns: name, kingdom..species, common_name")
    add_place_arguments(s)
    _add_out(s)
    s.add_argument("--dtype", choices=DTYPE_NAMES, default=None, help="convert while writing (default: keep)")
    s.set_defaults(run=run_subset)

    n = sub.add_parser("info", help="describe a label file: size, dtype, recipe, model, columns",
                       formatter_class=FORMATTER, epilog="""examples:
  bioclip-edge labels info labels/kenya.npz
  bioclip-edge labels info labels/tol.npz --show 20""")
    n.add_argument("labels", type=Path, help="label file (.npz)")
    n.add_argument("--json", action="store_true", help="print JSON")
    n.add_argument("--show", type=int, default=5, metavar="N", help="show the first N labels (default 5)")
    n.set_defaults(run=run_info)
    add_adapt_parser(sub)


def _add_out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True,
                   help="label file to write, exactly as named (.npz by convention; classify knows it by content)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (default: refuse, exit 2)")


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an existing or unwritable --out before any bundle is opened or label embedded."""
    from bioclip_edge.runtime.common.target import check_output_target

    check_output_target(args.out, overwrite=args.overwrite, what="label file")


def run(args: argparse.Namespace) -> int:  # the group itself: argparse requires an action
    return args.run(args)


def run_build(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.labels.build import build_label_matrix, read_label_source
    from bioclip_edge.runtime.inference.session import SessionOptions

    _check_out(args)
    bundle = Bundle.open(args.bundle)
    table = read_label_source(args.source)
    out = build_label_matrix(
        bundle, table, args.out, recipe=args.recipe, dtype=args.dtype, precision=args.precision,
        options=SessionOptions(model_threads=args.model_threads), batch_size=args.batch_size,
        progress=not args.no_progress, source=args.source.name, overwrite=args.overwrite,
    )
    weights = " (RANDOM weights: the embeddings carry no meaning)" if bundle.random_weights else ""
    print(f"wrote {out}: {len(table.names)} labels, recipe {args.recipe}, {args.dtype}{weights}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.inference.bundle import Bundle
    from bioclip_edge.runtime.labels.importer import import_tol

    _check_out(args)
    bundle = Bundle.open(args.bundle)
    out, dropped = import_tol(bundle, args.embeddings, args.names, args.out, dtype=args.dtype, overwrite=args.overwrite)
    extra = f"; dropped {dropped} all-zero columns" if dropped else ""
    print(f"wrote {out}{extra}")
    return 0


def run_subset(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError

    if args.out.resolve() == args.labels.resolve():  # the input is memory-mapped while the subset is written
        raise LabelMatrixError(f"{args.out}: --out must differ from the input file")
    if place_requested(args):
        return run_place_subset(args, _check_out)
    if not args.where:
        raise CommandError("labels subset: pass --where COLUMN=VALUE, --geofence FILE --country ISO3, or --checklist FILE")
    _check_out(args)
    labels = LabelMatrix.load(args.labels)
    rows = labels.select(args.where)
    out = labels.save(args.out, dtype=args.dtype, rows=rows, note=f"subset {' '.join(args.where)} of {args.labels.name}")
    print(f"wrote {out}: {len(rows)} of {labels.n} labels")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import json

    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    labels = LabelMatrix.load(args.labels)
    info = labels.summary()
    info["first_labels"] = [labels.label(i) for i in range(min(args.show, labels.n))]
    info["place"] = labels.meta.get("place")
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    mb = info["bytes"] / 1e6
    print(f"{info['path']}: {info['labels']} labels x {info['dim']} dims, {info['dtype']} ({mb:.1f} MB)")
    print(f"  model: {info['model_id']} ({info['architecture']})" + ("  RANDOM weights" if info["random_weights"] else ""))
    print(f"  recipe: {info['recipe']}   taxonomy: {'yes' if info['taxonomy'] else 'no'}   columns: {', '.join(info['columns'])}")
    if info.get("note"):
        print(f"  note: {info['note']}")
    print_place(labels.meta)
    for line in info_lines(info.get("source")):
        print("  " + line)
    for row in info["first_labels"]:
        print("  - " + row.get("name", "") + (f" ({row['common_name']})" if row.get("common_name") else ""))
    return 0

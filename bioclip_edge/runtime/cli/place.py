"""``labels subset --geofence/--checklist``: only the species of a place (``labels.place`` does the work)."""

from __future__ import annotations

import argparse
from typing import Any, Callable, Mapping

from bioclip_edge.errors import CommandError

SHOW_UNMATCHED = 20  # names printed; the rest are counted


def add_place_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--geofence", type=str, metavar="FILE",
                   help="SpeciesNet geofence JSON (class;order;family;genus;species -> allow/block rules); needs --country")
    p.add_argument("--country", metavar="ISO3", help="ISO 3166-1 alpha-3 country the geofence is applied for, e.g. KEN")
    p.add_argument("--admin1", metavar="CODE",
                   help="admin-1 region within --country, as the geofence file writes it (e.g. CA), or a whole "
                        "ISO 3166-2 code (e.g. US-CA), which names the country too")
    p.add_argument("--checklist", type=str, metavar="FILE",
                   help="GBIF checklist download (CSV/TSV: scientificName or species, taxonRank) or a text file of "
                        "scientific names, one a line; keeps listed species and the higher taxa containing them")


def place_requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, key, None) for key in ("geofence", "country", "admin1", "checklist"))


def run_place_subset(args: argparse.Namespace, check_out: Callable[[argparse.Namespace], None]) -> int:
    from bioclip_edge.runtime.labels.checklist import Checklist
    from bioclip_edge.runtime.labels.geofence import Geofence, Region
    from bioclip_edge.runtime.labels.matrix import LabelMatrix
    from bioclip_edge.runtime.labels.place import save_place, select_place

    if (args.country or args.admin1) and not args.geofence:
        raise CommandError("--country/--admin1 choose where a geofence applies; pass --geofence FILE too "
                           "(a checklist is already for one place)")
    region = Region.parse(args.country, args.admin1) if args.geofence else None
    check_out(args)
    geofence = Geofence.read(args.geofence) if args.geofence else None
    checklist = Checklist.read(args.checklist) if args.checklist else None
    labels = LabelMatrix.load(args.labels)
    selection = select_place(labels, geofence=geofence, region=region, checklist=checklist, where=args.where)
    _print_unmatched(selection.unmatched)
    out = save_place(labels, selection, args.out, dtype=args.dtype)
    print(f"wrote {out}: kept {selection.kept}, dropped {selection.dropped} of {selection.total} labels")
    return 0


def _print_unmatched(names: tuple[str, ...]) -> None:
    if not names:
        return
    print(f"{len(names)} checklist name{'s match' if len(names) > 1 else ' matches'} no label in the matrix:")
    for name in names[:SHOW_UNMATCHED]:
        print(f"  - {name}")
    if len(names) > SHOW_UNMATCHED:
        print(f"  ... and {len(names) - SHOW_UNMATCHED} more")


def print_place(meta: Mapping[str, Any]) -> None:
    """The ``place`` lines of ``labels info``: which files and region made this matrix."""
    steps = meta.get("place") or []
    if not steps:
        return
    from bioclip_edge.runtime.labels.place import describe

    for step in steps:
        print(f"  place: {describe(step)}")

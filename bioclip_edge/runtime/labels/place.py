"""Only the species of a place: a label-matrix subset by geofence, checklist and ``--where``.

The Python entry point of ``labels subset --geofence/--checklist``::

    labels = LabelMatrix.load("tol.npz")
    chosen = select_place(labels, geofence=Geofence.read("geofence.json"), region=Region.parse("KEN"),
                          checklist=Checklist.read("gbif-kenya.csv"))
    save_place(labels, chosen, "kenya.npz")

Every filter given must keep a row for it to stay. The saved matrix records, in its metadata
under ``place``, each file (name and sha256), the region and the counts, so ``labels info`` says
what made it; a subset of a subset adds a step to that list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.labels.checklist import Checklist, listed_rows
from bioclip_edge.runtime.labels.geofence import Geofence, Region, allowed_rows
from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError

PLACE_META = "place"


@dataclass(frozen=True)
class PlaceSelection:
    """The rows a place keeps, the listed names that matched no label, and what made it."""

    rows: np.ndarray
    total: int
    unmatched: tuple[str, ...]
    provenance: dict[str, Any]

    @property
    def kept(self) -> int:
        return int(self.rows.size)

    @property
    def dropped(self) -> int:
        return self.total - self.kept


def select_place(matrix: LabelMatrix, geofence: Geofence | None = None, region: Region | None = None,
                 checklist: Checklist | None = None, where: Mapping[str, set[str]] | Sequence[str] | None = None
                 ) -> PlaceSelection:
    """Rows kept by every filter given: SpeciesNet's geofence in ``region``, a checklist, a where-selection."""
    if geofence is None and checklist is None and not where:
        raise OptionError("nothing to select by; pass a geofence with a region, a checklist or a where-selection")
    if geofence is not None and region is None:
        raise OptionError("a geofence needs a region (--country ISO3, optionally --admin1 CODE)")
    if region is not None and geofence is None:
        raise OptionError("--country/--admin1 apply to a geofence; pass --geofence FILE too")
    keep = np.ones(matrix.n, dtype=bool)
    provenance: dict[str, Any] = {}
    unmatched: tuple[str, ...] = ()
    if where:
        keep[:] = False
        keep[matrix.select(where)] = True
        provenance["where"] = list(where) if not isinstance(where, Mapping) else {k: sorted(v) for k, v in where.items()}
    if geofence is not None and region is not None:
        allowed = allowed_rows(matrix, geofence, region)
        keep &= allowed
        provenance["geofence"] = dict(_source(geofence.source), **region.to_dict(), allowed=int(allowed.sum()))
    if checklist is not None:
        match = listed_rows(matrix, checklist)
        keep &= match.keep
        unmatched = match.unmatched
        provenance["checklist"] = dict(_source(checklist.source), names=len(checklist.entries),
                                       listed=int(match.keep.sum()), unmatched=len(unmatched))
    rows = np.flatnonzero(keep)
    provenance.update(kept=int(rows.size), of=matrix.n)
    return PlaceSelection(rows, matrix.n, unmatched, provenance)


def save_place(matrix: LabelMatrix, selection: PlaceSelection, out: str | os.PathLike, dtype: str | None = None) -> Path:
    """Write the kept rows to ``out`` with the selection's provenance in the matrix's metadata."""
    if selection.kept == 0:
        raise LabelMatrixError(f"{matrix.where()}: no label is left in this place ({describe(selection.provenance)}); "
                               "check the country code, the checklist, or whether the matrix holds these taxa")
    steps = list(matrix.meta.get(PLACE_META) or []) + [dict(selection.provenance, source=matrix.where())]
    view = LabelMatrix(matrix.matrix, matrix.scales, matrix.columns, dict(matrix.meta, **{PLACE_META: steps}), matrix.path)
    return view.save(out, dtype=dtype, rows=selection.rows, note=f"{describe(selection.provenance)} of {Path(matrix.where()).name}")


def describe(step: Mapping[str, Any]) -> str:
    """One line for a provenance step: "geofence g.json (sha256 1a2b3c4d) in USA-CA; checklist ...: 12 of 40"."""
    parts = []
    if step.get("where"):
        parts.append(f"where {step['where']}")
    if step.get("geofence"):
        g = step["geofence"]
        area = g.get("country", "") + (f"-{g['admin1']}" if g.get("admin1") else "")
        parts.append(f"geofence {g.get('file')} (sha256 {str(g.get('sha256'))[:12]}) in {area}")
    if step.get("checklist"):
        c = step["checklist"]
        parts.append(f"checklist {c.get('file')} (sha256 {str(c.get('sha256'))[:12]}, {c.get('names')} names)")
    counts = f": {step['kept']} of {step['of']} labels" if "kept" in step else ""
    return "; ".join(parts) + counts


def _source(source) -> dict[str, Any]:
    return source.to_dict() if source is not None else {"file": None, "sha256": None}

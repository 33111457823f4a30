"""``datapackage.json``: the resources, the project, and the coverage blocks computed from the data.

* ``spatial``: GeoJSON; a ``Point`` when every deployment stands at one place, else the
  ``Polygon`` of the deployments' bounding box (with its ``bbox``).
* ``temporal``: the first deployment's start date to the last one's end date (local dates).
* ``taxonomic``: one entry per ``scientificName`` in the observations, with its rank, higher
  ranks and English common name when the taxonomy gives them.
* ``project``: the title, sampling design and capture method given, ``individualAnimals`` false
  (the model does not tell individuals apart), and the observation levels the package holds.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Sequence

from bioclip_edge import __version__
from bioclip_edge.runtime.camtrap.columns import PROFILE_URL, TABLES, schema_url
from bioclip_edge.runtime.camtrap.request import CamtrapRequest, Contributor

PACKAGE_VERSION = "1.0"


def resources() -> list[dict[str, Any]]:
    return [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
             "mediatype": "text/csv", "encoding": "utf-8", "schema": schema_url(name)} for name in TABLES]


def spatial(points: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """``points``: (latitude, longitude) per deployment."""
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    if len(set(points)) == 1:
        return {"type": "Point", "coordinates": [lons[0], lats[0]]}
    w, s, e, n = min(lons), min(lats), max(lons), max(lats)
    return {"type": "Polygon", "bbox": [w, s, e, n], "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def temporal(spans: Sequence[tuple[_dt.datetime, _dt.datetime]]) -> dict[str, str]:
    return {"start": min(s for s, _ in spans).date().isoformat(), "end": max(e for _, e in spans).date().isoformat()}


def package_name(title: str) -> str:
    """The Data Package ``name``: lower case letters, digits, ``.``, ``_``, ``-``."""
    return re.sub(r"[^a-z0-9._-]+", "-", title.lower()).strip("-._") or "camtrap-dp"


def descriptor(request: CamtrapRequest, contributors: list[Contributor], coverage: dict[str, Any], levels: list[str],
               about: str) -> dict[str, Any]:
    """The whole ``datapackage.json``; ``coverage`` holds the spatial, temporal and taxonomic blocks."""
    title = str(request.project_title).strip()
    return {
        "resources": resources(),
        "profile": PROFILE_URL,
        "name": package_name(title),
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "title": title,
        "contributors": [c.to_dict() for c in contributors],
        "description": about,
        "version": PACKAGE_VERSION,
        "keywords": ["camera traps", "machine classification"],
        "sources": [{"title": "bioclip-edge", "version": __version__}],
        **({"licenses": [{"name": request.license, "scope": "data"},
                         {"name": request.media_license or request.license, "scope": "media"}]} if request.license else {}),
        "project": {"title": title, "samplingDesign": request.sampling_design, "captureMethod": [request.capture_method],
                    "individualAnimals": False, "observationLevel": levels},
        **coverage,
    }

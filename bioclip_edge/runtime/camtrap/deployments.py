"""The deployments CSV: where each camera stood, and which files it took.

Columns: ``deploymentID``, ``latitude``, ``longitude``, and per row a ``folder`` (a path prefix of
the predictions' file paths), a ``cameraID`` (the EXIF body serial the files carry), or both (then
a file must match both). Optional: ``deploymentStart``/``deploymentEnd`` (missing ones come from
the media timestamps), ``timezone`` (see ``times``), and any other Camtrap DP deployments column
(``locationName``, ``cameraModel``, ``habitat``, ...), written as given. Other columns are left
out, and the summary says which.

A ``folder`` matches a file's path as the predictions wrote it, or, made absolute (a relative
folder from the CSV's own folder, a relative file path from the image root), its absolute path.
A file belongs to the most specific row that matches it: the longest folder, a row with both a
folder and a camera before one with either; rows still tied (one camera moved between sites)
are told apart by their start and end times. A file two rows still claim is an error.
"""

from __future__ import annotations

import csv
import datetime as _dt
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.camtrap.columns import DEPLOYMENTS
from bioclip_edge.runtime.camtrap.times import offset_of, parse_time, parse_zone

OWN_COLUMNS = ("folder", "timezone")
PASSED = tuple(c.name for c in DEPLOYMENTS if c.name not in ("deploymentID", "latitude", "longitude", "deploymentStart",
                                                               "deploymentEnd", "timestampIssues"))
EXAMPLE = "a header line 'deploymentID,folder,latitude,longitude' and a row per camera such as 'cam01,DCIM/cam01,-1.4061,35.0111'"


class DeploymentsError(UserError, ValueError):
    """A deployments CSV that cannot be read or used."""


@dataclass
class Deployment:
    id: str
    latitude: float
    longitude: float
    folder: str | None = None  # posix, no trailing slash, as written
    folder_abs: str | None = None  # the folder made absolute from the CSV's folder
    camera: str | None = None
    start: _dt.datetime | None = None  # as written (naive: in the deployment's zone)
    end: _dt.datetime | None = None
    zone: _dt.tzinfo | None = None
    extra: dict[str, str] = field(default_factory=dict)  # other Camtrap DP columns, as given

    def specificity(self) -> tuple[int, int]:
        return (len((self.folder_abs or "").split("/")) if self.folder else 0, int(bool(self.folder and self.camera)))


def read_deployments(path: Path, default_zone: _dt.tzinfo | None) -> tuple[list[Deployment], list[str]]:
    """The rows of the CSV at ``path``, and the columns it has that Camtrap DP does not (left out)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            rows, header = list(reader), [h.strip() for h in reader.fieldnames or []]
    except FileNotFoundError:
        raise DeploymentsError(f"--deployments {path}: no such file; give a CSV with {EXAMPLE}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeploymentsError(f"--deployments {path}: cannot read it as a UTF-8 CSV ({exc})") from None
    missing = [c for c in ("deploymentID", "latitude", "longitude") if c not in header]
    if missing or not ({"folder", "cameraID"} & set(header)):
        need = ", ".join(missing + ([] if {"folder", "cameraID"} & set(header) else ["folder or cameraID"]))
        raise DeploymentsError(f"--deployments {path}: no {need} column; the CSV needs deploymentID, folder (or cameraID), "
                               f"latitude and longitude: {EXAMPLE}")
    deployments = [_deployment(path, i, {k.strip(): (v or "").strip() for k, v in row.items() if k}, default_zone)
                   for i, row in enumerate(rows, start=2)]
    for d in deployments:
        if d.folder:
            d.folder_abs = _absolute(Path(d.folder) if Path(d.folder).is_absolute() else path.parent / d.folder)
    if not deployments:
        raise DeploymentsError(f"--deployments {path}: has no rows; add one row per camera placement")
    seen: set[str] = set()
    for d in deployments:
        if d.id in seen:
            raise DeploymentsError(f"--deployments {path}: deploymentID {d.id!r} is on two rows; each row needs its own ID")
        seen.add(d.id)
    unknown = [h for h in header if h not in OWN_COLUMNS + PASSED + ("deploymentID", "latitude", "longitude", "deploymentStart",
                                                                     "deploymentEnd")]
    return deployments, unknown


def _deployment(path: Path, line: int, row: dict[str, str], default_zone: _dt.tzinfo | None) -> Deployment:
    where = f"--deployments {path} row {line}"
    if not row.get("deploymentID"):
        raise DeploymentsError(f"{where}: deploymentID is empty; give each camera placement an ID")
    if not row.get("folder") and not row.get("cameraID"):
        raise DeploymentsError(f"{where}: neither folder nor cameraID is given; say which files this deployment took")
    lat, lon = _coordinate(row, "latitude", 90, where), _coordinate(row, "longitude", 180, where)
    start = parse_time(row["deploymentStart"], f"{where} deploymentStart") if row.get("deploymentStart") else None
    end = parse_time(row["deploymentEnd"], f"{where} deploymentEnd") if row.get("deploymentEnd") else None
    zone = parse_zone(row["timezone"], f"{where} timezone") if row.get("timezone") else (offset_of(start) or offset_of(end) or default_zone)
    folder = posixpath.normpath(row["folder"].replace("\\", "/")).rstrip("/") if row.get("folder") else None
    return Deployment(row["deploymentID"], lat, lon, folder=folder or None, camera=row.get("cameraID") or None, start=start,
                      end=end, zone=zone, extra={k: row[k] for k in PASSED if row.get(k) and k != "cameraID"})


def _coordinate(row: dict[str, str], name: str, bound: float, where: str) -> float:
    try:
        value = float(row.get(name, ""))
    except ValueError:
        raise DeploymentsError(f"{where}: {name} {row.get(name)!r} is not a number; give decimal degrees (WGS84), "
                               "e.g. -1.4061") from None
    if not -bound <= value <= bound:
        raise DeploymentsError(f"{where}: {name} {value} is outside -{bound}..{bound} decimal degrees")
    return value


def _absolute(path: Path) -> str:
    return posixpath.normpath(path.absolute().as_posix())


def path_forms(filepath: str, root: Path) -> tuple[str, str]:
    """A file's path as the predictions wrote it (normalised), and absolute (a relative one from ``root``)."""
    written = filepath.replace("\\", "/")
    return posixpath.normpath(written), _absolute(Path(written) if Path(written).is_absolute() else root / written)


def _under(folder: str, path: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def folder_matches(d: Deployment, forms: tuple[str, str]) -> bool:
    return d.folder == "." or _under(str(d.folder), forms[0]) or (d.folder_abs is not None and _under(d.folder_abs, forms[1]))


def candidates(deployments: list[Deployment], forms: tuple[str, str], serial: str | None) -> list[Deployment]:
    """The rows that claim a file, most specific first (only the most specific kept)."""
    found = [d for d in deployments
             if (d.folder is None or folder_matches(d, forms)) and (d.camera is None or d.camera == (serial or "").strip())]
    if not found:
        return []
    best = max(d.specificity() for d in found)
    return [d for d in found if d.specificity() == best]

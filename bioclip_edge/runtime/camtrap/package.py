"""``write_camtrap_dp(CamtrapRequest) -> CamtrapResult``: a classify output as a Camtrap DP 1.0.2 package.

What ``bioclip-edge camtrap-dp`` calls. The steps: check the metadata and the target folder
(before reading anything), read the deployments CSV and the predictions (``source``), place each
readable file in its deployment with its timestamp (``media``), classify it into observations
(``observations``), compute the deployments' periods and the package's coverage (``metadata``),
check the whole package (``checks``), then write the three tables and ``datapackage.json``, each
atomically, the descriptor last. Failed files are not in the package; the result lists them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.camtrap.checks import check_package
from bioclip_edge.runtime.camtrap.columns import TABLES
from bioclip_edge.runtime.camtrap.deployments import Deployment, read_deployments
from bioclip_edge.runtime.camtrap.media import (MediaItem, MediaMatchError, assign_paths, file_exif, media_row,
                                                place)
from bioclip_edge.runtime.camtrap.metadata import descriptor, spatial, temporal
from bioclip_edge.runtime.camtrap.observations import Classifying, event_observations, media_observations
from bioclip_edge.runtime.camtrap.request import CamtrapRequest, CamtrapResult
from bioclip_edge.runtime.camtrap.source import Source, read_source
from bioclip_edge.runtime.camtrap.taxa import Taxa
from bioclip_edge.runtime.camtrap.times import iso, localize, parse_zone
from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.common.target import check_folder_target
from bioclip_edge.runtime.jobs.records import failed

__all__ = ["CamtrapRequest", "CamtrapResult", "write_camtrap_dp"]

DESCRIPTOR = "datapackage.json"
FILES = (*(f"{name}.csv" for name in TABLES), DESCRIPTOR)
RANDOM_COMMENT = "RANDOM WEIGHTS: the model that classified this had random weights; the classification means nothing"


def check_target(out: Path, overwrite: bool) -> Path:
    return check_folder_target(out, FILES, overwrite=overwrite, what="Camtrap DP package")


def write_camtrap_dp(request: CamtrapRequest) -> CamtrapResult:
    """Write the package ``request`` describes (see the module docstring); raises a ``UserError`` and
    writes nothing when the metadata, the deployments or the predictions cannot make a valid package."""
    contributors = request.check()
    out = check_target(Path(request.out), request.overwrite)
    zone = parse_zone(request.timezone, "--timezone") if request.timezone else None
    deployments, unknown = read_deployments(Path(request.deployments), zone)
    source = read_source(Path(request.predictions))
    result = CamtrapResult(out, 0, 0, 0, [])
    items = _place_all(source, deployments, request, result)
    assign_paths(items, request.image_root, request.media_base_url)
    how = _classifying(request, source, items)
    observations, levels = _observe(items, how)
    deployment_rows, spans, unused = _deployment_rows(deployments, items)
    media = [media_row(item, request.capture_method, bool(request.media_base_url)) for item in items]
    coverage = {"spatial": spatial([(float(r["latitude"]), float(r["longitude"])) for r in deployment_rows]),
                "temporal": temporal(spans), "taxonomic": [t.block() for _, t in sorted(how.used.items())]}
    package = descriptor(request, contributors, coverage, levels, _about(source, how))
    tables = {"deployments": deployment_rows, "media": media, "observations": observations}
    check_package(package, tables)
    result.files = [write_atomic(out / f"{name}.csv", _csv(name, rows)) for name, rows in tables.items()]
    result.files.append(write_atomic(out / DESCRIPTOR, json.dumps(package, indent=2, ensure_ascii=False) + "\n"))
    result.deployments, result.media, result.observations, result.levels = len(deployment_rows), len(media), len(observations), levels
    result.notes += _notes(request, source, how, items, unknown, unused)
    return result


def _place_all(source: Source, deployments: list[Deployment], request: CamtrapRequest, result: CamtrapResult) -> list[MediaItem]:
    root = Path(request.image_root) if request.image_root else source.path.parent
    items = []
    for stored in source.records:
        if failed(stored):
            reasons: list[Any] = list(stored.get("failures") or []) or [stored.get("md_failure")]
            result.failed.append((stored["filepath"], str(reasons[0] or "failed")))
            continue
        record = file_exif(stored, root)
        placed = place(record, deployments, root)
        if placed is None:
            result.unmatched.append(record["filepath"])
            continue
        deployment, when, from_file = placed
        items.append(MediaItem(record, deployment, when, from_file, source.sequences.get(record["filepath"])))
    if result.unmatched and not request.skip_unmatched:
        shown = ", ".join(result.unmatched[:3]) + (" ..." if len(result.unmatched) > 3 else "")
        raise MediaMatchError(f"{len(result.unmatched)} file(s) of {source.path} are in no deployment of {request.deployments} "
                              f"(e.g. {shown}); add rows whose folder is a prefix of their paths (or whose cameraID is their "
                              "camera's serial), or pass --skip-unmatched to leave them out")
    if not items:
        raise UserError(f"{source.path}: no file could go into the package (every file failed or is in no deployment); "
                        "give a classify output with readable images")
    return items


def _classifying(request: CamtrapRequest, source: Source, items: list[MediaItem]) -> Classifying:
    if request.labels is not None:
        labels = {str(p["label"]) for i in items for p in _all_predictions(i)} | {l for i in items if i.seq for l, _ in i.seq[1]}
        taxa = Taxa.from_matrix(Path(request.labels), labels)
    else:
        taxa = Taxa.from_descriptions(source.descriptions, str(source.path))
    classified_by = request.classified_by or source.classified_by() or "bioclip-edge (model not recorded in this output)"
    detector = f"MegaDetector ({source.detector})" if source.detector else "MegaDetector"
    return Classifying(taxa, tuple(b.lower() for b in request.blank_labels), classified_by, detector,
                       source.detection_threshold, source.detection_categories, RANDOM_COMMENT if source.random_weights else "")


def _all_predictions(item: MediaItem) -> list[Any]:
    record = item.record
    if record["kind"] == "boxes":
        return [p for d in record.get("detections") or [] for p in (d.get("predictions") or [])[:1]]
    return list(record.get("predictions") or [])[:1]


def _observe(items: list[MediaItem], how: Classifying) -> tuple[list[dict[str, str]], list[str]]:
    """Media-level rows, then one event-level row per sequence (in order of first appearance)."""
    rows: list[dict[str, str]] = []
    events: dict[str, list[MediaItem]] = {}
    for item in items:
        if item.seq and item.seq[1] and item.record["kind"] != "boxes":
            events.setdefault(item.seq[0], []).append(item)
        else:
            rows += media_observations(item, how)
    for members in events.values():
        rows += event_observations(members, how)
    levels = [level for level in ("media", "event") if any(r["observationLevel"] == level for r in rows)]
    return rows, levels


def _deployment_rows(deployments: list[Deployment], items: list[MediaItem]) -> tuple[list[dict[str, str]], list[Any], list[str]]:
    """A row per deployment with media or with both its dates; (rows, (start, end) per row, the IDs left out)."""
    rows, spans, unused = [], [], []
    for d in deployments:
        mine = [i for i in items if i.deployment is d]
        if d.zone is None or (not mine and (d.start is None or d.end is None)):
            unused.append(d.id)
            continue
        start = localize(d.start, d.zone) if d.start else min(i.timestamp for i in mine)
        end = localize(d.end, d.zone) if d.end else max(i.end() for i in mine)
        cameras = Counter(f"{i.record.get('make', '')}-{i.record.get('model', '')}".strip("-") for i in mine if i.record.get("model"))
        row = {"deploymentID": d.id, "latitude": repr(d.latitude), "longitude": repr(d.longitude),
               "deploymentStart": iso(start), "deploymentEnd": iso(end), "cameraID": d.camera or "",
               "timestampIssues": "true" if any(i.from_file_time for i in mine) else "false", **d.extra}
        if not row.get("cameraModel") and cameras:
            row["cameraModel"] = cameras.most_common(1)[0][0]
        rows.append(row)
        spans.append((start, end))
    return rows, spans, unused


def _csv(table: str, rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[c.name for c in TABLES[table]], lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _about(source: Source, how: Classifying) -> str:
    text = (f"Camera-trap media and observations written by bioclip-edge from the classify output {source.path.name}. "
            f"Observations are machine classifications ({how.classified_by}) that no person has reviewed.")
    return text + (f" {RANDOM_COMMENT}." if how.comment else "")


def _in_period(item: MediaItem) -> bool:
    d, when = item.deployment, item.timestamp
    zone = when.tzinfo or d.zone
    assert zone is not None  # placed media are always in a zone
    return (d.start is None or when >= localize(d.start, zone)) and (d.end is None or when <= localize(d.end, zone))


def _notes(request: CamtrapRequest, source: Source, how: Classifying, items: list[MediaItem], unknown: list[str],
           unused: list[str]) -> list[str]:
    notes = []
    if how.comment:
        notes.append("the bundle has RANDOM WEIGHTS: every observation says so; do not publish this package")
    if not request.classified_by and not source.classified_by():
        notes.append(f"{source.path.name} does not record the model: pass --classified-by \"MODEL (BUNDLE)\" for classifiedBy")
    if how.untaxed:
        shown = ", ".join(sorted(how.untaxed)[:5])
        notes.append(f"{len(how.untaxed)} label(s) have no taxonomy, so their text is the scientificName ({shown}); pass "
                     "--labels with the taxonomy label matrix classify used, or check these names before publishing")
    timed = sum(i.from_file_time for i in items)
    if timed:
        notes.append(f"{timed} file(s) have no EXIF capture time: their timestamp is the file's modification time "
                     "(deployments marked timestampIssues)")
    outside = [i for i in items if not _in_period(i)]
    if outside:
        notes.append(f"{len(outside)} file(s) were taken outside their deployment's deploymentStart..deploymentEnd "
                     f"(e.g. {outside[0].record['filepath']}): check the camera clock and the deployments CSV")
    if unknown:
        notes.append(f"left out deployments column(s) that Camtrap DP does not define: {', '.join(unknown)}")
    if unused:
        notes.append(f"left out deployment(s) with no media and no deploymentStart/deploymentEnd: {', '.join(unused)}")
    if not request.media_base_url:
        notes.append("filePath is relative and filePublic false: upload the media and pass --media-base-url, or publish without them")
    return notes

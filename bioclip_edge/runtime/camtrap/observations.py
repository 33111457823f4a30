"""Observations: what the model (and, with ``--detections``, MegaDetector) saw in each file or sequence.

* Whole images and videos: one ``media``-level row per file, its top-1 label (a video's: the
  roll-up over its frames), ``classificationProbability`` its score.
* ``--detections`` runs: one row per box, with ``bboxX/bboxY/bboxWidth/bboxHeight`` (MegaDetector's
  normalised ``x, y, width, height``) and ``count`` 1: each classified box as its label says; a
  person or vehicle box at or above the run's detection threshold as ``human``/``vehicle``
  (classified by the detector); an animal box there that was not classified as ``unclassified``.
  A file with no such box is one ``blank`` row.
* ``--sequence-gap`` runs: one ``event``-level row per sequence (``eventID`` = ``seq_id``), the
  sequence's top-1, from its first to its last file. Box runs keep their per-box rows (a sequence
  has no boxes), with the ``eventID`` of their sequence.

``observationType``: ``blank`` for the blank labels (``blank``, ``empty``, ... and labels that begin
``empty ``/``blank ``), ``human`` for people (``human``, ``person``, the genus *Homo*), ``vehicle``
for vehicles, else ``animal`` with the label's ``scientificName``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bioclip_edge.runtime.camtrap.media import MediaItem
from bioclip_edge.runtime.camtrap.taxa import Taxa, Taxon
from bioclip_edge.runtime.camtrap.times import iso

HUMAN = ("human", "humans", "person", "people", "a person", "a human", "homo sapiens")
VEHICLE = ("vehicle", "car", "truck", "motorcycle", "motorbike", "bicycle")


@dataclass(frozen=True)
class Classifying:
    """How rows are classified: labels' taxa, blank labels, who classified, the detector's say."""

    taxa: Taxa
    blank_labels: tuple[str, ...]
    classified_by: str
    detector: str
    detection_threshold: float
    detection_categories: dict[str, str]
    comment: str = ""  # e.g. the random-weights warning, on every row
    used: dict[str, Taxon] = field(default_factory=dict)  # scientificName -> taxon, for the taxonomic block
    untaxed: set[str] = field(default_factory=set)  # labels written as names for want of a taxonomy


def observation_type(label: str, taxon: Taxon, blank_labels: tuple[str, ...]) -> str:
    text = " ".join(label.strip().lower().split())
    if text in blank_labels or text.startswith(("empty ", "blank ")):
        return "blank"
    if text in HUMAN or taxon.ranks.get("genus") == "Homo":
        return "human"
    if text in VEHICLE:
        return "vehicle"
    return "animal"


def _base(item: MediaItem, suffix: str, level: str = "media") -> dict[str, str]:
    return {"observationID": f"{item.media_id}-{suffix}", "deploymentID": item.deployment.id, "mediaID": item.media_id,
            "eventID": item.seq[0] if item.seq else "", "eventStart": iso(item.timestamp), "eventEnd": iso(item.end()),
            "observationLevel": level}


def _classified(row: dict[str, str], label: str, score: float | None, how: Classifying) -> dict[str, str]:
    taxon = how.taxa.get(label)
    kind = observation_type(label, taxon, how.blank_labels)
    if kind == "animal":
        how.used.setdefault(taxon.scientific_name, taxon)
        if taxon.rank is None:
            how.untaxed.add(label)
    row.update({"observationType": kind, "scientificName": taxon.scientific_name if kind == "animal" else "",
                "classificationMethod": "machine", "classifiedBy": how.classified_by,
                "classificationProbability": _number(score), "observationComments": how.comment})
    return row


def _number(value: float | None) -> str:
    return "" if value is None else f"{min(max(float(value), 0.0), 1.0):.4f}".rstrip("0").rstrip(".") or "0"


def media_observations(item: MediaItem, how: Classifying) -> list[dict[str, str]]:
    """The media-level rows of one file (see the module docstring)."""
    record = item.record
    if record["kind"] == "boxes":
        return _box_observations(item, how)
    predictions = record.get("predictions") or []
    if not predictions:
        return [{**_base(item, "1"), "observationType": "unclassified", "observationComments": how.comment}]
    top = predictions[0]
    return [_classified(_base(item, "1"), str(top["label"]), float(top["score"]), how)]


def _box_observations(item: MediaItem, how: Classifying) -> list[dict[str, str]]:
    rows = []
    for n, det in enumerate(item.record.get("detections") or [], start=1):
        row = {**_base(item, str(n)), **_bbox(det.get("bbox"))}
        category = how.detection_categories.get(str(det.get("category")), "").lower()
        if det.get("predictions"):
            top = det["predictions"][0]
            row = _classified(row, str(top["label"]), float(top["score"]), how)
        elif float(det.get("conf") or 0.0) >= how.detection_threshold:
            kind = {"person": "human", "human": "human", "vehicle": "vehicle"}.get(category, "unclassified")
            row.update({"observationType": kind, "classificationMethod": "machine", "classifiedBy": how.detector,
                        "classificationProbability": _number(det.get("conf")), "observationComments": how.comment})
        else:
            continue  # below the detection threshold: not an observation
        if row["observationType"] in ("animal", "human", "unclassified"):
            row["count"] = "1"
        rows.append(row)
    if not rows:  # nothing the detector was sure of: the file is blank
        rows.append({**_base(item, "0"), "observationType": "blank", "classificationMethod": "machine",
                     "classifiedBy": how.detector, "observationComments": how.comment})
    return rows


def _bbox(bbox: Any) -> dict[str, str]:
    """MegaDetector's normalised [x, y, width, height], clamped into the frame; none for a degenerate box."""
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return {}
    x, y = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    w, h = min(w, 1.0 - x), min(h, 1.0 - y)
    if w <= 0 or h <= 0:
        return {}
    return {"bboxX": f"{x:.6g}", "bboxY": f"{y:.6g}", "bboxWidth": f"{w:.6g}", "bboxHeight": f"{h:.6g}"}


def event_observations(members: list[MediaItem], how: Classifying) -> list[dict[str, str]]:
    """One event-level row per sequence and deployment (a sequence never spans two in practice)."""
    rows = []
    by_deployment: dict[str, list[MediaItem]] = {}
    for item in members:
        by_deployment.setdefault(item.deployment.id, []).append(item)
    for deployment_id, items in by_deployment.items():
        seq_id, top = items[0].seq  # type: ignore[misc]
        oid = seq_id if len(by_deployment) == 1 else f"{seq_id}-{hashlib.sha256(deployment_id.encode()).hexdigest()[:6]}"
        row = {"observationID": oid, "deploymentID": deployment_id, "mediaID": "", "eventID": seq_id,
               "eventStart": iso(min(i.timestamp for i in items)), "eventEnd": iso(max(i.end() for i in items)),
               "observationLevel": "event"}
        rows.append(_classified(row, top[0][0], top[0][1], how))
    return rows

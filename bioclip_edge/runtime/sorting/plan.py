"""Which file goes where: a classify output -> one ``Placement`` per file.

The output is read as ``evaluate`` reads it (``evaluation.predictions``: one prediction per file,
any format; a ``--detections`` image by its most confident box, or blank), labels are rolled up
to ``--rank`` by ``evaluation.ranks`` (scores summed per taxon), and each file goes to

* ``failed/`` when classify could not read it;
* ``blank/`` when a ``--detections`` run found no classified box on it;
* ``unsure/`` when its top-1 score is below the threshold;
* else the folder of its top-1 label (``names.safe_name``; labels that would share a folder on a
  case-insensitive file system, or take ``unsure``/``failed``, get a distinct name).

Relative paths in the output start from ``image_root`` (default: the predictions file's folder), as
in ``preview`` and ``evaluate``. Names inside a folder never clash: a second ``IMG_0001.JPG`` (from
another camera) becomes ``IMG_0001__2.JPG``. A file already in the journal keeps the name it was
given there, so a resumed sort makes the same plan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from bioclip_edge.runtime.evaluation.predictions import BLANK, Predicted, PredictionsFile
from bioclip_edge.runtime.evaluation.ranks import Names
from bioclip_edge.runtime.sorting.journal import Journal
from bioclip_edge.runtime.sorting.names import key, safe_file_name, safe_name, with_suffix_number
from bioclip_edge.runtime.sorting.request import BLANK_FOLDER, FAILED, UNSURE, Placement, SortError, SortRequest

SPECIAL = (UNSURE, FAILED, BLANK_FOLDER)


@dataclass
class Plan:
    placements: list[Placement]
    missing_failed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


def label_names(request: SortRequest, pf: PredictionsFile) -> tuple[Names | None, str | None]:
    """The taxonomy to roll up with, and the checked rank (None, None without ``--rank``)."""
    if request.rank is None:
        return None, None
    if request.labels is None:
        names = Names.from_descriptions(pf.known, pf.descriptions, str(pf.path))
    else:
        from bioclip_edge.runtime.labels.matrix import LabelMatrix

        predicted = {label.lower() for item in pf.items for label in item.labels}
        names = Names.from_matrix(LabelMatrix.load(request.labels), predicted)
    return names, names.check_rank(request.rank)


def source_path(filepath: str, root: Path) -> str:
    """The absolute path of a file as the output names it (relative paths start from ``root``)."""
    path = Path(filepath)
    return os.path.abspath(path if path.is_absolute() else root / path)


def top(item: Predicted, names: Names | None, rank: str | None) -> tuple[str | None, float | None]:
    """The item's top-1 label (at the rank) and its score; (None, None) for a failed file."""
    if item.failure:
        return None, None
    labels, scores = names.rolled(item.labels, item.scores, rank) if names and rank else (item.labels, item.scores)
    return labels[0], (scores[0] if scores else None)


def folder_of(label: str | None, score: float | None, threshold: float, folders: dict[str, str]) -> str:
    if label is None:
        return FAILED
    if score is None:
        return BLANK_FOLDER  # BLANK: no box passed, nothing to score
    return UNSURE if score < threshold else folders[label]


def label_folders(labels: Iterable[str]) -> dict[str, str]:
    """label -> folder name, distinct on case-insensitive file systems; ``unsure`` and ``failed`` stay the
    sort's own (a label of that name gets `` (label)``), a label ``blank`` joins the blanks."""
    taken = {key(UNSURE), key(FAILED)}
    out: dict[str, str] = {}
    for label in sorted(set(labels)):
        base = safe_name(label)
        if label == BLANK or key(base) == key(BLANK_FOLDER):  # a model's own "blank" label means the same
            out[label] = BLANK_FOLDER
            continue
        if key(base) in (key(UNSURE), key(FAILED)):
            base = f"{base} (label)"
        name, n = base, 1
        while key(name) in taken:
            n += 1
            name = f"{base}__{n}"
        taken.add(key(name))
        out[label] = name
    return out


def make_plan(request: SortRequest, pf: PredictionsFile, names: Names | None, rank: str | None,
              journal: Journal | None) -> Plan:
    """One placement per file of ``pf``; files the journal already holds keep their destination."""
    root = Path(request.image_root) if request.image_root is not None else pf.path.parent
    known = {step.begin["source"]: step.begin for step in journal.steps.values()} if journal else {}
    tops, plan, seen = [], Plan([]), set()
    for item in pf.items:
        source = source_path(item.filepath, root)
        if source in seen:
            plan.duplicates.append(item.filepath)
            continue
        seen.add(source)
        tops.append((item, source, *top(item, names, rank)))
    folders = label_folders(label for _, _, label, score in tops if label is not None and score is not None)
    taken = Taken(Path(request.into), [b["dest"] for b in known.values()])
    missing: list[str] = []
    for item, source, label, score in tops:
        if source in known:
            begin = known[source]
            plan.placements.append(Placement(source, begin["folder"], begin["dest"], begin.get("label"), begin.get("score")))
            continue
        if not os.path.isfile(source):
            (plan.missing_failed if item.failure else missing).append(source)
            continue
        folder = folder_of(label, score, request.threshold, folders)
        plan.placements.append(Placement(source, folder, taken.claim(folder, os.path.basename(source)), label, score))
    if missing:
        raise _missing(missing, pf, request)
    return plan


class Taken:
    """Names in use per folder: on disk, in the journal, and given out by this plan (case-insensitive)."""

    def __init__(self, into: Path, dests: Iterable[str]):
        self.into = into
        self.names: dict[str, set[str]] = {}
        for dest in dests:
            folder, _, name = dest.rpartition("/")
            self._folder(folder).add(key(name))

    def _folder(self, folder: str) -> set[str]:
        if folder not in self.names:
            on_disk = self.into / folder
            self.names[folder] = {key(n) for n in os.listdir(on_disk)} if on_disk.is_dir() else set()
        return self.names[folder]

    def claim(self, folder: str, file_name: str) -> str:
        names = self._folder(folder)
        base = safe_file_name(file_name)
        name, n = base, 1
        while key(name) in names:
            n += 1
            name = with_suffix_number(base, n)
        names.add(key(name))
        return f"{folder}/{name}"


def _missing(missing: list[str], pf: PredictionsFile, request: SortRequest) -> SortError:
    root = request.image_root if request.image_root is not None else f"{pf.path.parent} (the predictions file's folder)"
    return SortError(f"{pf.path}: {len(missing)} file(s) it lists are not on disk, e.g. {missing[0]}; relative paths "
                     f"start from {root}: pass --image-root with the folder classify read, or put the files back. "
                     "Nothing was sorted")

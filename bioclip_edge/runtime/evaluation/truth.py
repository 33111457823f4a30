"""The user's labels: a folder-per-label tree, or a CSV of ``filepath,label``.

* A folder: every image or video below it is labelled with its parent folder's name
  (``truth/lion/IMG_1.JPG`` is a lion; ``truth/lion/cam2/IMG_1.JPG`` is labelled ``cam2``). Files
  directly in the folder have no label and are skipped.
* A CSV: a header with ``filepath`` and ``label`` columns (any letter case, other columns
  ignored); relative paths start from the CSV's folder. A file listed twice with two labels is refused.

Paths are kept as absolute, normalised paths (``matching`` pairs them with the predictions).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.images.discover import MEDIA_SUFFIXES

WHAT_TO_GIVE = "give a folder with one subfolder per label (truth/<label>/<image>) or a CSV with filepath,label columns"


class TruthError(UserError, ValueError):
    """Truth labels that are missing, empty or malformed."""


@dataclass(frozen=True)
class Truth:
    source: Path
    kind: str  # folder or csv
    labels: dict[str, str]  # absolute path -> label
    skipped: list[str]  # files found without a label (directly in the folder)


def read_truth(path: str | os.PathLike) -> Truth:
    path = Path(path)
    if path.is_dir():
        truth = _read_folder(path)
    elif path.is_file():
        truth = _read_csv(path)
    else:
        raise TruthError(f"--truth {path}: no such file or folder; {WHAT_TO_GIVE}")
    if not truth.labels:
        raise TruthError(f"--truth {path}: holds no labelled image; {WHAT_TO_GIVE}")
    return truth


def absolute(path: str | os.PathLike, root: Path) -> str:
    """``path`` (absolute, or relative to ``root``) as an absolute normalised path with forward slashes."""
    text = os.fspath(path).replace("\\", "/")
    joined = text if os.path.isabs(text) else os.path.join(os.path.abspath(root), text)
    return os.path.normpath(joined).replace("\\", "/")


def _read_folder(root: Path) -> Truth:
    labels: dict[str, str] = {}
    skipped: list[str] = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            if os.path.splitext(name)[1].lower() not in MEDIA_SUFFIXES:
                continue
            full = absolute(os.path.join(folder, name), root)
            if Path(folder).resolve() == root.resolve():
                skipped.append(full)
            else:
                labels[full] = os.path.basename(folder)
    return Truth(root, "folder", labels, skipped)


def _read_csv(path: Path) -> Truth:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TruthError(f"--truth {path}: cannot read it as a CSV ({exc}); {WHAT_TO_GIVE}") from None
    if "filepath" not in header or "label" not in header:
        raise TruthError(f"--truth {path}: the header has no 'filepath' and 'label' columns (it has: {', '.join(header) or 'none'}); "
                         f"{WHAT_TO_GIVE}")
    fi, li = header.index("filepath"), header.index("label")
    labels: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(fi, li) or not row[fi].strip() or not row[li].strip():
            raise TruthError(f"--truth {path}: line {number} has no filepath or no label; every row needs both")
        full, label = absolute(row[fi].strip(), path.parent), row[li].strip()
        if labels.get(full, label) != label:
            raise TruthError(f"--truth {path}: line {number}: {row[fi].strip()} is labelled both {labels[full]!r} and "
                             f"{label!r}; keep one label per file")
        labels[full] = label
    return Truth(path, "csv", labels, [])

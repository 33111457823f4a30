"""The user's labels for ``evaluate``: read by ``runtime.images.labelled`` (a folder with one
subfolder per label, deeper folders being cameras or bursts, or a ``filepath,label`` CSV), the same
reader ``labels adapt --examples`` uses, so one tree means the same labels to both.

Paths are kept as absolute, normalised paths (``matching`` pairs them with the predictions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.images.labelled import read_labelled


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
    labelled = read_labelled(path, "--truth", TruthError)
    labels = {absolute(f.path, path): f.label for f in labelled.files}
    return Truth(path, "folder" if path.is_dir() else "csv", labels, [absolute(p, path) for p in labelled.unlabelled])


def absolute(path: str | os.PathLike, root: Path) -> str:
    """``path`` (absolute, or relative to ``root``) as an absolute normalised path with forward slashes."""
    text = os.fspath(path).replace("\\", "/")
    joined = text if os.path.isabs(text) else os.path.join(os.path.abspath(root), text)
    return os.path.normpath(joined).replace("\\", "/")

"""What ``sort_files`` is asked (``SortRequest``) and what it and ``undo_sort`` answer, and their errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bioclip_edge.errors import UserError

MODES = ("link", "copy", "move")
UNSURE, FAILED, BLANK_FOLDER = "unsure", "failed", "blank"


class SortError(UserError, ValueError):
    """A sort that cannot start or go on: a bad option, a missing photo, a folder of another sort."""


class SortFolderError(SortError):
    """An ``--into`` folder that is not this sort's: another sort's manifest, other files, or an unfinished undo."""


class ManifestError(SortError):
    """A manifest that cannot be read, or that no longer matches the files it describes."""


@dataclass(frozen=True)
class SortRequest:
    predictions: Path
    into: Path
    mode: str = "link"  # link (hard link, symlink across file systems), copy, or move
    threshold: float = 0.5  # top-1 scores below it go to unsure/
    rank: str | None = None  # roll labels up to this rank first (needs a taxonomy)
    labels: Path | None = None  # the label matrix classify used: its taxonomy, for --rank
    image_root: Path | None = None  # where relative paths start; None: the predictions file's folder
    detection_threshold: float | None = None  # --detections outputs: boxes with conf >= T count
    dry_run: bool = False
    batch: int = 128  # placements journaled per fsync: fewer, and a power cut redoes (never loses) at most that many

    def __post_init__(self) -> None:
        """Paths may be given as strings (the Python API); they are kept as ``Path``s."""
        for name in ("predictions", "into", "labels", "image_root"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))


@dataclass(frozen=True)
class Placement:
    """One file and where it goes: ``dest`` is relative to the ``--into`` folder."""

    source: str  # absolute path
    folder: str  # the label's folder name (or unsure, failed, blank)
    dest: str  # folder/name, forward slashes
    label: str | None = None  # top-1 label at the rank; None for a failed file
    score: float | None = None


@dataclass
class SortResult:
    request: SortRequest
    placements: list[Placement]  # the whole plan, done now or before
    done_now: int = 0
    done_before: int = 0  # resumed: placed by an earlier run of the same sort
    placed_before: set[str] = field(default_factory=set)  # their sources
    symlinked: list[str] = field(default_factory=list)  # link mode, across file systems
    missing_failed: list[str] = field(default_factory=list)  # failed files that are not on disk: nothing to place
    duplicates: list[str] = field(default_factory=list)  # paths listed twice in the output: placed once

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.placements:
            out[p.folder] = out.get(p.folder, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class UndoResult:
    into: Path
    restored: int = 0  # moved files put back
    removed: int = 0  # links and copies taken away
    undone_before: int = 0  # resumed undo: done by an earlier run
    kept: list[tuple[str, str]] = field(default_factory=list)  # (path, why) left as they are
    finished: bool = False  # everything undone: the manifest and the empty folders are gone

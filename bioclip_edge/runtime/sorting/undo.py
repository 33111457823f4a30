"""``undo_sort(folder) -> UndoResult``: take a sort back, as far as the journal says it went.

Placements are undone newest first. A moved file goes back to where it was, byte for byte
(checked against the SHA-256 the journal recorded when it was placed), by a hard link on the
same file system or a verified copy across file systems, and only then is the sorted name
removed. A link or copy the sort made is removed, and only when it still is what the sort made
(a link to the original, a copy with the recorded bytes): anything the sort did not create, or
that changed since, is left where it is and reported. The undo journals its own steps
(``undone``), so a killed undo resumes too. When everything is undone, the folders the sort made
(if empty), the manifest, and ``--into`` itself (if the sort made it) are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from bioclip_edge.runtime.sorting.journal import Journal, Step, crash_point, fsync_folder
from bioclip_edge.runtime.sorting.placing import digest, is_link_to, matches, move_into, temporary
from bioclip_edge.runtime.sorting.request import SortFolderError, UndoResult


def undo_sort(into: str | os.PathLike) -> UndoResult:
    into = Path(into)
    journal = Journal.read(into) if into.is_dir() else None
    if journal is None:
        raise SortFolderError(f"--undo {into}: holds no sort manifest; give the --into folder of a sort")
    result = UndoResult(into)
    journal.open()
    try:
        if not journal.undo_started:
            journal.write({"op": "undo"})
        for step in sorted(journal.steps.values(), key=lambda s: -int(s.begin["id"])):
            if step.undone:
                result.undone_before += 1
                continue
            why = undo_step(step, into, result)
            if why is None:  # not synced: an undo that lost these lines finds the files already undone
                journal.write({"op": "undone", "id": step.begin["id"]}, sync=False)
                crash_point("undone")
            else:
                result.kept.append((str(into / step.begin["dest"]), why))
    finally:
        journal.close()
    if not result.kept:
        _clear(journal, into)
        result.finished = True
    return result


def undo_step(step: Step, into: Path, result: UndoResult) -> str | None:
    """Undo one placement; None when done, else why the file was left as it is."""
    source, dest, mode = Path(step.begin["source"]), into / step.begin["dest"], step.begin["mode"]
    temporary(dest).unlink(missing_ok=True)  # a copy a kill cut short, never named
    temporary(source).unlink(missing_ok=True)
    if not os.path.lexists(dest):
        if mode == "move" and not source.exists():
            return "neither the sorted file nor the original is there (removed by hand?)"
        return None
    if mode == "link":
        return _unlink(dest, result) if is_link_to(dest, source) else _not_ours(source, dest)
    size = int(step.begin["size"])
    # a step the kill cut short before "placed" has no hash: its file is complete only if it equals the source
    sha = (step.placed or {}).get("sha256") or (digest(source)[1] if source.is_file() else None)
    if sha is None or not matches(dest, size, sha):
        return "changed since it was sorted; left as it is"
    if mode == "copy":
        return _unlink(dest, result)
    if source.is_file():  # a move not finished, or already put back: the original is there
        return _unlink(dest, result) if matches(source, size, sha) else f"another file is now at {source}; left as it is"
    return _restore(source, dest, size, sha, result)


def _unlink(dest: Path, result: UndoResult) -> str | None:
    """Remove a link or copy the sort made; None: done."""
    dest.unlink()
    result.removed += 1
    return None


def _not_ours(source: Path, dest: Path) -> str:
    if not source.exists() and not dest.is_symlink():
        return f"the original {source} is gone and this hard link holds its only copy; left as it is"
    return f"not the link to {source} the sort made; left as it is"


def _restore(source: Path, dest: Path, size: int, sha: str, result: UndoResult) -> str | None:
    """Put a moved file back at ``source`` (verified) and only then take away its sorted name."""
    source.parent.mkdir(parents=True, exist_ok=True)
    how, _ = move_into(dest, source, hash_links=False)  # a hard link: the very bytes just checked; a copy: verified as it was made
    fsync_folder(source.parent)  # the original's name is back on disk before the sorted name goes
    if how != "hardlink" and not matches(source, size, sha):
        source.unlink()
        return "could not be put back intact (disk full or failing?); left where it is"
    crash_point("restored")
    dest.unlink()
    result.restored += 1
    return None


def _clear(journal: Journal, into: Path) -> None:
    """After a complete undo: the sort's empty folders, its manifest, and the folder it made."""
    for folder in reversed(journal.mkdirs):
        try:
            (into / folder).rmdir()
        except OSError:  # not empty (the user put files there) or already gone
            pass
    journal.path.unlink()
    if journal.header.get("into_was_new"):
        try:
            into.rmdir()
        except OSError:
            pass

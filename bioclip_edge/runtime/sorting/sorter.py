"""``sort_files(SortRequest(...)) -> SortResult``: file a classify output's images into folders.

What ``bioclip-edge sort`` calls. The steps: check the options, read the predictions
(``evaluation.predictions``), check the ``--into`` folder (new, empty, or this very sort's: the
journal's header names the predictions file by its SHA-256 and every option), plan
(``plan``), then place the files (``placing``) a batch at a time, with the journal
(``journal``) written before and after each stage. A journal that shows a step begun but not
finished is picked up where the files show it stopped, so a killed sort resumes without doing
anything twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from bioclip_edge.runtime.evaluation.predictions import PredictionsFile, read_predictions
from bioclip_edge.runtime.sorting.journal import Journal, Step, crash_point, fsync_folder
from bioclip_edge.runtime.sorting.placing import (copy_verified, digest, is_link_to, link, matches, move_into,
                                                   remove_source, temporary)
from bioclip_edge.runtime.sorting.plan import label_names, make_plan
from bioclip_edge.runtime.sorting.request import (MODES, ManifestError, Placement, SortError, SortFolderError,
                                                  SortRequest, SortResult)

COMPARED = {"mode": "--mode", "threshold": "--threshold", "rank": "--rank", "labels": "--labels",
            "image_root": "--image-root", "detection_threshold": "--detection-threshold"}


def check_request(request: SortRequest) -> None:
    if request.mode not in MODES:
        raise SortError(f"--mode {request.mode}: choose one of {', '.join(MODES)}")
    if request.batch < 1:
        raise SortError(f"batch {request.batch}: give at least 1 placement per journal fsync")
    if not 0 <= request.threshold <= 1:
        raise SortError(f"--threshold {request.threshold}: give a score from 0 to 1 (0 files nothing under unsure/)")
    if request.labels is not None and request.rank is None:
        raise SortError(f"--labels {request.labels}: is only read for --rank (its taxonomy); add --rank, e.g. --rank genus")
    t = request.detection_threshold
    if t is not None and not 0 <= t <= 1:
        raise SortError(f"--detection-threshold {t}: give a confidence from 0 to 1")
    if request.image_root is not None and not Path(request.image_root).is_dir():
        raise SortError(f"--image-root {request.image_root}: not a folder; give the folder relative paths start from")
    into = Path(request.into)
    if into.exists() and not into.is_dir():
        raise SortFolderError(f"--into {into}: is a file; give a new or empty folder (or the folder of this sort, to resume)")


def header_of(request: SortRequest, pf: PredictionsFile) -> dict[str, Any]:
    """What makes a sort this sort: the predictions' bytes and every option that changes the plan."""
    return {"predictions": os.path.abspath(pf.path), "predictions_sha256": digest(pf.path)[1], "mode": request.mode,
            "threshold": request.threshold, "rank": request.rank,
            "labels": os.path.abspath(request.labels) if request.labels else None,
            "image_root": os.path.abspath(request.image_root) if request.image_root else None,
            "detection_threshold": request.detection_threshold}


def existing_journal(into: Path, header: dict[str, Any]) -> Journal | None:
    """This sort's journal in ``into`` (to resume), None for a new or empty folder; refuses anything else."""
    journal = Journal.read(into) if into.is_dir() else None
    if journal is None:
        if into.is_dir() and any(into.iterdir()):
            raise SortFolderError(f"--into {into}: holds other files and no sort manifest; give a new or empty folder")
        return None
    old = journal.header
    if journal.undo_started:
        raise SortFolderError(f"--into {into}: an undo of its sort was started; finish it with 'bioclip-edge sort --undo {into}'")
    if old.get("predictions_sha256") != header["predictions_sha256"]:
        raise SortFolderError(f"--into {into}: holds the sort of another predictions file ({old.get('predictions')}); "
                              f"give a new folder, or undo that sort first with 'bioclip-edge sort --undo {into}'")
    for field, option in COMPARED.items():
        if old.get(field) != header[field]:
            raise SortFolderError(f"--into {into}: was sorted with {option} {old.get(field)} (now {header[field]}); "
                                  f"resume with the same options, or undo it first with 'bioclip-edge sort --undo {into}'")
    return journal


def sort_files(request: SortRequest) -> SortResult:
    """Place every file of ``request.predictions`` under ``request.into`` (nothing is touched on a dry run)."""
    check_request(request)
    into = Path(request.into)
    pf = read_predictions(request.predictions, request.detection_threshold)
    header = header_of(request, pf)
    journal = existing_journal(into, header)
    names, rank = label_names(request, pf)
    plan = make_plan(request, pf, names, rank, journal)
    result = SortResult(request, plan.placements, missing_failed=plan.missing_failed, duplicates=plan.duplicates)
    steps = {step.begin["source"]: step for step in journal.steps.values()} if journal else {}
    result.placed_before = {p.source for p in plan.placements if p.source in steps and steps[p.source].finished}
    result.done_before = len(result.placed_before)
    if request.dry_run:
        return result
    if journal is None:
        was_new = not into.exists()  # then a complete undo removes it again
        into.mkdir(parents=True, exist_ok=True)
        journal = Journal.create(into, {**header, "into_was_new": was_new})
    else:
        journal.open()
    pending = [(p, steps.get(p.source)) for p in plan.placements]
    pending = [(p, step) for p, step in pending if step is None or not step.finished]
    try:
        for i in range(0, len(pending), request.batch):
            result.done_now += place_batch(journal, into, pending[i:i + request.batch], request.mode)
    finally:
        journal.close()
    result.symlinked = [s.begin["dest"] for s in journal.steps.values() if s.placed and s.placed.get("how") == "symlink"]
    return result


def place_batch(journal: Journal, into: Path, batch: list[tuple[Placement, Step | None]], mode: str) -> int:
    """Finish a batch of placements (new ones, or ones an earlier run began), each stage journaled as a whole:
    every ``begin`` on disk before any file is touched, every new name on disk before ``placed`` is written,
    and, for a move, before any original is removed. One fsync per stage, not per file."""
    begun = [step if step is not None else begin(journal, into, p, mode) for p, step in batch]
    journal.sync()
    for _ in range(len(batch) - sum(step is not None for _, step in batch)):
        crash_point("begun")
    placed = []
    for step in begun:
        if step.placed is None:
            placed.append((step, *put(step, into / step.begin["dest"])))
            crash_point("in-place")
    sync_folders(into / step.begin["folder"] for step, _, _ in placed)
    for step, how, sha in placed:
        journal.write({"op": "placed", "id": step.begin["id"], "how": how, "sha256": sha}, sync=False)
    journal.sync()
    for _ in placed:
        crash_point("placed")
    if mode == "move":
        moved = [step for step in begun if not step.removed]
        for step in moved:
            remove_source(Path(step.begin["source"]))
            crash_point("source-removed")
        sync_folders(Path(step.begin["source"]).parent for step in moved)
        for step in moved:
            journal.write({"op": "removed", "id": step.begin["id"]}, sync=False)
        journal.sync()
    return len(batch)


def begin(journal: Journal, into: Path, p: Placement, mode: str) -> Step:
    make_folder(journal, into, p.folder)
    step_id = journal.next_id()
    journal.write({"op": "begin", "id": step_id, "source": p.source, "dest": p.dest, "folder": p.folder, "label": p.label,
                   "score": p.score, "mode": mode, "size": Path(p.source).stat().st_size}, sync=False)
    return journal.steps[step_id]


def sync_folders(folders: Iterable[Path]) -> None:
    for folder in set(folders):
        if folder.is_dir():
            fsync_folder(folder)


def make_folder(journal: Journal, into: Path, folder: str) -> None:
    """Make ``into/folder`` once, journaled first, so an undo knows it may take the folder away."""
    path = into / folder
    if folder not in journal.mkdirs and not path.is_dir():
        journal.write({"op": "mkdir", "path": folder})  # synced at once: a folder a sort made is in its journal
    path.mkdir(exist_ok=True)


def put(step: Step, dest: Path) -> tuple[str, str | None]:
    """Place the file of a begun step (how, sha256); after a kill, accept what the files show was done."""
    source, mode = Path(step.begin["source"]), step.begin["mode"]
    temporary(dest).unlink(missing_ok=True)  # a copy a kill cut short: never named, never used
    if os.path.lexists(dest):
        return _already_put(step, source, dest)
    if not source.is_file():
        raise ManifestError(f"{source}: went missing while it was being sorted (the journal began it, nothing is at "
                            f"{dest}); put it back and sort again, or undo with --undo")
    if mode == "link":
        return link(source, dest), None
    if mode == "copy":
        return "copy", copy_verified(source, dest)
    return move_into(source, dest)


def _already_put(step: Step, source: Path, dest: Path) -> tuple[str, str | None]:
    """A kill came between placing the file and writing so: check the file really is the source's."""
    if step.begin["mode"] == "link" and is_link_to(dest, source):
        return ("symlink" if dest.is_symlink() else "hardlink"), None
    if step.begin["mode"] != "link" and source.is_file():
        size, sha = digest(source)
        if matches(dest, size, sha):
            return ("hardlink" if os.path.samefile(dest, source) else "copy"), sha
    raise ManifestError(f"{dest}: is not the file the sort put there for {source} (changed or replaced after a kill?); "
                        "move it aside and run the same sort again")

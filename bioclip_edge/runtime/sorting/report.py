"""The lines ``bioclip-edge sort`` prints: what went where, what was resumed, what to know."""

from __future__ import annotations

from bioclip_edge.runtime.sorting.journal import MANIFEST
from bioclip_edge.runtime.sorting.request import SortResult, UndoResult

SHOWN = 12  # folders named in the summary; the rest are counted


def summary(result: SortResult) -> str:
    r = result.request
    counts = result.counts()
    shown = ", ".join(f"{folder} {n}" for folder, n in list(counts.items())[:SHOWN])
    more = f", and {len(counts) - SHOWN} more folder(s)" if len(counts) > SHOWN else ""
    total = len(result.placements)
    if r.dry_run:
        head = f"dry run: would {r.mode} {total - result.done_before} file(s) into {len(counts)} folder(s) of {r.into}"
        tail = f" ({result.done_before} already placed by an earlier run)" if result.done_before else ""
        return "\n".join([head + tail + ":", f"  {shown}{more}", "nothing was changed", *notes(result)])
    lines = [f"sorted {total} file(s) into {len(counts)} folder(s) of {r.into} ({r.mode}): {shown}{more}"]
    if result.done_before:
        lines.append(f"resumed: {result.done_before} file(s) were placed by an earlier run, {result.done_now} now")
    lines += notes(result)
    lines.append(f"manifest: {r.into / MANIFEST}; take the sort back with: bioclip-edge sort --undo {r.into}")
    return "\n".join(lines)


def notes(result: SortResult) -> list[str]:
    out = []
    if result.symlinked:
        out.append(f"note: {len(result.symlinked)} file(s) are on another file system than {result.request.into}: they "
                   "were symbolically linked (the links break if the originals move or their drive is unplugged; "
                   "use --mode copy for copies)")
    if result.missing_failed:
        out.append(f"note: {len(result.missing_failed)} failed file(s) are not on disk, so not in failed/ "
                   f"(e.g. {result.missing_failed[0]})")
    if result.duplicates:
        out.append(f"note: {len(result.duplicates)} file(s) are listed twice in the output; each was placed once")
    return out


def undo_summary(result: UndoResult) -> str:
    lines = [f"undone in {result.into}: {result.restored} moved file(s) put back, {result.removed} link(s) or copies removed"
             + (f", {result.undone_before} undone by an earlier run" if result.undone_before else "")]
    for path, why in result.kept:
        lines.append(f"  kept {path}: {why}")
    if result.finished:
        lines.append("the manifest and the empty folders the sort made were removed")
    else:
        lines.append(f"{len(result.kept)} file(s) were left as they are (see above); the manifest stays, run --undo again "
                     "after putting them right")
    return "\n".join(lines)

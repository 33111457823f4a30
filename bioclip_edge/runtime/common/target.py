"""Check where a command will write before it does any work.

A run that classifies a whole SD card and then cannot write its output has lost hours; a run that
silently replaces yesterday's output has lost more. Every command that writes a result file
checks its target here first, before any image is read or any label embedded:

* the target is not a folder, and its folder exists (or can be made) and is writable;
* an existing file is replaced only when the user said so (``--overwrite``), or extended when
  the command supports ``--resume``.

The answers are :class:`OutputTargetError` (a ``UserError``: one line, exit code 2) naming the
file and the option that would make the run go ahead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

from bioclip_edge.errors import OutputTargetError


def check_output_target(path: str | os.PathLike, *, overwrite: bool, resume_flag: str | None = None,
                        resuming: bool = False, what: str = "output") -> Path:
    """Raise unless ``path`` can be written without losing anything; returns it as a Path.

    ``resume_flag`` names the option that extends an existing file (``"--resume"``), when the
    command has one; ``resuming`` says that option was given, so an existing file is expected.
    """
    target = Path(path)
    if target.is_dir():
        name = default_name(what)
        hint = f"give a file name, e.g. {target / name}" if name else "move it away, or choose another --out"
        raise OutputTargetError(f"{what} {target} is a folder; {hint}")
    folder = target.parent if str(target.parent) else Path(".")
    _check_folder(folder, target, what)
    if target.exists() and not (overwrite or resuming):
        options = f"{resume_flag} to extend it, or --overwrite to replace it" if resume_flag else "--overwrite to replace it"
        raise OutputTargetError(f"{what} {target} already exists; pass {options}, or choose another --out")
    return target


def check_folder_target(out: str | os.PathLike, names: Sequence[str], *, overwrite: bool, what: str) -> Path:
    """A folder of several files (a report, a data package): ``out`` must not be a file, and none of
    ``names`` inside it may be replaced without ``--overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputTargetError(f"--out {out} is a file; give a folder for the {what} (a new one, or pass --overwrite "
                                f"to replace an earlier {what}'s files in it)")
    for name in names:
        check_output_target(out / name, overwrite=overwrite, what=f"{what} file")
    return out


def default_name(what: str) -> str | None:
    """A file name to suggest inside a folder given as the target (None: the name is derived, e.g. an index)."""
    if "index" in what:
        return None
    if "embedding" in what:
        return "embeddings.npy"
    return "labels.npz" if "label" in what else "predictions.json"


def _check_folder(folder: Path, target: Path, what: str) -> None:
    """Make the folder and write a probe file in it: ``os.access`` says yes to root on a read-only mount."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".probe"):
            pass
    except FileExistsError:
        raise OutputTargetError(f"{what} {target}: {folder} is not a folder; choose another --out") from None
    except NotADirectoryError:
        raise OutputTargetError(f"{what} {target}: part of {folder} is a file, not a folder; choose another --out") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputTargetError(f"{what} {target}: cannot write in {folder} ({reason}); choose another --out") from None

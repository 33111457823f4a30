"""The errors a user can act on, importable from every layer (runtime, export, profiling, CLI).

Raise a subclass with a message that names the input and says what to do; the command line
prints it as one line (exit code 2) instead of a traceback. Anything else is a bug and keeps
its traceback. The errors of commands, options and jobs (outputs, checkpoints, resumed runs:
raised by several layers, and by the CLI and the Python API alike) live here, so no layer imports
another one (or the top-level ``bioclip_edge.cli``) just to raise or catch them; an error about
one module's own file format (a bundle, a label matrix) stays beside that module, as a subclass
of ``UserError``.
"""


class UserError(Exception):
    """An input, file or option the user can fix; the message is a complete sentence."""


class CommandError(UserError):
    """A bad combination of command-line options, found by a command before it does any work."""


class OptionError(UserError, ValueError):
    """A bad option or combination of options, from the command line or the Python API (exit 2,
    nothing was done); a ``ValueError`` too, for Python callers that catch that."""


# --- outputs, checkpoints and resumed runs (runtime.jobs; labels' output files too) ---------------


class OutputTargetError(UserError, ValueError):
    """An output path that cannot or must not be written."""


class ResumeMismatchError(UserError, ValueError):
    """Stored work that was made differently from this run: extending it would mix results."""


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be resumed from (or would be overwritten)."""


class PreviousOutputError(UserError, ValueError):
    """A finished output that cannot be read back to be extended."""


class EmbeddingsFileError(UserError, ValueError):
    """An existing embeddings pair that cannot be extended."""


# --- a file that could not be written: full disk, read-only card, failing disk --------------------

WRITE_FAILURE_EXIT = 3  # the command line's exit code for a WriteFailure (0 done, 1 some inputs failed, 2 bad input)


class WriteFailure(UserError, OSError):
    """A file the tool could not write because of the disk, not the input: no space left, a
    read-only or failing card, a quota, a file system's size limit, no permission.

    It is an ``OSError`` too (same ``errno``, ``filename``), so code that tolerates a failed cache
    write still does; the command line prints it as one line with exit code 3 (``WRITE_FAILURE_EXIT``),
    not 2: the inputs were fine, and finished work was kept. Built by
    ``runtime.common.files.write_failure``, which measures the free space."""

    def __init__(self, errno: int | None, strerror: str | None, filename: str | None = None, *,
                 needed: int | None = None, at_least: bool = False, free: int | None = None,
                 mount: str | None = None, note: str = "") -> None:
        super().__init__(errno, strerror, filename)
        self.needed, self.at_least, self.free, self.mount, self.note = needed, at_least, free, mount, note

    def __str__(self) -> str:
        return self.text()

    def text(self, resume_flag: str | None = None) -> str:
        """The one-line message; ``resume_flag`` (``"--resume"``) when the command picks up finished work with it."""
        reason, advice = _write_reason(self)
        where = self.filename if self.filename else "a file"
        again = f"run the same command again with {resume_flag}" if resume_flag else "run the same command again"
        note = f"; {self.note}" if self.note else ""
        return f"cannot write {where}: {reason}{note}; {advice}, then {again}"


def _write_reason(exc: WriteFailure) -> tuple[str, str]:
    """(what went wrong, what to do before running again), by errno."""
    import errno as E

    at = f" at {exc.mount}" if exc.mount else ""
    if exc.errno in (E.ENOSPC, E.EDQUOT):
        what = "no space left on the disk" if exc.errno == E.ENOSPC else "disk quota exceeded on the disk"
        return f"{what}{at}{_space(exc)}", "free space there (or choose an output on another disk)"
    if exc.errno == E.EROFS:
        return (f"the file system{at} is read-only (an SD card's lock switch, or a failing card remounted read-only)",
                "unlock or remount it (or choose an output on another disk)")
    if exc.errno == E.EIO:
        return (f"input/output error on the disk{at} (the card or disk may be failing, or was removed)",
                "copy finished files off, check or replace the disk")
    if exc.errno == E.EFBIG:
        return (f"file too large for the file system{at} (FAT32 cards hold files of at most 4 GB)",
                "write to a disk formatted exFAT, NTFS or ext4")
    if exc.errno in (E.EACCES, E.EPERM):
        return "permission denied", "choose a folder you can write to, or change its permissions"
    return (exc.strerror or "error").lower(), "fix the disk (or choose an output on another disk)"


def _space(exc: WriteFailure) -> str:
    parts = []
    if exc.needed:
        parts.append(f"needs {'more than ' if exc.at_least else 'about '}{_size(exc.needed)}")
    if exc.free is not None:
        parts.append(f"{_size(exc.free)} free")
    return f" ({', '.join(parts)})" if parts else ""


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"

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

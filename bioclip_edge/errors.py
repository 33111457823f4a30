"""The one base class for errors a user can act on.

Raise a subclass with a message that names the input and says what to do; the command line
prints it as one line (exit code 2) instead of a traceback. Anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """An input, file or option the user can fix; the message is a complete sentence."""

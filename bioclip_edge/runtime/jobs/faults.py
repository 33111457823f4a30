"""Named points where a test may cut the power: ``BIOCLIP_EDGE_KILL_AT=<point>[:<n>]`` kills this
process with SIGKILL the n-th time (default the first) it reaches ``<point>``.

Why in the product: a power cut mid-checkpoint or mid-rename happens in a window of microseconds
that a timer cannot hit reliably; the power-cut test (tests/runtime/jobs/test_power_cut.py) names
the window instead. The variable is read once, at import; unset, each point costs one comparison.
Points: ``result`` (a result arrived; decoding of the next images is under way), ``checkpoint-append``
(half a journal line written and flushed), ``checkpoint-sync`` (flushed, not yet fsync'd),
``checkpoint-create`` (a new journal written, not yet renamed), ``output-write`` (part of the output's
temporary file written), ``output-rename`` (the output written, not yet renamed), ``output-renamed``
(renamed, the journal not yet removed).
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

_WANTED = os.environ.get("BIOCLIP_EDGE_KILL_AT", "")
_POINT, _, _NTH = _WANTED.partition(":")
_SEEN = {"n": 0}
ARMED = bool(_POINT)  # callers on hot paths test this before building a ``before``


def fault_point(name: str, before: Callable[[], Any] | None = None) -> None:
    """Kill this process here if the environment asks for it (``before`` runs first: e.g. half a line)."""
    if name != _POINT:
        return
    _SEEN["n"] += 1
    if _SEEN["n"] < int(_NTH or 1):
        return
    if before is not None:
        before()
    os.kill(os.getpid(), signal.SIGKILL)

"""One progress bar for long runs (images, labels): tqdm on a terminal, nothing in logs and pipes."""

from __future__ import annotations

import sys
from typing import Any


class NoBar:
    """Stands in for tqdm where no bar is shown, so callers never test for None."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int | None, unit: str, desc: str, enabled: bool | None = None) -> Any:
    """A tqdm bar on stderr; ``enabled=None`` shows it only when stderr is a terminal."""
    if enabled is False or (enabled is None and not sys.stderr.isatty()):
        return NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, smoothing=0.05, file=sys.stderr)

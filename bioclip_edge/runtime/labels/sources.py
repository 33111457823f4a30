"""Reading the small text files that restrict a label matrix (a geofence, a checklist), and
naming them: a subset records the file's name and sha256, so the matrix says what made it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SourceFile:
    """A file a subset was made from: its name and the sha256 of its bytes."""

    name: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "sha256": self.sha256}


def read_source(path: str | Path, what: str, error: type[Exception]) -> tuple[SourceFile, str]:
    """The file's identity and its UTF-8 text; ``error`` (a UserError) names the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: {what} not found; check the path")
    if not path.is_file():
        raise error(f"{path}: {what} is not a file; pass the file itself")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); check its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: the {what} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    return SourceFile(path.name, hashlib.sha256(data).hexdigest()), text

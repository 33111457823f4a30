"""Read a finished output's rows back for ``--resume`` while keeping every intact one of a damaged
file, and say what is true of a file that cannot be extended.

Three cases are told apart, each with its own message:

* **damaged**: a bioclip-edge output (its rows carry this run's token, or its head this run's
  fingerprint) with rows that are cut short (an interrupted copy, a power cut during a write) or
  garbled. Every intact row is kept; the damage is described (file, line or byte offset, rows lost)
  in a note, not an error, and the images whose rows were lost are done again;
* **older version**: the layout bioclip-edge writes, but no run fingerprint: written before outputs
  recorded how they were made (``older``);
* **another tool**: not bioclip-edge's layout at all, "not written by bioclip-edge" (``foreign``).

A row is intact when it parses, has every column (CSV) and carries a well-formed run token; a
well-formed token of another run is not damage but a different run, refused by ``check_token``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from bioclip_edge.errors import PreviousOutputError
from bioclip_edge.runtime.jobs.fingerprint import FIELDS, OPTIONAL_FIELDS, check_token

TOKEN = re.compile(r"\d+:[0-9a-f]{6}(\.[0-9a-f]{6})*")
SHOWN = 8


def older(path: Path, how: str = "") -> PreviousOutputError:
    return PreviousOutputError(
        f"{path}: holds no bioclip-edge run fingerprint{how}: it has the layout of an earlier bioclip-edge, written before "
        "outputs recorded how they were made, so nothing proves it was made with this bundle, labels and options; pass "
        "--overwrite to replace it (or finish it with the version that wrote it), or choose another --out")


def foreign(path: Path, what: str) -> PreviousOutputError:
    return PreviousOutputError(f"{path}: not written by bioclip-edge ({what}), so it cannot be extended; pass --overwrite "
                               "to replace it, or choose another --out")


@dataclass
class Tokens:
    """Run tokens seen so far: this run's pass, another run's is refused, a malformed one is damage."""

    path: Path
    fingerprint: dict[str, Any] | None
    good: set[str] = field(default_factory=set)
    seen: bool = False

    def intact(self, token: Any) -> bool:
        if token in self.good:
            return True
        token = str(token or "")
        parts = token.partition(":")[2].split(".")
        if not TOKEN.fullmatch(token) or not len(FIELDS) - len(OPTIONAL_FIELDS) <= len(parts) <= len(FIELDS):
            return False
        if self.fingerprint is not None:
            check_token(token, self.fingerprint, str(self.path))  # another run's: refused, naming what differs
        self.good.add(token)
        self.seen = True
        return True


@dataclass
class Damage:
    """Damaged rows of one file, described once the file is read."""

    path: Path
    lines: list[int] = field(default_factory=list)
    cut: str = ""  # where the file ends mid-row
    neighbours: int = 0  # intact rows dropped because the damage may have taken part of their image

    def describe(self, unit: str = "line") -> list[str]:
        if not (self.lines or self.cut):
            return []
        parts = []
        if self.lines:
            shown = ", ".join(str(n) for n in self.lines[:SHOWN]) + (f" and {len(self.lines) - SHOWN} more" if len(self.lines) > SHOWN else "")
            parts.append(f"{len(self.lines)} damaged {unit}(s) skipped ({unit} {shown})")
        if self.cut:
            parts.append(f"cut short {self.cut}")
        if self.neighbours:
            parts.append(f"{self.neighbours} image(s) beside the damage dropped, as part of their rows may be lost")
        return [f"{self.path}: damaged: " + "; ".join(parts) + "; every intact row is kept and the images whose rows "
                "were lost are done again"]


def csv_rows(path: Path, tokens: Tokens, damage: Damage) -> tuple[list[str], Iterator[tuple[bool, dict[str, str]]]]:
    """(header, rows as (after damage?, row)): intact rows only, the damaged ones noted in ``damage``."""
    fh = open(path, encoding="utf-8", errors="replace", newline="")
    reader = csv.reader(fh)
    try:
        header = next(reader, [])
    except csv.Error:
        header = []
    if "filepath" not in header:
        fh.close()
        raise foreign(path, "a CSV file without the 'filepath' column bioclip-edge writes")
    if "run" not in header:
        fh.close()
        if {"label_1", "score_1", "failure"} <= set(header):
            raise older(path)
        raise foreign(path, "a CSV file without bioclip-edge's label_1/score_1 columns")
    return header, _csv_rows(fh, reader, header, tokens, damage)


def _csv_rows(fh: Any, reader: Any, header: list[str], tokens: Tokens, damage: Damage) -> Iterator[tuple[bool, dict[str, str]]]:
    run = header.index("run")
    after, start = False, 0
    with fh:
        while True:
            last, start = start, reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                _cut_last(fh, damage, last)
                return
            except csv.Error:
                damage.cut = f"in its last row (line {start})"
                return
            whole = len(cells) == len(header) and "\ufffd" not in "".join(cells)
            if whole and tokens.intact(cells[run]):
                yield after, dict(zip(header, cells))
                after = False
            elif cells:
                damage.lines.append(start)
                after = True


def _cut_last(fh: Any, damage: Damage, last: int) -> None:
    """A damaged last row (starting at line ``last``) of a file that does not end its line was cut
    short, not garbled."""
    if not damage.lines or damage.cut or damage.lines[-1] != last:
        return
    fh.buffer.seek(0, 2)
    size = fh.buffer.tell()
    if size:
        fh.buffer.seek(size - 1)
        if fh.buffer.read(1) != b"\n":
            damage.cut = f"in its last row (line {damage.lines.pop()})"


def jsonl_rows(path: Path, tokens: Tokens, damage: Damage) -> Iterator[tuple[bool, dict[str, Any]]]:
    """Intact lines as (after damage?, row); a last line without its newline was cut short."""
    import json

    after = False
    with open(path, "rb") as fh:
        offset = 0
        for number, line in enumerate(fh, start=1):
            row = None
            if line.endswith(b"\n"):
                try:
                    row = json.loads(line)
                except (ValueError, UnicodeDecodeError):
                    row = None
            if isinstance(row, dict) and "filepath" in row and tokens.intact(row.get("run")):
                yield after, row
                after = False
            elif not line.endswith(b"\n"):
                damage.cut = f"in its last line (line {number}, byte {offset})"
            elif line.strip():
                damage.lines.append(number)
                after = True
            offset += len(line)

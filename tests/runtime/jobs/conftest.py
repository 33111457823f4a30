"""Fixtures for the jobs tests: a small ``JobSpec`` over records some function makes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from bioclip_edge.runtime.jobs.records import Record, failed, read_back, stored
from bioclip_edge.runtime.jobs.runner import JobSpec


class RecordsSpec(JobSpec[Record]):
    """Records from ``make(skip)`` into a JSON Lines file (one stored record per line, read back for ``--resume``)."""

    verb = "testing"

    def __init__(self, out: Path, order: list[str], make: Callable[[set[str]], Iterator[Record]],
                 fingerprint: dict[str, Any] | None = None):
        self.out, self._order, self.make = Path(out), list(order), make
        self.fingerprint = fingerprint or {"model": "tiny"}
        self.written: list[Record] = []

    def order(self) -> list[str]:
        return self._order

    def produce(self, skip: set[str]) -> Iterator[Record]:
        return self.make(skip)

    def key(self, result: Record) -> str:
        return result["filepath"]

    def failed(self, result: Record) -> bool:
        return failed(result)

    def finished(self) -> list[Record]:
        if not self.out.exists():
            return []
        return [read_back(json.loads(line), boxes=False) for line in self.out.read_text().splitlines()]

    def to_checkpoint(self, result: Record) -> dict[str, Any]:
        return stored(result)

    def from_checkpoint(self, rows: list[dict[str, Any]]) -> list[Record]:
        return [read_back(row, boxes=False) for row in rows]

    def write(self, out: Path, results: list[Record]) -> None:
        self.written = list(results)
        out.write_text("".join(json.dumps(stored(r)) + "\n" for r in results))


@pytest.fixture
def records_spec() -> type[RecordsSpec]:
    """``RecordsSpec``: build one per run, ``records_spec(out, order, make)``."""
    return RecordsSpec

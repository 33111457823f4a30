"""Rows of a classify Parquet file whose footer is damaged or gone (a copy cut short, a bad sector).

A Parquet reader finds everything through the footer (schema, where each row group and page is),
so a file without one is unreadable to pyarrow although its pages are intact. Our writer makes the
``record`` column easy to find without it (``parquet_output.PARQUET_OPTIONS``): required (no
definition levels), PLAIN byte arrays (no dictionary), data page v1, zstd. The file is walked
page by page from its start, each page header read with a minimal Thrift compact-protocol reader,
and the pages whose values are our records (JSON objects starting ``{"filepath"``) are decoded.
Each record carries its run token, so the fingerprint is still checked, row by row. Pages of a
page cut short, and everything after it, are lost; what was kept and lost is said in ``damage``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Iterator

from bioclip_edge.errors import PreviousOutputError
from bioclip_edge.runtime.jobs.salvage import Tokens

MAGIC = b"PAR1"
DATA_PAGE = 0
RECORD_START = b'{"filepath"'


class _Thrift:
    """Just enough of Thrift's compact protocol to read a PageHeader's integers and skip the rest."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def struct(self) -> dict[int, Any]:
        """Field id -> value for integers and nested structs; other types skipped."""
        fields: dict[int, Any] = {}
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == 0:
                return fields
            last = last + (head >> 4) if head >> 4 else self.zigzag()
            fields[last] = self.value(kind)

    def value(self, kind: int) -> Any:
        if kind in (1, 2):
            return kind == 1
        if kind == 3:
            return self.byte()
        if kind in (4, 5, 6):
            return self.zigzag()
        if kind == 7:
            self.pos += 8
            return None
        if kind == 8:
            size = self.varint()
            self.pos += size
            return None
        if kind in (9, 10):
            head = self.byte()
            size = head >> 4 if head >> 4 != 15 else self.varint()
            for _ in range(size):
                self.value(head & 0x0F)
            return None
        if kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.value(types >> 4)
                    self.value(types & 0x0F)
            return None
        if kind == 12:
            return self.struct()
        raise ValueError(f"thrift type {kind}")


def _pages(data: bytes) -> Iterator[tuple[int, dict[int, Any], bytes]]:
    """(end offset, header, compressed payload) of each whole page from the start, until one is not."""
    pos = len(MAGIC)
    while pos < len(data):
        reader = _Thrift(data, pos)
        try:
            header = reader.struct()
        except (IndexError, ValueError):
            return
        size = header.get(3)
        if not isinstance(size, int) or size < 0 or reader.pos + size > len(data) or not isinstance(header.get(1), int):
            return
        yield reader.pos + size, header, data[reader.pos: reader.pos + size]
        pos = reader.pos + size


def _values(page: bytes) -> Iterator[bytes]:
    pos = 0
    while pos + 4 <= len(page):
        (size,) = struct.unpack_from("<I", page, pos)
        yield page[pos + 4: pos + 4 + size]
        pos += 4 + size


def salvage_records(path: Path, fingerprint: dict[str, Any], damage: list[str], why: str) -> Iterator[dict[str, Any]]:
    """Records of the ``record`` column's intact pages; a file that is no Parquet is refused."""
    import pyarrow as pa

    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise PreviousOutputError(f"{path}: cannot read it as Parquet ({why}); pass --overwrite to replace it, or choose another --out")
    codec = pa.Codec("zstd")
    tokens = Tokens(path, fingerprint)
    kept = 0
    end = len(MAGIC)
    for end, header, payload in _pages(data):
        page = header.get(5)
        if header[1] != DATA_PAGE or not isinstance(page, dict):
            continue
        try:
            raw = codec.decompress(payload, decompressed_size=header[2], asbytes=True)
        except Exception:  # noqa: BLE001  not zstd: another column's or a damaged page
            continue
        if not raw[4:4 + len(RECORD_START)] == RECORD_START:
            continue
        for value in _values(raw):
            record = json.loads(value)
            if not tokens.intact(record.get("run")):
                continue
            kept += 1
            yield record
    if not tokens.seen:
        raise PreviousOutputError(f"{path}: its Parquet footer is damaged ({why}) and no intact row carries a run token, so "
                                  "nothing proves how it was made; pass --overwrite to replace it")
    damage.append(f"{path}: damaged: its Parquet footer (schema and row-group index) is damaged or missing ({why}); {kept} "
                  f"rows were recovered from the intact data pages before byte {end} of {len(data)}; the images whose rows "
                  "were lost are done again")

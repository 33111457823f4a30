"""Read a JSON document whose one big array (MegaDetector's ``images``, an embeddings index's
``images``) is read element by element: a million-image file never in memory at once, and a file
cut short or damaged part-way still gives every element before the damage, with the byte offset.

``read_document(path, key, needed)`` returns the members before the array (``head``) and an
iterator of its elements. When a member in ``needed`` comes after the array (another tool's
layout), the array is read whole first. ``damage`` is None, or the byte offset where the document
stops being readable (``cut`` says whether that is the end of the file).
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any, Iterator

CHUNK = 1 << 16
MAX_ELEMENT = 64 << 20  # an element larger than this is damage, not a slow read


class Damaged(Exception):
    """The document is not readable past ``offset`` (bytes); ``cut``: the file ends there."""

    def __init__(self, offset: int, cut: bool):
        super().__init__(offset)
        self.offset, self.cut = offset, cut


class _Reader:
    def __init__(self, path: Path):
        self.fh = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.buf, self.pos, self.base, self.eof = "", 0, 0, False
        self.json = json.JSONDecoder()

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.fh.read(CHUNK)
        self.eof = not data
        consumed = self.buf[: self.pos]
        self.base += len(consumed.encode("utf-8"))
        self.buf = self.buf[self.pos:] + self.decoder.decode(data, final=self.eof)
        self.pos = 0
        return bool(data)

    def offset(self) -> int:
        return self.base + len(self.buf[: self.pos].encode("utf-8"))

    def damaged(self) -> Damaged:
        while self.more():
            pass
        self.skip_ws()
        return Damaged(self.offset(), self.pos >= len(self.buf))

    def skip_ws(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def expect(self, chars: str) -> str:
        char = self.skip_ws()
        if not char or char not in chars:
            raise self.damaged()
        self.pos += 1
        return char

    def value(self) -> Any:
        self.skip_ws()
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
                if end == len(self.buf) and not self.eof and isinstance(value, (int, float)):
                    raise json.JSONDecodeError("number may continue", self.buf, end)
                self.pos = end
                return value
            except json.JSONDecodeError:
                if len(self.buf) - self.pos > MAX_ELEMENT or not self.more():
                    raise self.damaged() from None


def read_document(path: str | Path, key: str, needed: tuple[str, ...] = ()) -> tuple[dict[str, Any], Iterator[Any]]:
    """(members before ``key``'s array, its elements); ``Damaged`` from either when the file is."""
    reader = _Reader(Path(path))
    head: dict[str, Any] = {}
    try:
        reader.expect("{")
        if reader.skip_ws() == "}":
            reader.fh.close()
            return head, iter(())
        while True:
            name = reader.value()
            reader.expect(":")
            if name == key and reader.skip_ws() == "[":
                elements = _elements(reader, head)
                if all(k in head for k in needed):
                    return head, elements
                items = list(elements)  # another layout: what is needed comes after the array
                return head, iter(items)
            head[str(name)] = reader.value()
            if reader.expect(",}") == "}":
                reader.fh.close()
                return head, iter(())
    except BaseException:
        reader.fh.close()
        raise


def _elements(reader: _Reader, head: dict[str, Any]) -> Iterator[Any]:
    """The array's elements, then the document's other members into ``head``."""
    try:
        reader.expect("[")
        if reader.skip_ws() == "]":
            reader.pos += 1
        else:
            while True:
                yield reader.value()
                if reader.expect(",]") == "]":
                    break
        while reader.expect(",}") == ",":
            name = reader.value()
            reader.expect(":")
            head[str(name)] = reader.value()
    finally:
        reader.fh.close()

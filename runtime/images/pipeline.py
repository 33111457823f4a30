"""Decode in a thread pool while onnxruntime runs, in input order, with bounded memory.

Pillow's decoders and onnxruntime's ``run`` both release the GIL, so plain threads overlap
JPEG decoding with inference. The pool works at most ``window`` images ahead of the model:
enough to keep it fed, never the whole card in memory (one 224 px image is 600 kB as float32).

A *prepare* function turns one ``ImageItem`` into a ``Prepared`` (pixels for one or more crops,
or a failure reason); it never raises, so one bad file cannot stop the run.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.images.decode import ImageDecodeError
from bioclip_edge.runtime.images.discover import ImageItem

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    item: ImageItem
    pixels: np.ndarray | None = None  # [n, 3, H, W]; n = 1 for a whole image, #crops otherwise
    failure: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # exif fields, size, anything the caller needs


def safe(prepare: Callable[[ImageItem], Prepared]) -> Callable[[ImageItem], Prepared]:
    """Wrap a prepare function so every exception becomes a failure row."""

    def run(item: ImageItem) -> Prepared:
        if item.problem:
            return Prepared(item, failure=item.problem)
        try:
            return prepare(item)
        except ImageDecodeError as exc:
            return Prepared(item, failure=exc.reason)
        except Exception as exc:  # noqa: BLE001  per-image problems are data, not crashes
            log.warning("unexpected error on %s", item.path, exc_info=True)
            return Prepared(item, failure=f"unexpected error ({type(exc).__name__}: {exc})")

    return run


def prepare_stream(items: Iterable[ImageItem], prepare: Callable[[ImageItem], Prepared], threads: int, window: int) -> Iterator[Prepared]:
    """``prepare`` applied to every item, results in input order; ``threads=0`` runs inline."""
    prepare = safe(prepare)
    if threads <= 0:
        yield from map(prepare, items)
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(prepare, item))
            if len(pending) >= max(window, 1):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # interrupted or closed early: drop queued work instead of finishing it
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def embed_stream(prepared: Iterable[Prepared], embed: Callable[[np.ndarray], np.ndarray], batch_size: int) -> Iterator[tuple[Prepared, np.ndarray | None]]:
    """Pack crops from consecutive images into batches of about ``batch_size``; yield each image
    with its embeddings [n, dim] (None for failures) in input order."""
    waiting: list[Prepared] = []
    count = 0
    for p in prepared:
        waiting.append(p)
        count += 0 if p.pixels is None else len(p.pixels)
        if count >= batch_size:
            yield from _flush(waiting, embed)
            waiting, count = [], 0
    if waiting:
        yield from _flush(waiting, embed)


def _flush(waiting: list[Prepared], embed: Callable[[np.ndarray], np.ndarray]) -> Iterator[tuple[Prepared, np.ndarray | None]]:
    with_pixels = [p.pixels for p in waiting if p.pixels is not None and len(p.pixels)]
    vectors = embed(np.concatenate(with_pixels)) if with_pixels else None
    start = 0
    for p in waiting:
        if p.pixels is None:
            yield p, None
            continue
        n = len(p.pixels)
        yield p, vectors[start : start + n] if n else np.zeros((0, 0), np.float32)
        start += n

"""Decode in a thread pool while onnxruntime runs, in input order, with bounded memory.

Pillow's decoders and onnxruntime's ``run`` both release the GIL, so plain threads overlap
JPEG decoding with inference. The pool works at most ``window`` images ahead of the model:
enough to keep it fed, never the whole card in memory (one 224 px image is 600 kB as float32).

A *prepare* function turns one ``ImageItem`` into a ``Prepared`` (pixels for one or more crops,
or a failure reason); it never raises, so one bad file cannot stop the run.

``Flow`` is derived once from the request (``ImageRequest``) and owns every number of the
flow: decode threads, how far decoding runs ahead, and the batch size; the last two are chosen
within the memory budget (``--max-memory``, ``runtime.inference.memory``). ``embed_stream`` only
groups consecutive images until a batch is full; the model calls are the embedder's (``embed``
splits a group into calls of the same ``batch_size``), so batching is decided in one place.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypedDict

import numpy as np

from bioclip_edge.runtime.images.decode import DecodeOptions, ImageDecodeError, load_image
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.inference.memory import FlowChoice, Workload, choose_flow, preferred_window, resolve_budget

log = logging.getLogger(__name__)


class MediaInfo(TypedDict, total=False):
    """What a prepared input carries besides its pixels: the fields its record takes (``runtime.jobs.records``)."""

    datetime: str  # EXIF (``decode.read_exif``)
    make: str
    model: str
    serial: str
    width: int  # the upright picture's full size
    height: int
    frame_rate: float  # a video (``media.video_info``)
    frames_processed: list[int]  # its sampled frames' numbers, one row of pixels each
    note: str  # a damaged video that kept some frames, or boxes in frames a video lacks
    targets: list[int]  # MegaDetector crops: the boxes (indices into the entry's detections) the pixels hold, in order


@dataclass
class Prepared:
    item: ImageItem
    pixels: np.ndarray | None = None  # [n, 3, H, W]; n = 1 for a whole image, #crops otherwise
    failure: str | None = None
    info: MediaInfo = field(default_factory=MediaInfo)


def default_threads() -> int:
    """Decode threads: enough to keep one inference stream fed on small and large machines."""
    return max(1, min(4, (os.cpu_count() or 2)))


def decode_threads(request: ImageRequest) -> int:
    """``--decode-threads`` as asked, else ``default_threads``."""
    return default_threads() if request.decode_threads is None else request.decode_threads


@dataclass(frozen=True)
class Flow:
    """How images flow to the model, derived once from the request (and, through ``planned``, the
    memory budget): the batch, the decode threads and how far decoding runs ahead."""

    batch_size: int  # images (or crops) per model call
    decode_threads: int  # 0: decode inline
    window: int = 0  # images decoded ahead of the model; 0: ``preferred_window``
    memory: FlowChoice | None = None  # the budget's choice, when the flow was planned within one

    def __post_init__(self) -> None:
        if self.window <= 0:
            object.__setattr__(self, "window", preferred_window(self.batch_size, self.decode_threads))

    @classmethod
    def planned(cls, request: ImageRequest, workload: Callable[[int], Workload]) -> "Flow":
        """The flow within ``request.max_memory``: ``choose_flow`` picks the batch (unless
        ``--batch-size`` was given) and the window for the ``workload`` of this many decode threads."""
        threads = decode_threads(request)
        choice = choose_flow(workload(threads), resolve_budget(request.max_memory), request.batch_size)
        if choice.over_budget:
            log.warning("%s", choice.text())
        return cls(choice.batch_size, threads, choice.window, choice)

    def chunks(self, n: int) -> Iterator[slice]:
        """The model calls for ``n`` rows: ``batch_size`` rows each, the last one shorter."""
        for start in range(0, n, self.batch_size):
            yield slice(start, start + self.batch_size)


def whole_image_preparer(transform: Callable[..., np.ndarray], decode: DecodeOptions) -> Callable[[ImageItem], Prepared]:
    """Prepare one whole image: decode, the model's transform, EXIF and full size in ``info``."""

    def prepare(item: ImageItem) -> Prepared:
        decoded = load_image(item.path if item.data is None else item.data, decode)
        pixels = transform(decoded.image, approximate=decoded.scale > 1)[None]
        return Prepared(item, pixels=pixels, info={**decoded.exif, "width": decoded.width, "height": decoded.height})

    return prepare


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


def prepare_stream(items: Iterable[ImageItem], prepare: Callable[[ImageItem], Prepared], decode_threads: int, window: int,
                   cost: Callable[[ImageItem], int] | None = None) -> Iterator[Prepared]:
    """``prepare`` applied to every item, results in input order; ``decode_threads=0`` runs inline; at
    most ``window`` images in flight (a ``Flow`` gives both). ``cost(item)``: model inputs an
    item may hold (a video: its frame cap); the window then counts those, with at least two items
    in flight so one decodes while the model runs on the other (memory stays ~3 items' worth)."""
    prepare = safe(prepare)
    if decode_threads <= 0:
        yield from map(prepare, items)
        return
    pool = ThreadPoolExecutor(max_workers=decode_threads, thread_name_prefix="decode")
    pending: deque = deque()
    load = 0
    try:
        for item in items:
            weight = 1 if cost is None else max(1, cost(item))
            pending.append((pool.submit(prepare, item), weight))
            load += weight
            while load >= max(window, 1) and (len(pending) >= 2 or cost is None):
                future, weight = pending.popleft()
                load -= weight
                yield future.result()
        while pending:
            yield pending.popleft()[0].result()
    finally:  # interrupted or closed early: drop queued work instead of finishing it
        for future, _ in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def embedded(items: Iterable[ImageItem], prepare: Callable[[ImageItem], Prepared], embed: Callable[[np.ndarray], np.ndarray],
             flow: Flow, cost: Callable[[ImageItem], int] | None = None) -> Iterator[tuple[Prepared, np.ndarray | None]]:
    """Decode (``flow.decode_threads`` ahead) and embed (``flow.batch_size`` per call): each image with its
    embeddings, in input order (``cost``: see ``prepare_stream``)."""
    return embed_stream(prepare_stream(items, prepare, flow.decode_threads, flow.window, cost), embed, flow)


def embed_stream(prepared: Iterable[Prepared], embed: Callable[[np.ndarray], np.ndarray], flow: Flow) -> Iterator[tuple[Prepared, np.ndarray | None]]:
    """Group consecutive images until their crops fill a batch (``embed`` makes the model calls);
    yield each image with its embeddings [n, dim] (None for failures) in input order."""
    waiting: list[Prepared] = []
    count = 0
    for p in prepared:
        waiting.append(p)
        count += 0 if p.pixels is None else len(p.pixels)
        if count >= flow.batch_size:
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

"""Whole stills and videos -> their records, in input order.

Each input is prepared and embedded once (``runtime.images.media.embedded_media``: a still one
vector, a video one per sampled frame), then waits for its vectors to be scored with the other
records of its window (``runtime.jobs.scoring_window``). A still becomes an image record, a video
a video record with its frames and their roll-up (``runtime.jobs.rollup``), and an input that could
not be read a failure record (``runtime.jobs.records``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.images.discover import ImageItem, is_video_name
from bioclip_edge.runtime.images.media import embedded_media
from bioclip_edge.runtime.images.pipeline import MediaInfo, Prepared
from bioclip_edge.runtime.jobs.records import (Predictions, Record, VideoRecord, failure_record, frame_record, image_record,
                                               video_record)
from bioclip_edge.runtime.jobs.rollup import mean_topk
from bioclip_edge.runtime.jobs.scoring_window import NO_VECTORS, Waiting, scored_in_windows

Score = Callable[[np.ndarray], list[Predictions]]  # vectors -> one top-k per row


def media_records(items: Iterable[ImageItem], embedder: Any, score: Score, window: int, k: int) -> Iterator[Record]:
    """The records of ``items`` in input order, ``score`` called on ``window`` or more vectors at a time;
    ``k``: the top-k kept (a video's roll-up keeps as many)."""
    waiting = (_waiting(prepared, vectors, k) for prepared, vectors in embedded_media(embedder, items))
    yield from scored_in_windows(waiting, score, window)


def _waiting(prepared: Prepared, vectors: np.ndarray | None, k: int) -> Waiting:
    """The input's record, finished once its vectors are scored."""
    prepared.pixels = None  # free the pixels as soon as they are embedded
    filepath, info, video = prepared.item.filepath, prepared.info, is_video_name(prepared.item.path)
    if vectors is None:
        failure = failure_record(filepath, prepared.failure or "not prepared", video)
        return Waiting(NO_VECTORS, lambda _: failure)
    if video:
        return Waiting(vectors, lambda found: _video(filepath, info, found, k))
    return Waiting(vectors, lambda found: image_record(filepath, info, found[0] if found else []))


def _video(filepath: str, info: MediaInfo, found: list[Predictions], k: int) -> VideoRecord:
    """A video's frames (number + top-k each) and its roll-up over them."""
    frames = [frame_record(n, p) for n, p in zip(info.get("frames_processed", []), found)]
    return video_record(filepath, info, frames, mean_topk((f["predictions"] for f in frames), k))

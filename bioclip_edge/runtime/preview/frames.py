"""Sampled frames of a video file, for the preview's frame strips.

The frames are read with the runtime's own video reader (``images.video.VideoReader.frames_at``:
one pass over the stream, only the frames asked for converted to pictures; ``frame_number`` is
the frame's 0-based index in the stream, MegaDetector's video convention), so the preview shows
exactly the frames ``classify`` classified. Without PyAV (the ``video`` extra) a video thumbnail
is a placeholder saying so, not a crash.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Collection


class VideoDecoderMissing(RuntimeError):
    """PyAV is not installed: videos get a placeholder naming the extra to install."""


def for_each_frame(path: Path, wanted: Collection[int], use: Callable[[int, Any], None]) -> None:
    """Call ``use(number, PIL image)`` for each frame number in ``wanted`` that the stream holds."""
    if importlib.util.find_spec("av") is None:
        raise VideoDecoderMissing('install "bioclip-edge[video]" (PyAV) to see video frames')
    from bioclip_edge.runtime.images.video import VideoReader

    if not wanted:
        return
    with VideoReader(path) as reader:
        for frame in reader.frames_at(set(wanted)):
            use(frame.number, frame.image)

"""Small videos made with PyAV's own encoders from real photos, for the video tests.

Each video pans slowly across one photo (so frames differ, as in a real clip) at 64x48 by
default: a few seconds of it encode and decode in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# (codec, pixel format, container format or None for the suffix's)
CODECS = {"h264": ("libx264", "yuv420p"), "mjpeg": ("mjpeg", "yuvj420p"), "mpeg4": ("mpeg4", "yuv420p")}


def write_video(path: Path, photo: Path, codec: str = "h264", seconds: float = 3.0, fps: int = 10,
                size: tuple[int, int] = (64, 48), gop: int | None = None, fmt: str | None = None) -> Path:
    """A ``seconds`` long clip panning across ``photo``; ``gop``: frames between keyframes."""
    import av

    name, pix = CODECS[codec]
    width, height = size
    source = Image.open(photo).convert("RGB").resize((width * 2, height))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(name, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix
        if gop:
            stream.codec_context.gop_size = gop
            if name == "libx264":
                stream.codec_context.options = {"sc_threshold": "0", "keyint_min": str(gop)}
        frames = int(round(seconds * fps))
        for i in range(frames):
            left = int(i * width / max(frames - 1, 1))
            array = np.asarray(source.crop((left, 0, left + width, height)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut the file to ``fraction`` of its bytes, as a dying battery does."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def unknown_codec(path: Path, photo: Path) -> Path:
    """An MJPEG AVI whose codec tag is rewritten to one FFmpeg has no decoder for."""
    write_video(path, photo, codec="mjpeg", seconds=1.0)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"MJPG", b"QQQQ").replace(b"mjpg", b"qqqq"))
    return path

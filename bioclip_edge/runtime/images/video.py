"""Sample frames from a video file with PyAV (FFmpeg's decoders, bundled in its wheels).

Why PyAV: it brings its own codecs on every platform (Bushnell and Browning MJPEG AVIs that break
OpenCV decode here), and it lets us decode packets without converting them: a frame that is not
sampled is never turned into RGB. PyAV is the ``video`` extra and is imported only when a video is
met; without it each video is a failure row naming ``pip install "bioclip-edge[video]"``.

Sampling (``VideoSampling``): target times 0, interval, 2 x interval, ... seconds from the stream's
start; for each, the first frame whose presentation time is at or after it (within half a frame)
is taken, at most ``max_frames`` per video. ``frame_number`` is the frame's index in the stream,
as MegaDetector (OpenCV) counts frames, so its video tools find the same frame.

Keyframe-only decoding (``codec_context.skip_frame = "NONKEY"``): before decoding, the packets are
read once without decoding (cheap) to find the keyframes. When every target time has a keyframe
no more than half an interval after it, only keyframes are decoded and the nearest one at or after
each target is taken (a camera writing one GOP per second at 1 frame/s sampling decodes 1 frame in
30). Otherwise, or when the packet count falls short of the header (a damaged file), every frame is
decoded and only the sampled ones are converted. Frame numbers of keyframes come from their
timestamps (time x frame rate).

Damage: a file that cannot be opened, has no video stream, an unknown codec, or yields no frame
raises ``ImageDecodeError`` (a failure row). A stream that breaks or ends before its header's frame
count after some frames were sampled keeps those frames and says so in ``VideoInfo.note``.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

from bioclip_edge.runtime.images.decode import ImageDecodeError, check_file  # the same checks as stills

VIDEO_EXTRA = 'pip install "bioclip-edge[video]"'


@dataclass(frozen=True)
class VideoSampling:
    """Which frames of a video are classified (``--frame-interval``, ``--max-frames``)."""

    interval: float = 1.0  # seconds between sampled frames
    max_frames: int = 100  # cap per video: memory per video in flight is max_frames x one model input

    def describe(self) -> str:
        return f"one frame every {self.interval:g} s, at most {self.max_frames} per video"


@dataclass
class SampledFrame:
    number: int  # index of the frame in the stream (MegaDetector's frame_number)
    time: float  # seconds from the stream's start
    image: Any  # PIL.Image.Image, RGB


@dataclass
class VideoInfo:
    frame_rate: float  # frames per second (0.0 when the file does not say)
    width: int
    height: int
    keyframes_only: bool = False
    note: str | None = None  # set when the stream broke or ended early and frames were kept


def import_av() -> Any:
    """PyAV, or a per-file failure naming the extra to install."""
    try:
        import av
    except ImportError:
        raise ImageDecodeError(f"a video, and PyAV (the video decoder) is not installed: {VIDEO_EXTRA}") from None
    return av


class VideoReader:
    """One open video: ``info``, then ``sampled(sampling)`` or ``frames_at(numbers)``; use ``with``."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        check_file(self.path)
        self.av = import_av()
        self.container = _open(self.av, self.path)
        try:
            self.stream = _video_stream(self.container)
        except ImageDecodeError:
            self.container.close()
            raise
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.info = VideoInfo(frame_rate=round(float(rate), 3) if rate else 0.0,
                              width=int(self.stream.width or 0), height=int(self.stream.height or 0))
        self.error: str | None = None
        self._start = float((self.stream.start_time or 0) * self.stream.time_base) if self.stream.time_base else 0.0

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.container.close()

    def sampled(self, sampling: VideoSampling) -> Iterator[SampledFrame]:
        """The sampled frames, converted to RGB one at a time (see the module docstring)."""
        keyframes = self._keyframes_cover(sampling.interval)
        self.info.keyframes_only = keyframes
        if keyframes:
            self.stream.codec_context.skip_frame = "NONKEY"
        half = 0.5 / self.info.frame_rate if self.info.frame_rate else 1e-3
        target, taken, index = 0.0, 0, -1
        for index, frame in enumerate(self._decoded()):
            t = self._time(frame, index)
            if t + half < target:
                continue  # not sampled: never converted
            number = round(t * self.info.frame_rate) if keyframes and self.info.frame_rate else index
            yield SampledFrame(number, t, frame.to_image())
            taken += 1
            if taken >= sampling.max_frames:
                return
            while target <= t + half:
                target += sampling.interval
        self._check_complete(index + 1, taken, keyframes)

    def frames_at(self, numbers: set[int]) -> Iterator[SampledFrame]:
        """The frames with these indices (MegaDetector's ``frame_number``s), by counting decoded frames."""
        last = max(numbers, default=-1)
        index = -1
        for index, frame in enumerate(self._decoded()):
            if index in numbers:
                yield SampledFrame(index, self._time(frame, index), frame.to_image())
            if index >= last:
                return
        if last > index:
            self.error = self.error or f"the video ends at frame {index}, before frame {last}"

    # --- internals ------------------------------------------------------------------------------
    def _decoded(self) -> Iterator[Any]:
        """Decoded frames; a decoding error ends the stream and is kept in ``self.error``."""
        try:
            yield from self.container.decode(self.stream)
        except self.av.FFmpegError as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _time(self, frame: Any, index: int) -> float:
        if frame.pts is not None and frame.time_base:
            return float(frame.pts * frame.time_base) - self._start
        return index / self.info.frame_rate if self.info.frame_rate else float(index)

    def _keyframes_cover(self, interval: float) -> bool:
        """True when every target time has a keyframe at most half an interval after it (packets
        only, nothing decoded); False on any doubt (no frame rate, damaged file)."""
        if not self.info.frame_rate:
            return False
        keys, count, end = _scan_packets(self.av, self.path, self.stream.index)
        if count == 0 or (self.stream.frames and count < self.stream.frames):
            return False
        times = sorted(float(Fraction(k) * self.stream.time_base) - self._start for k in keys)
        target = 0.0
        while target <= end:
            at = bisect.bisect_left(times, target - 1e-6)  # the first keyframe at or after the target
            if at == len(times) or times[at] > target + interval / 2:
                return False
            target += interval
        return True

    def _check_complete(self, decoded: int, taken: int, keyframes: bool) -> None:
        """Fail a video with no frame; note one that broke or ended before its header said."""
        expected = int(self.stream.frames or 0)
        short = not keyframes and expected and decoded < expected
        if taken == 0:
            detail = f" ({self.error})" if self.error else (": a zero-frame stream, or a truncated file" if decoded == 0 else "")
            raise ImageDecodeError(f"no video frame could be decoded{detail}")
        if self.error or short:
            why = self.error or f"the file ends after {decoded} of the {expected} frames its header announces"
            self.info.note = f"truncated or damaged video: {why}; the {taken} frame(s) sampled before were kept"


def _open(av: Any, path: Path) -> Any:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        raise ImageDecodeError(f"not a video FFmpeg can read (unknown format or corrupt header: {exc})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ImageDecodeError(f"cannot open the video ({exc})") from None


def _video_stream(container: Any) -> Any:
    if not container.streams.video:
        raise ImageDecodeError("no video stream in the file")
    stream = container.streams.video[0]
    codec = getattr(stream.codec_context, "codec", None) if stream.codec_context is not None else None
    if codec is None or not getattr(codec, "name", None) or stream.codec_context.name in ("none", None):
        raise ImageDecodeError("unsupported video codec: FFmpeg has no decoder for this stream")
    # One FFmpeg thread per video: the pipeline already decodes videos side by side in its decode
    # threads, beside the model; FFmpeg's own threads only oversubscribed the cores (AUTO cost 25%
    # more CPU per sampled 1080p frame here, and no wall time once several clips were in flight).
    stream.thread_count = 1
    return stream


def _scan_packets(av: Any, path: Path, stream_index: int) -> tuple[list[int], int, float]:
    """Keyframe timestamps, the packet count and the last packet's time, read without decoding."""
    keys: list[int] = []
    count, end = 0, 0.0
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams[stream_index]
        start = float((stream.start_time or 0) * stream.time_base)
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                count += 1
                end = max(end, float(packet.pts * stream.time_base) - start)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        except av.FFmpegError:
            return [], 0, 0.0
    return keys, count, end


def read_sampled(path: str | os.PathLike, sampling: VideoSampling, convert: Callable[[Any], Any]) -> tuple[VideoInfo, list[tuple[int, Any]]]:
    """``convert(image)`` of every sampled frame, with its frame number; each RGB frame is dropped
    once converted, so only the converted results (model inputs) are held."""
    with VideoReader(path) as reader:
        out = [(frame.number, convert(frame.image)) for frame in reader.sampled(sampling)]
        return reader.info, out

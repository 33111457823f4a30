"""Stills and videos through one embedder: the prepare function for both, and video crops.

A video is ONE ``Prepared`` whose pixels hold its sampled frames ``[n, 3, H, W]`` (n <= the frame
cap), so frames flow through the same decode threads, batching and model calls as stills, and a
video's record is produced only once all its sampled frames are embedded: a checkpoint never holds
half a video, which is what lets ``--resume`` count a video as done or not at all. Memory is
bounded by the cap: ``frame_cost`` tells the pipeline a video weighs ``max_frames`` images, so
the decode window holds about three videos at most (100 frames at 224 px: 60 MB each).

Each frame gets the same open_clip transform as a still (``ImageTransform``), from the RGB frame.
``embedded_media`` is the one place stills and videos are prepared and embedded: ``classify``
(``runtime.jobs.media_records``) and ``embed`` (``iter_media_embeddings``) both read it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from bioclip_edge.runtime.images.decode import ImageDecodeError
from bioclip_edge.runtime.images.detections import crop_box
from bioclip_edge.runtime.images.discover import ImageItem, is_video_name
from bioclip_edge.runtime.images.pipeline import MediaInfo, Prepared, embedded, whole_image_preparer
from bioclip_edge.runtime.images.video import VideoInfo, VideoReader, VideoSampling, read_sampled


def request_sampling(request: Any) -> VideoSampling:
    """The video sampling an ``ImageRequest`` asks for (``--frame-interval``, ``--max-frames``)."""
    return VideoSampling(request.frame_interval, request.max_frames)


def frame_cost(sampling: VideoSampling) -> Callable[[ImageItem], int]:
    """Model inputs an item may hold: a video its frame cap, a still one."""
    return lambda item: sampling.max_frames if is_video_name(item.path) else 1


def embedded_media(embedder: Any, items: Iterable[ImageItem]) -> Iterator[tuple[Prepared, np.ndarray | None]]:
    """Each still and video of ``items`` with its vectors (a video: one per sampled frame; None: failed),
    in input order, decoded in the embedder's flow and sampled as its request asks."""
    sampling = request_sampling(embedder.request)
    still, video = whole_image_preparer(embedder.transform, embedder.decode), video_preparer(embedder.transform, sampling)

    def prepare(item: ImageItem) -> Prepared:
        return video(item) if is_video_name(item.path) else still(item)

    return embedded(items, prepare, embedder.embed, embedder.flow, frame_cost(sampling))


def video_preparer(transform: Callable[..., np.ndarray], sampling: VideoSampling) -> Callable[[ImageItem], Prepared]:
    """Prepare one video: its sampled frames through ``transform``; ``info`` carries ``frame_rate``,
    ``frames_processed`` (the frame numbers, in order), the size, and a ``note`` when damaged."""

    def prepare(item: ImageItem) -> Prepared:
        info, frames = read_sampled(item.path, sampling, transform)
        pixels = np.stack([frame for _, frame in frames])
        return Prepared(item, pixels=pixels, info=video_info(info, [number for number, _ in frames]))

    return prepare


def video_info(info: VideoInfo, numbers: list[int]) -> MediaInfo:
    """What a video's record carries besides predictions."""
    out: MediaInfo = {"frame_rate": info.frame_rate, "frames_processed": numbers, "width": info.width, "height": info.height}
    if info.note:
        out["note"] = info.note
    return out


def video_crops(item: ImageItem, detections: list[dict[str, Any]], targets: list[int], transform: Callable[..., np.ndarray]) -> Prepared:
    """The boxes ``targets`` (indices into ``detections``, each with a ``frame_number``), each cut from
    its own frame of the video, in ``targets`` order; frames decoded once, only those needed converted."""
    wanted = {int(detections[i].get("frame_number", 0)) for i in targets}
    crops: dict[int, np.ndarray] = {}
    with VideoReader(item.path) as reader:
        for frame in reader.frames_at(wanted):
            for i in targets:
                if int(detections[i].get("frame_number", 0)) == frame.number:
                    box = crop_box(frame.image.width, frame.image.height, detections[i]["bbox"])
                    crops[i] = transform(frame.image.crop(box))
        if targets and not crops:
            raise ImageDecodeError(f"none of the frames its boxes are in could be decoded ({reader.error or 'the video is shorter'})")
        info: MediaInfo = {"width": reader.info.width, "height": reader.info.height, "targets": [i for i in targets if i in crops]}
        if len(crops) < len(targets):
            info["note"] = f"{len(targets) - len(crops)} box(es) in frames the video does not have ({reader.error or 'short video'}); not classified"
    pixels = np.stack([crops[i] for i in info["targets"]]) if crops else np.zeros((0, 3, *transform.size), np.float32)
    return Prepared(item, pixels=pixels, info=info)


def iter_media_embeddings(embedder: Any, items: Iterable[ImageItem]) -> Iterator[tuple[str, Any, dict[str, Any], str | None]]:
    """``(filepath, vector | None, info, failure)`` per still, and per sampled frame of a video (its
    ``info`` carries the ``frame_number``; a failed video is one failure): what ``embed`` indexes."""
    for prepared, vectors in embedded_media(embedder, items):
        prepared.pixels = None
        name, info = prepared.item.filepath, prepared.info
        if vectors is None:
            yield name, None, dict(info), prepared.failure
        elif is_video_name(prepared.item.path):
            shared = {k: v for k, v in info.items() if k != "frames_processed"}
            for number, vector in zip(info.get("frames_processed", []), vectors):
                yield name, vector, {"frame_number": number, **shared}, None
        else:
            yield name, vectors[0], dict(info), None

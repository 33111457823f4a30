"""A MegaDetector file's entries -> their box records, in the file's order.

Each entry travels through the pipeline as a ``BoxItem``: its image, the entry itself and the
boxes to classify (``targets``: the detections of the chosen categories at or above the
threshold), so the record is made from the item the pipeline hands back. Only the targets are
cropped and embedded; the record carries every detection of the entry, the classified ones with
their top-k (``runtime.jobs.records.boxes_record``). With draft decoding on, a still is drafted only
as far as its smallest crop keeps the whole-image margin, else decoded exactly
(``ImageEmbedder.crop_options``); video frames are decoded exactly (``images.media.video_crops``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, cast

import numpy as np

from bioclip_edge.runtime.images.decode import load_image
from bioclip_edge.runtime.images.detections import DetectionsFile, crop_box
from bioclip_edge.runtime.images.discover import ImageItem, is_video_name
from bioclip_edge.runtime.images.media import video_crops
from bioclip_edge.runtime.images.pipeline import MediaInfo, Prepared, embedded
from bioclip_edge.runtime.jobs.records import BoxesRecord, Predictions, boxes_record
from bioclip_edge.runtime.jobs.scoring_window import NO_VECTORS, Waiting, scored_in_windows


@dataclass(frozen=True)
class BoxItem(ImageItem):
    """An entry of a MegaDetector file, as the pipeline carries it."""

    entry: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    targets: tuple[int, ...] = ()  # indices into the entry's detections: the boxes to classify


def box_items(detections: DetectionsFile, root: Path, categories: tuple[str, ...] | None, threshold: float,
              skip: Iterable[str] = ()) -> list[BoxItem]:
    """The file's entries not in ``skip``, each with the boxes of ``categories`` (None: all) with conf >= ``threshold``."""
    done, wanted = set(skip), detections.category_ids(categories)
    return [_box_item(entry, root, wanted, threshold) for entry in detections.images if entry["file"] not in done]


def _box_item(entry: dict[str, Any], root: Path, wanted: set[str], threshold: float) -> BoxItem:
    path = Path(entry["file"]) if os.path.isabs(entry["file"]) else root / entry["file"]
    problem = f"megadetector: {entry['failure']}" if entry.get("failure") else None
    targets = tuple(i for i, det in enumerate(entry.get("detections") or [])
                    if str(det.get("category")) in wanted and float(det.get("conf", 0.0)) >= threshold)
    return BoxItem(path, entry["file"], problem, entry=entry, targets=targets)


def box_records(items: Iterable[BoxItem], embedder: Any, score: Callable[[np.ndarray], list[Predictions]],
                window: int) -> Iterator[BoxesRecord]:
    """One record per item, in order, ``score`` called on ``window`` or more crops' vectors at a time."""
    stream = embedded(items, lambda item: prepare_crops(cast(BoxItem, item), embedder), embedder.embed, embedder.flow)
    yield from scored_in_windows((_waiting(p, v) for p, v in stream), score, window)  # type: ignore[misc]


def prepare_crops(item: BoxItem, embedder: Any) -> Prepared:
    """The item's target boxes cut from its image (or their frames of a video), through the model's transform."""
    transform = embedder.transform
    if not item.targets:  # nothing to classify: no need to decode the image
        return Prepared(item, pixels=np.zeros((0, 3, *transform.size), np.float32), info={"targets": []})
    detections = item.entry["detections"]
    if is_video_name(item.path):
        return video_crops(item, detections, list(item.targets), transform)
    decoded = load_image(item.path, embedder.crop_options(item.path, [detections[i]["bbox"] for i in item.targets]))
    crops = [transform(decoded.image.crop(crop_box(decoded.image.width, decoded.image.height, detections[i]["bbox"])))
             for i in item.targets]
    info = cast(MediaInfo, {**decoded.exif, "width": decoded.width, "height": decoded.height, "targets": list(item.targets)})
    return Prepared(item, pixels=np.stack(crops), info=info)


def _waiting(prepared: Prepared, vectors: np.ndarray | None) -> Waiting:
    """The entry's record with every detection; the classified boxes get their top-k once scored."""
    item = cast(BoxItem, prepared.item)
    targets = prepared.info.get("targets", list(item.targets))  # a video's boxes in frames it lacks are left out
    record = boxes_record(item.filepath, prepared.info, item.entry, prepared.failure)
    prepared.pixels = None  # free the pixels as soon as they are embedded

    def finish(found: list[Predictions]) -> BoxesRecord:
        for index, predictions in zip(targets, found):
            record["detections"][index]["predictions"] = predictions  # type: ignore[index]
        return record

    return Waiting(vectors if vectors is not None and len(targets) else NO_VECTORS, finish)

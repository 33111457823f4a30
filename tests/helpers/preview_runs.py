"""Real classify outputs for the preview tests: the real job on the conftest photos, with a file
whose name has spaces, non-ASCII letters and a ``#``, an unreadable image, a ``--detections`` run
and a small video in MegaDetector's video convention (made with PyAV's own encoder)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

from bioclip_edge.cli import main
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME

LABELS = "lion,leopard,coffee cup,empty savanna"
PINNED = ["--precision", "fp32", "--backend", "onnxruntime", "--batch-size", "4", "--threads", "0", "--no-progress"]
ODD_NAME = "Kenya 2024/léopard café #1.jpg"


@dataclass(frozen=True)
class Runs:
    card: Path
    md: Path  # whole images, --relative-paths, random weights, one failure
    csv: Path  # whole images, absolute paths
    jsonl: Path
    detections: Path  # --detections, relative to the card
    random_bundle: Path


def make_card(photo_dir: Path, folder: Path) -> Path:
    """The sample photos, one under an awkward name, and a truncated JPEG."""
    folder.mkdir(parents=True)
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        shutil.copy(photo_dir / f"{name}.jpg", folder / f"{name}.jpg")
    (folder / ODD_NAME).parent.mkdir()
    shutil.copy(photo_dir / "colorwheel.jpg", folder / ODD_NAME)
    (folder / "broken.jpg").write_bytes((photo_dir / "chelsea.jpg").read_bytes()[:300])
    return folder


def random_copy(bundle: Path, folder: Path) -> Path:
    """The tiny bundle, flagged as random weights (what every bundle here really is)."""
    shutil.copytree(bundle, folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["model"]["source"]["random_weights"] = True
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def classify(*args: object) -> int:
    return main(["classify", *map(str, args), *PINNED])


def make_runs(bundle: Path, photo_dir: Path, tmp: Path) -> Runs:
    card = make_card(photo_dir, tmp / "card")
    randomised = random_copy(bundle, tmp / "random-bundle")
    runs = Runs(card, tmp / "out" / "predictions.json", tmp / "out" / "predictions.csv", tmp / "out" / "p.jsonl",
                tmp / "out" / "with species.json", randomised)
    assert classify(randomised, card, "--labels", LABELS, "--out", runs.md, "--relative-paths") == 1
    assert classify(bundle, card, "--labels", LABELS, "--out", runs.csv) == 1
    assert classify(randomised, card, "--labels", LABELS, "--out", runs.jsonl) == 1
    md_in = tmp / "md.json"
    md_in.write_text(json.dumps(detector_output()), encoding="utf-8")
    assert classify(randomised, card, "--detections", md_in, "--labels", LABELS, "--out", runs.detections) == 1
    return runs


def detector_output() -> dict:
    """A MegaDetector file for the card: two boxes on the cat, one on the odd name, a failure, a blank."""
    return {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {"file": "chelsea.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.2, 0.5, 0.6]},
                                                   {"category": "2", "conf": 0.8, "bbox": [0.6, 0.5, 0.35, 0.4]}]},
            {"file": ODD_NAME, "detections": [{"category": "1", "conf": 0.7, "bbox": [0.25, 0.25, 0.5, 0.5]}]},
            {"file": "coffee.jpg", "detections": []},
            {"file": "gone.jpg", "failure": "Failure image access", "detections": None},
        ],
    }


def make_video(path: Path, frames: int = 12, size: tuple[int, int] = (96, 64)) -> Path:
    """A short MPEG-4 clip made with PyAV's own encoder (each frame a different grey)."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            pixels = np.full((size[1], size[0], 3), 20 * i % 255, dtype=np.uint8)
            pixels[:, : size[0] // 2, 0] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def video_detector_output(name: str) -> dict:
    """MegaDetector's own output on a video (its video convention): boxes carrying ``frame_number``,
    no classifications; and a video it could not read."""
    def det(frame: int, conf: float, bbox: list[float]) -> dict:
        return {"category": "1", "conf": conf, "bbox": bbox, "frame_number": frame}

    return {
        "info": {"format_version": "1.5", "detector": "md_v5a.0.0.pt"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {"file": name, "frame_rate": 6.0, "frames_processed": [0, 6, 11],
             "detections": [det(0, 0.9, [0.1, 0.1, 0.3, 0.4]), det(6, 0.8, [0.5, 0.2, 0.3, 0.4]),
                            det(6, 0.3, [0.0, 0.5, 0.2, 0.2]), det(11, 0.7, [0.6, 0.6, 0.3, 0.3])]},
            {"file": "broken.avi", "failure": "Failure reading video", "frame_rate": -1, "frames_processed": [],
             "detections": None},
        ],
    }


class Refs(HTMLParser):
    """Every ``src`` and ``href`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "src":
                self.srcs.append(value)
            elif key == "href":
                self.hrefs.append(value)


def refs(page: Path) -> Refs:
    parser = Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def target(page: Path, link: str) -> Path:
    """The file a relative link of ``page`` points to."""
    return (page.parent / unquote(link)).resolve()

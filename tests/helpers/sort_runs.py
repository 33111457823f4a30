"""Real classify outputs for the sort tests (``make_sort_runs``): a camera card of held-out photos of the trained
tiny model, the sample photos, one photo under the same name in two folders (a clash), a name with spaces,
accents and a ``#``, a video encoded with PyAV, and a broken JPEG; classified with relative paths in every
format (so a test can sort its own copy of the card with ``--image-root``), and once with ``--detections``."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.cli import main
from tests.helpers.evaluation_runs import PINNED, detector_file, taxonomy_csv
from tests.helpers.trained_tiny import held_out, zero_shot_labels
from tests.helpers.video_factory import write_video

ODD_NAME = "Kenya 2024/léopard café #1.jpg"
CLASH = "IMG_0001.JPG"  # the same photo in cam1/ and cam2/: the same label, the same name


@dataclass(frozen=True)
class SortRuns:
    card: Path  # the photos classify read (never changed: tests sort copies of it)
    outputs: dict[str, Path]  # format -> output with paths relative to the card
    detections: Path  # a --detections run (relative to the card), half the images without a box
    detector: Path  # the MegaDetector file it was made from (boxes, no classifications)
    matrix: Path  # the taxonomy label matrix (genus of each label)
    labels_txt: Path
    genus: dict[str, str]  # label -> genus


def make_card(folder: Path, photo_dir: Path) -> Path:
    crops, _ = held_out(16)
    for i, crop in enumerate(crops):
        (folder / "cam1").mkdir(parents=True, exist_ok=True)
        crop.save(folder / "cam1" / f"{i:03d}.png")
    (folder / "cam2").mkdir()
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        shutil.copy(photo_dir / f"{name}.jpg", folder / "cam2" / f"{name}.jpg")
    shutil.copy(photo_dir / "chelsea.jpg", folder / "cam1" / CLASH)
    shutil.copy(photo_dir / "chelsea.jpg", folder / "cam2" / CLASH)
    (folder / ODD_NAME).parent.mkdir()
    shutil.copy(photo_dir / "colorwheel.jpg", folder / ODD_NAME)
    write_video(folder / "cam3" / "clip.mp4", photo_dir / "astronaut.jpg", seconds=1.0, fps=4)
    (folder / "broken.jpg").write_bytes((photo_dir / "coffee.jpg").read_bytes()[:300])
    return folder


def classify(*args: object, expect: int = 1) -> None:
    assert main(["classify", *map(str, args), *PINNED]) == expect  # 1: the broken JPEG failed


def make_sort_runs(bundle: Path, photo_dir: Path, tmp: Path) -> SortRuns:
    card = make_card(tmp / "card", photo_dir)
    labels_txt = tmp / "labels.txt"
    labels_txt.write_text("\n".join(zero_shot_labels()) + "\n", encoding="utf-8")
    genus = taxonomy_csv(tmp / "taxonomy.csv")
    matrix = tmp / "taxonomy.npz"
    assert main(["labels", "build", str(bundle), "--from", str(tmp / "taxonomy.csv"), "--out", str(matrix)]) == 0
    out = tmp / "out"
    outputs = {"megadetector": out / "p.json", "csv": out / "p.csv", "jsonl": out / "p.jsonl", "parquet": out / "p.parquet"}
    for fmt, path in outputs.items():
        labels = matrix if fmt in ("megadetector", "csv") else labels_txt  # the matrix: taxonomy for --rank
        classify(bundle, card, "--labels", labels, "--out", path, "--relative-paths")
    stills = {str(p.resolve()): "" for p in card.rglob("*") if p.suffix.lower() in (".png", ".jpg") and p.name != "broken.jpg"}
    detector = tmp / "md.json"
    detector_file(stills, card, detector)
    detections = out / "boxes.json"
    classify(bundle, card, "--detections", detector, "--labels", labels_txt, "--out", detections, expect=0)
    return SortRuns(card, outputs, detections, detector, matrix, labels_txt, genus)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` (relative path) -> (SHA-256, mtime in ns): what a round trip must keep."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def hashes(folder: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """The sorted SHA-256s of every file under ``folder`` (links followed), leaving out names in ``skip``."""
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.name not in skip)


def copy_card(card: Path, where: Path) -> Path:
    shutil.copytree(card, where, copy_function=shutil.copy2)
    return where


def files_under(folder: Path) -> list[str]:
    return sorted(os.path.relpath(p, folder) for p in folder.rglob("*") if p.is_file() or p.is_symlink())

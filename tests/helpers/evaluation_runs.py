"""Real classify outputs on real images for the evaluation tests (``make_eval_runs``): held-out crops of the trained tiny
model's photos as a folder-per-label truth tree, classified with its zero-shot labels (whole images in
CSV and MegaDetector, a taxonomy label matrix, and a --detections run)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from bioclip_edge.cli import main
from tests.helpers.trained_tiny import held_out, subjects, zero_shot_labels

PINNED = ["--precision", "fp32", "--backend", "onnxruntime", "--batch-size", "8", "--threads", "0", "--no-progress", "--top-k", "5"]
RELABELLED = ("the moon", "a photo of a zebra")  # the moon's crops are filed under a label the model does not have
GENUS = {"an astronaut": "Homo", "a man with a camera": "Homo", "a cat": "Felis", "galaxies in deep space": "Cosmos",
         "the moon": "Cosmos", "a rocket": "Cosmos", "grass": "Terra", "gravel": "Terra", "a brick wall": "Terra"}


@dataclass(frozen=True)
class EvalRuns:
    truth: Path  # truth/<label>/<n>.png, a broken PNG, and one unlabelled image at the top
    labels: dict[str, str]  # absolute path -> the truth folder's name
    csv: Path  # whole images, --relative-paths (matched by their tails)
    md: Path  # whole images, absolute paths, the taxonomy matrix: category descriptions
    parquet: Path  # whole images, absolute paths, the label texts
    matrix: Path
    detections: Path  # --detections, boxes on half the images, the rest blank
    genus: dict[str, str]  # label text -> genus (the taxonomy matrix's)


def folder_name(label: str, i: int) -> str:
    """Some folders in other letter cases: truth labels match the model's case-insensitively."""
    if label == f"a photo of {RELABELLED[0]}":
        return RELABELLED[1]
    return label.upper() if i % 3 == 0 else label


def write_truth(root: Path, n: int) -> dict[str, str]:
    crops, truth = held_out(n)
    names = zero_shot_labels()
    labels = {}
    for i, (crop, t) in enumerate(zip(crops, truth)):
        folder = root / folder_name(names[int(t)], int(t))
        folder.mkdir(parents=True, exist_ok=True)
        crop.save(folder / f"{i:03d}.png")
        labels[str((folder / f"{i:03d}.png").resolve())] = folder.name
    (root / folder_name(names[1], 1) / "broken.png").write_bytes(b"\x89PNG not really")
    crops[0].save(root / "unlabelled.png")  # classified, but has no truth label
    return labels


def taxonomy_csv(path: Path) -> dict[str, str]:
    genus = {}
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["name", "kingdom", "phylum", "class", "order", "family", "genus", "species", "common_name"])
        for i, subject in enumerate(subjects()):
            g = GENUS.get(subject, f"Genus{i}")
            genus[f"a photo of {subject}"] = g
            out.writerow([f"a photo of {subject}", "Objecta", "Visibilia", "Res", f"Order{g}", f"Family{g}", g, f"species{i}",
                          subject])
    return genus


def detector_file(labels: dict[str, str], root: Path, path: Path) -> None:
    """Every other image a box (one of them too faint for --detection-threshold 0.5); the rest none."""
    images = []
    for i, full in enumerate(sorted(labels)):
        rel = Path(full).relative_to(root.resolve()).as_posix()
        dets = [] if i % 2 else [{"category": "1", "conf": 0.3 if i % 4 == 2 else 0.9, "bbox": [0.0, 0.0, 1.0, 1.0]},
                                 {"category": "1", "conf": 0.25, "bbox": [0.2, 0.2, 0.5, 0.5]}]
        images.append({"file": rel, "max_detection_conf": max((d["conf"] for d in dets), default=0.0), "detections": dets})
    path.write_text(json.dumps({"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
                                "detection_categories": {"1": "animal"}, "images": images}), encoding="utf-8")


def classify(*args: object) -> None:
    assert main(["classify", *map(str, args), *PINNED]) == 1  # 1: the broken PNG failed


def make_eval_runs(trained_fp32_bundle: Path, tmp: Path) -> EvalRuns:
    truth = tmp / "truth"
    labels = write_truth(truth, 48)
    (tmp / "labels.txt").write_text("\n".join(zero_shot_labels()) + "\n", encoding="utf-8")
    genus = taxonomy_csv(tmp / "taxonomy.csv")
    matrix = tmp / "taxonomy.npz"
    assert main(["labels", "build", str(trained_fp32_bundle), "--from", str(tmp / "taxonomy.csv"), "--out", str(matrix)]) == 0
    out = tmp / "out"
    runs = EvalRuns(truth, labels, out / "p.csv", out / "p.json", out / "p.parquet", matrix, out / "boxes.json", genus)
    classify(trained_fp32_bundle, truth, "--labels", tmp / "labels.txt", "--out", runs.csv, "--relative-paths")
    classify(trained_fp32_bundle, truth, "--labels", matrix, "--out", runs.md)
    classify(trained_fp32_bundle, truth, "--labels", tmp / "labels.txt", "--out", runs.parquet)
    detector_file(labels, truth, tmp / "md.json")
    assert main(["classify", str(trained_fp32_bundle), str(truth), "--detections", str(tmp / "md.json"), "--labels",
                 str(tmp / "labels.txt"), "--out", str(runs.detections), *PINNED]) == 0
    return runs

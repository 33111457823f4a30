"""Every kind of MegaDetector file ``classify`` writes, end to end, through MegaDetector's own
validator: whole-image runs, runs with unreadable images, ``--detections`` runs (with
MegaDetector's own failures and images gone missing), random-weight bundles, and taxonomy
label matrices (descriptions, and the threshold Timelapse reads)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioclip_edge.cli import main
from bioclip_edge.runtime.jobs.writers import typical_classification_threshold
from tests.helpers.md_validation import assert_md_valid
from tests.runtime.labels.test_import import write_official

LABELS = "lion,leopard,coffee cup,empty savanna"


@pytest.fixture()
def card(photo_dir, tmp_path) -> Path:
    """The sample photos plus two files no decoder reads."""
    folder = tmp_path / "card"
    shutil.copytree(photo_dir, folder)
    (folder / "truncated.jpg").write_bytes((photo_dir / "chelsea.jpg").read_bytes()[:300])
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def classify(*args: str) -> int:
    return main(["classify", *map(str, args), "--no-progress"])


def test_whole_image_run_with_failures(tiny_bundle, card, tmp_path):
    out = tmp_path / "predictions.json"
    assert classify(tiny_bundle, card, "--labels", LABELS, "--out", out, "--relative-paths") == 1
    doc = assert_md_valid(out)
    failed = {im["file"]: im for im in doc["images"] if "failure" in im}
    assert set(failed) == {"truncated.jpg", "empty.jpg"}
    assert all(im["detections"] is None and im["failure"] for im in failed.values())
    assert doc["info"]["format_version"] == "1.6"
    assert doc["classification_category_descriptions"] == doc["classification_categories"]
    assert set(doc["classification_categories"].values()) == set(LABELS.split(","))
    assert doc["info"]["classifier_metadata"]["typical_classification_threshold"] == typical_classification_threshold(4)


def test_detections_run(tiny_bundle, photo_dir, tmp_path):
    md = {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt",
                 "detector_metadata": {"typical_detection_threshold": 0.2}},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {"file": "chelsea.jpg", "detections": [
                {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.6]},
                {"category": "2", "conf": 0.8, "bbox": [0.5, 0.5, 0.4, 0.4]}]},
            {"file": "coffee.jpg", "detections": []},
            {"file": "gone.jpg", "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1]}]},
            {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        ],
    }
    md_path = tmp_path / "md.json"
    md_path.write_text(json.dumps(md), encoding="utf-8")
    out = tmp_path / "with_species.json"
    assert classify(tiny_bundle, photo_dir, "--detections", md_path, "--out", out, "--labels", LABELS) == 1
    doc = assert_md_valid(out)
    images = {im["file"]: im for im in doc["images"]}
    assert doc["info"]["format_version"] == "1.6" and doc["info"]["detector"] == "md_v5a.0.0.pt"
    assert "classifications" in images["chelsea.jpg"]["detections"][0]
    assert images["broken.jpg"]["detections"] is None and "classification_failure" in images["gone.jpg"]


def test_random_weights_run(random_flagged_bundle, photo_dir, tmp_path):
    fake = random_flagged_bundle
    out = tmp_path / "p.json"
    assert classify(fake, photo_dir, "--labels", LABELS, "--out", out) == 0
    doc = assert_md_valid(out)
    meta = doc["info"]["classifier_metadata"]
    assert "RANDOM WEIGHTS" in meta["warning"] and meta["random_weights"] is True
    assert doc["info"]["format_version"] == "1.6" and meta["typical_classification_threshold"] == 0.5


def test_taxonomy_matrix_run(tiny_bundle, photo_dir, tmp_path):
    npy, names, _ = write_official(tmp_path, 32, 40, zero_tail=0)
    labels = tmp_path / "tol-labels"  # no suffix: recognised by content
    assert main(["labels", "import", str(tiny_bundle), str(npy), str(names), "--out", str(labels)]) == 0
    out = tmp_path / "p.json"
    assert classify(tiny_bundle, photo_dir, "--labels", labels, "--out", out, "--top-k", "3") == 0
    doc = assert_md_valid(out)
    descriptions = doc["classification_category_descriptions"]
    assert set(descriptions) == set(doc["classification_categories"]) and len(descriptions) == 40
    assert descriptions["0"] == "mammalia;carnivora;felidae;panthera;leo"
    assert descriptions["3"] == "magnoliopsida;fagales;fagaceae;quercus;robur"
    assert all(d == d.lower() and d.count(";") == 4 for d in descriptions.values())
    assert doc["info"]["classifier_metadata"]["typical_classification_threshold"] == 0.125  # 5 / 40 labels

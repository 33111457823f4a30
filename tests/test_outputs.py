"""Output files: MegaDetector batch format checked against the format's documented fields
(https://lila.science/megadetector-output-format and MegaDetector's validate_batch_results.py),
CSV and JSON Lines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.outputs import csv_text, format_for, jsonl_text, megadetector_document, write_results

# The format, as documented (field lists written from the spec, not from our writer):
MD_REQUIRED_TOP = {"info", "images", "detection_categories"}
MD_OPTIONAL_TOP = {"classification_categories", "classification_category_descriptions"}
MD_INFO_REQUIRED = {"format_version"}
MD_INFO_TYPICAL = {"detector", "detection_completion_time", "classifier", "classification_completion_time",
                   "detector_metadata", "classifier_metadata", "summary_report"}
MD_IMAGE_FIELDS = {"file", "detections", "failure"}  # plus video fields (frame_rate, frames_processed)
MD_DETECTION_FIELDS = {"category", "conf", "bbox", "classifications"}  # plus frame_number for videos

LABELS = ["lion", "leopard", "spotted hyena", "empty"]
META = {"model": "hf-hub:imageomics/bioclip", "variant": "vision.fp32", "top_k": 2, "random_weights": False}


def validate_md(doc: dict, allowed_image_extras: set[str] = frozenset()) -> None:
    """MegaDetector's validator rules plus the spec's field lists; raises AssertionError."""
    assert MD_REQUIRED_TOP <= set(doc), set(doc)
    assert set(doc) <= MD_REQUIRED_TOP | MD_OPTIONAL_TOP, f"non-standard top-level keys {set(doc) - MD_REQUIRED_TOP - MD_OPTIONAL_TOP}"
    info = doc["info"]
    assert MD_INFO_REQUIRED <= set(info)
    assert isinstance(info["format_version"], str) and float(info["format_version"]) >= 1.4
    for key, name in doc["detection_categories"].items():
        assert isinstance(key, str) and int(key) >= 0 and isinstance(name, str) and name
    for key, name in doc.get("classification_categories", {}).items():
        assert isinstance(key, str) and int(key) >= 0 and isinstance(name, str) and name
    if "classification_category_descriptions" in doc:
        assert set(doc["classification_category_descriptions"]) == set(doc["classification_categories"])
    assert isinstance(doc["images"], list)
    for im in doc["images"]:
        assert isinstance(im["file"], str) and im["file"]
        assert set(im) <= MD_IMAGE_FIELDS | allowed_image_extras, set(im) - MD_IMAGE_FIELDS
        if im.get("failure") is not None:
            assert isinstance(im["failure"], str) and im["detections"] is None
            continue
        assert isinstance(im["detections"], list)
        for det in im["detections"]:
            assert set(det) <= MD_DETECTION_FIELDS and {"category", "conf", "bbox"} <= set(det)
            assert det["category"] in doc["detection_categories"]
            assert isinstance(det["conf"], float) and 0.0 <= det["conf"] <= 1.0
            assert len(det["bbox"]) == 4 and all(0.0 <= v <= 1.0 for v in det["bbox"])
            x, y, w, h = det["bbox"]
            assert x + w <= 1.0 + 1e-9 and y + h <= 1.0 + 1e-9
            scores = []
            for cid, score in det.get("classifications") or []:
                assert isinstance(cid, str) and cid in doc["classification_categories"]
                assert isinstance(score, float)
                scores.append(score)
            assert scores == sorted(scores, reverse=True), "classifications must be in descending order"


def records():
    return [
        {"filepath": "cam1/IMG_0001.JPG", "predictions": [{"label": "leopard", "score": 0.71234567, "index": 1},
                                                          {"label": "lion", "score": 0.2, "index": 0}],
         "failures": [], "datetime": "2024:03:17 05:42:09", "make": "Reconyx", "model": "HyperFire 2", "width": 1920, "height": 1080},
        {"filepath": "cam1/IMG_0002.JPG", "predictions": [], "failures": ["truncated or corrupt image data"]},
        {"filepath": "cam1/ñandú 3.jpg", "predictions": [{"label": "empty", "score": 0.9, "index": 3},
                                                         {"label": "lion", "score": 0.05, "index": 0}], "failures": []},
    ]


def test_whole_image_megadetector_document_is_valid():
    doc = megadetector_document(records(), META, LABELS)
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    first, failed, odd = doc["images"]
    assert first["detections"] == [{"category": "1", "conf": 1.0, "bbox": [0.0, 0.0, 1.0, 1.0],
                                     "classifications": [["1", 0.7123], ["0", 0.2]]}]
    assert first["datetime"] == "2024:03:17 05:42:09" and first["make"] == "Reconyx"
    assert failed == {"file": "cam1/IMG_0002.JPG", "failure": "truncated or corrupt image data", "detections": None}
    assert odd["file"] == "cam1/ñandú 3.jpg"
    assert doc["detection_categories"] == {"1": "animal"}
    assert doc["classification_categories"] == {str(i): n for i, n in enumerate(LABELS)}
    assert doc["info"]["format_version"] == "1.4" and doc["info"]["classifier_metadata"]["whole_image"] is True


def test_megadetector_file_written_atomically_and_readable(tmp_path):
    path = write_results(tmp_path / "sub" / "p.json", records(), "megadetector", META, LABELS)
    doc = json.loads(path.read_text(encoding="utf-8"))
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert not list(path.parent.glob(".*.tmp"))


def test_taxonomy_descriptions_and_big_label_sets():
    descriptions = ["animalia;chordata;mammalia;carnivora;felidae;panthera;leo"] * 4
    doc = megadetector_document(records(), META, LABELS, descriptions=descriptions)
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    big = [f"taxon {i}" for i in range(30_000)]
    doc = megadetector_document(records(), META, big)
    assert set(doc["classification_categories"]) == {"0", "1", "3"}  # only what was predicted


def test_csv_rows_and_header():
    rows = list(csv.DictReader(io.StringIO(csv_text(records(), META))))
    assert list(rows[0]) == ["filepath", "label_1", "score_1", "label_2", "score_2", "datetime", "make", "model", "width", "height", "failure"]
    assert rows[0]["label_1"] == "leopard" and float(rows[0]["score_1"]) == pytest.approx(0.712346)
    assert rows[1]["failure"] == "truncated or corrupt image data" and rows[1]["label_1"] == ""
    assert rows[2]["filepath"] == "cam1/ñandú 3.jpg"


def test_jsonl_round_trips_and_random_warning():
    lines = jsonl_text(records(), {**META, "random_weights": True}).splitlines()
    back = [json.loads(line) for line in lines]
    assert [b["filepath"] for b in back] == [r["filepath"] for r in records()]
    assert all("RANDOM WEIGHTS" in b["warning"] for b in back)
    rows = list(csv.DictReader(io.StringIO(csv_text(records(), {**META, "random_weights": True}))))
    assert all("RANDOM WEIGHTS" in r["warning"] for r in rows)


def test_detections_document_keeps_input_and_replaces_old_classifications():
    md = {"info": {"format_version": "1.3", "detector": "md_v5a.0.0.pt"},
          "detection_categories": {"1": "animal", "2": "person"},
          "classification_categories": {"0": "old"},
          "images": []}
    recs = [{"filepath": "a.jpg", "detections": [
                {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "classifications": [["0", 1.0]],
                 "predictions": [{"label": "lion", "score": 0.6, "index": 0}]},
                {"category": "2", "conf": 0.4, "bbox": [0.5, 0.5, 0.2, 0.2], "classifications": [["0", 1.0]]}],
             "failures": [], "extra": {"max_detection_conf": 0.9}}]
    doc = megadetector_document(recs, META, LABELS, detections=md)
    validate_md(doc, allowed_image_extras={"max_detection_conf"})
    dets = doc["images"][0]["detections"]
    assert dets[0]["classifications"] == [["0", 0.6]] and "classifications" not in dets[1]
    assert doc["info"]["detector"] == "md_v5a.0.0.pt" and doc["info"]["format_version"] == "1.4"


def test_format_from_suffix():
    assert format_for("x.csv", None) == "csv" and format_for("x.jsonl", None) == "jsonl"
    assert format_for("x.json", None) == "megadetector" and format_for("x.json", "csv") == "csv"


def test_cli_megadetector_output_is_valid(tiny_bundle, photo_dir, tmp_path):
    out = tmp_path / "predictions.json"
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "lion,leopard,coffee",
                     "--out", str(out), "--relative-paths", "--top-k", "2"]) == 0
    doc = json.loads(out.read_text())
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert sorted(im["file"] for im in doc["images"]) == sorted(p.name for p in Path(photo_dir).iterdir())
    assert all(len(im["detections"][0]["classifications"]) == 2 for im in doc["images"])

"""Output files: MegaDetector batch format checked by MegaDetector's own validator
(validate_batch_results, via md_validation) and against the format's documented fields
(https://lila.science/megadetector-output-format), CSV and JSON Lines; then every kind of
MegaDetector file ``classify`` writes, end to end: whole-image runs with unreadable images,
``--detections`` runs (with MegaDetector's own failures and images gone missing), random-weight
bundles, and taxonomy label matrices (descriptions, and the threshold Timelapse reads)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.jobs.writers import (MD_FORMAT_VERSION, csv_text, format_for, jsonl_text, megadetector_document,
                                               typical_classification_threshold, write_results)
from tests.helpers.md_validation import assert_md_valid, md_problems
from tests.helpers.labels import write_official

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
    """MegaDetector's validator, then the spec's field lists and ordering; raises AssertionError."""
    assert_md_valid(doc)
    assert MD_REQUIRED_TOP <= set(doc), set(doc)
    assert set(doc) <= MD_REQUIRED_TOP | MD_OPTIONAL_TOP, f"non-standard top-level keys {set(doc) - MD_REQUIRED_TOP - MD_OPTIONAL_TOP}"
    info = doc["info"]
    assert MD_INFO_REQUIRED <= set(info)
    assert isinstance(info["format_version"], str) and float(info["format_version"]) >= 1.6
    for key, name in doc["detection_categories"].items():
        assert isinstance(key, str) and int(key) >= 0 and isinstance(name, str) and name
    for key, name in doc.get("classification_categories", {}).items():
        assert isinstance(key, str) and int(key) >= 0 and isinstance(name, str) and name
    assert set(doc["classification_category_descriptions"]) == set(doc["classification_categories"])
    assert 0.0 < info["classifier_metadata"]["typical_classification_threshold"] <= 0.5
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
        {"kind": "image", "filepath": "cam1/IMG_0001.JPG", "predictions": [{"label": "leopard", "score": 0.71234567, "index": 1},
                                                                           {"label": "lion", "score": 0.2, "index": 0}],
         "failures": [], "datetime": "2024:03:17 05:42:09", "make": "Reconyx", "model": "HyperFire 2", "width": 1920, "height": 1080},
        {"kind": "failure", "filepath": "cam1/IMG_0002.JPG", "predictions": [], "failures": ["truncated or corrupt image data"]},
        {"kind": "image", "filepath": "cam1/ñandú 3.jpg", "predictions": [{"label": "empty", "score": 0.9, "index": 3},
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
    assert doc["info"]["format_version"] == "1.6" and doc["info"]["classifier_metadata"]["whole_image"] is True
    assert doc["classification_category_descriptions"] == doc["classification_categories"]  # text labels: their text
    assert doc["info"]["classifier_metadata"]["typical_classification_threshold"] == 0.5  # 4 labels


def test_megadetector_file_written_atomically_and_readable(tmp_path):
    path = write_results(tmp_path / "sub" / "p.json", records(), "megadetector", META, LABELS)
    doc = json.loads(path.read_text(encoding="utf-8"))
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert not list(path.parent.glob(".*.tmp"))


def test_taxonomy_descriptions_and_big_label_sets():
    descriptions = ["mammalia;carnivora;felidae;panthera;leo", "mammalia;carnivora;felidae;panthera;pardus",
                    "mammalia;carnivora;hyaenidae;crocuta;crocuta", "empty"]
    doc = megadetector_document(records(), META, LABELS, descriptions=descriptions)
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert doc["classification_category_descriptions"]["1"] == "mammalia;carnivora;felidae;panthera;pardus"
    big = [f"taxon {i}" for i in range(30_000)]
    doc = megadetector_document(records(), META, big)
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert set(doc["classification_categories"]) == {"0", "1", "3"}  # only what was predicted
    assert doc["classification_category_descriptions"] == {"0": "taxon 0", "1": "taxon 1", "3": "taxon 3"}
    assert doc["info"]["classifier_metadata"]["typical_classification_threshold"] == 0.075


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
    assert not any("kind" in b for b in back)  # the kind is never written (runtime.jobs.records.stored)
    assert all("RANDOM WEIGHTS" in b["warning"] for b in back)
    rows = list(csv.DictReader(io.StringIO(csv_text(records(), {**META, "random_weights": True}))))
    assert all("RANDOM WEIGHTS" in r["warning"] for r in rows)


def test_detections_document_keeps_input_and_replaces_old_classifications():
    md = {"info": {"format_version": "1.3", "detector": "md_v5a.0.0.pt"},
          "detection_categories": {"1": "animal", "2": "person"},
          "classification_categories": {"0": "old"},
          "images": []}
    recs = [{"kind": "boxes", "filepath": "a.jpg", "detections": [
                {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "classifications": [["0", 1.0]],
                 "predictions": [{"label": "lion", "score": 0.6, "index": 0}]},
                {"category": "2", "conf": 0.4, "bbox": [0.5, 0.5, 0.2, 0.2], "classifications": [["0", 1.0]]}],
             "failures": [], "extra": {"max_detection_conf": 0.9}}]
    doc = megadetector_document(recs, META, LABELS, detections=md)
    validate_md(doc, allowed_image_extras={"max_detection_conf"})
    dets = doc["images"][0]["detections"]
    assert dets[0]["classifications"] == [["0", 0.6]] and "classifications" not in dets[1]
    assert doc["info"]["detector"] == "md_v5a.0.0.pt" and doc["info"]["format_version"] == "1.6"


def test_format_from_suffix():
    assert format_for("x.csv", None) == "csv" and format_for("x.jsonl", None) == "jsonl"
    assert format_for("x.json", None) == "megadetector" and format_for("x.json", "csv") == "csv"


# --- MegaDetector 1.6 for its readers ------------------------------------------------------------
def _minimal_md(**changes) -> dict:
    doc = {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"},
           "classification_categories": {"0": "lion"}, "classification_category_descriptions": {"0": "lion"},
           "images": [{"file": "a.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0, 0, 1, 1],
                                                        "classifications": [["0", 0.8]]}]}]}
    doc.update(changes)
    return doc


@pytest.mark.parametrize("broken, why", [
    ({"info": {"format_version": 1.6}}, "format_version is not a string"),
    ({"classification_categories": {"0": " "}}, "blank"),
    ({"images": [{"file": "a.jpg", "failure": "unreadable", "detections": []}]}, "non-null detections"),
    ({"images": [{"file": "a.jpg", "detections": [{"category": "1", "conf": 1, "bbox": [0, 0, 1, 1]}]}]}, "illegal confidence"),
    ({"images": [{"file": "a.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0, 0, 1, 1],
                                                   "classifications": [["7", 0.5]]}]}]}, "not in the category list"),
    ({"extra_top_level": 1}, "non-standard key"),
])
def test_the_validator_really_rejects_malformed_documents(broken, why):
    assert md_problems(_minimal_md()) == []
    doc = _minimal_md(**broken)
    assert any(why in problem for problem in md_problems(doc)), md_problems(doc)
    with pytest.raises(AssertionError, match="validator rejects"):
        assert_md_valid(doc)


def test_detections_documents_of_any_input_version_validate():
    old = {"info": {"format_version": 1.3, "detector": "md_v4.1.0.pb"},  # an old file: version as a float
           "detection_categories": {"1": "animal", "2": "person"},
           "classification_categories": {"0": "old"}, "classification_category_descriptions": {"0": "old;tax"},
           "images": []}
    recs = [
        {"kind": "boxes", "filepath": "a.jpg", "failures": [], "detections": [
            {"category": "1", "conf": 1, "bbox": [0.1, 0.1, 0.2, 0.2], "classifications": [["0", 1.0]],
             "predictions": [{"label": "lion", "score": 0.6, "index": 0}, {"label": "empty", "score": 0.3, "index": 3}]}]},
        {"kind": "boxes", "filepath": "gone.jpg", "failures": ["file not found"], "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1]}]},
        {"kind": "boxes", "filepath": "broken.jpg", "failures": ["megadetector: Failure image access"], "detections": None,
         "md_failure": "Failure image access"},
    ]
    doc = megadetector_document(recs, META, LABELS, detections=old)
    validate_md(doc, allowed_image_extras={"classification_failure"})
    assert doc["info"]["format_version"] == MD_FORMAT_VERSION == "1.6"
    assert doc["classification_category_descriptions"] == {str(i): name for i, name in enumerate(LABELS)}
    assert doc["images"][0]["detections"][0]["conf"] == 1.0
    assert doc["images"][2] == {"file": "broken.jpg", "failure": "Failure image access", "detections": None}
    newer = megadetector_document(recs, META, LABELS, detections={**old, "info": {"format_version": "1.7"}})
    assert newer["info"]["format_version"] == "1.7"  # never downgraded


def test_random_weights_document_validates_and_says_so():
    doc = megadetector_document(records(), {**META, "random_weights": True}, LABELS)
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert "RANDOM WEIGHTS" in doc["info"]["classifier_metadata"]["warning"]


def test_blank_label_names_get_their_row():
    doc = megadetector_document(records(), META, ["lion", " ", "hyena", "empty"])
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert doc["classification_categories"]["1"] == "label 1"


@pytest.mark.parametrize("n, expected", [(2, 0.5), (10, 0.5), (20, 0.25), (50, 0.1), (100, 0.075), (867_000, 0.075)])
def test_typical_threshold_fits_softmax_over_the_label_count(n, expected):
    threshold = typical_classification_threshold(n)
    assert threshold == expected
    timelapse_keeps_from = max(0.03, threshold / 2.5)  # Timelapse drops classifications below this
    assert timelapse_keeps_from <= max(0.03, 2.0 / n) + 1e-9  # so a label at twice the uniform share survives
    assert threshold <= 0.5  # never stricter than Timelapse's own default


def test_importing_the_validator_leaves_pillow_strict():
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # md_validation undoes MegaDetector's global switch


# --- every kind of MegaDetector file classify writes, end to end ----------------------------------
LABEL_TEXT = "lion,leopard,coffee cup,empty savanna"


@pytest.fixture()
def card(photo_dir, tmp_path) -> Path:
    """The sample photos plus two files no decoder reads."""
    folder = tmp_path / "card"
    shutil.copytree(photo_dir, folder)
    (folder / "truncated.jpg").write_bytes((photo_dir / "chelsea.jpg").read_bytes()[:300])
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def classify(*args: str) -> int:
    return cli_main(["classify", *map(str, args), "--no-progress"])


def test_whole_image_run_with_failures(tiny_bundle, card, tmp_path):
    out = tmp_path / "predictions.json"
    assert classify(tiny_bundle, card, "--labels", LABEL_TEXT, "--out", out, "--relative-paths", "--top-k", "2") == 1
    doc = json.loads(out.read_text())
    validate_md(doc, allowed_image_extras={"datetime", "make", "model"})
    assert sorted(im["file"] for im in doc["images"]) == sorted(p.name for p in card.iterdir())
    failed = {im["file"]: im for im in doc["images"] if "failure" in im}
    assert set(failed) == {"truncated.jpg", "empty.jpg"}
    assert all(im["detections"] is None and im["failure"] for im in failed.values())
    assert all(len(im["detections"][0]["classifications"]) == 2 for im in doc["images"] if im["file"] not in failed)
    assert doc["info"]["format_version"] == "1.6"
    assert doc["classification_category_descriptions"] == doc["classification_categories"]
    assert set(doc["classification_categories"].values()) == set(LABEL_TEXT.split(","))
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
    assert classify(tiny_bundle, photo_dir, "--detections", md_path, "--out", out, "--labels", LABEL_TEXT) == 1
    doc = assert_md_valid(out)
    images = {im["file"]: im for im in doc["images"]}
    assert doc["info"]["format_version"] == "1.6" and doc["info"]["detector"] == "md_v5a.0.0.pt"
    assert "classifications" in images["chelsea.jpg"]["detections"][0]
    assert images["broken.jpg"]["detections"] is None and "classification_failure" in images["gone.jpg"]


def test_random_weights_run(random_flagged_bundle, photo_dir, tmp_path):
    out = tmp_path / "p.json"
    assert classify(random_flagged_bundle, photo_dir, "--labels", LABEL_TEXT, "--out", out) == 0
    doc = assert_md_valid(out)
    meta = doc["info"]["classifier_metadata"]
    assert "RANDOM WEIGHTS" in meta["warning"] and meta["random_weights"] is True
    assert doc["info"]["format_version"] == "1.6" and meta["typical_classification_threshold"] == 0.5


def test_taxonomy_matrix_run(tiny_bundle, photo_dir, tmp_path):
    npy, names, _ = write_official(tmp_path, 32, 40, zero_tail=0)
    labels = tmp_path / "tol-labels"  # no suffix: recognised by content
    assert cli_main(["labels", "import", str(tiny_bundle), str(npy), str(names), "--out", str(labels)]) == 0
    out = tmp_path / "p.json"
    assert classify(tiny_bundle, photo_dir, "--labels", labels, "--out", out, "--top-k", "3") == 0
    doc = assert_md_valid(out)
    descriptions = doc["classification_category_descriptions"]
    assert set(descriptions) == set(doc["classification_categories"]) and len(descriptions) == 40
    assert descriptions["0"] == "mammalia;carnivora;felidae;panthera;leo"
    assert descriptions["3"] == "magnoliopsida;fagales;fagaceae;quercus;robur"
    assert all(d == d.lower() and d.count(";") == 4 for d in descriptions.values())
    assert doc["info"]["classifier_metadata"]["typical_classification_threshold"] == 0.125  # 5 / 40 labels

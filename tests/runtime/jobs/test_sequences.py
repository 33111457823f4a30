"""Bursts as sequences: ``--sequence-gap`` grouping by folder and camera (make, model,
serial) and capture time, COCO Camera Traps' fields in every format, the sequence's top-k, and
``--smooth``; computed over the whole run's records, so a resumed run groups as one run does.

The photos get known EXIF capture times (DateTimeOriginal, written with Pillow), including two
cameras whose bursts overlap in time in one folder, two bodies of one model told apart by serial,
and an image without a capture time."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from bioclip_edge.cli import main
from bioclip_edge.runtime.jobs.rollup import mean_topk
from bioclip_edge.runtime.jobs.sequences import SequenceOptions, apply_sequences, group_sequences
from tests.helpers.md_validation import assert_md_valid

LABELS = "cat,coffee cup,rocket,astronaut"
RECONYX, BUSHNELL = ("RECONYX", "HF2X"), ("Bushnell", "Core DS")
# name -> (photo, camera, serial, capture time or None)
BURSTS = {
    "site/a1.jpg": ("chelsea", RECONYX, None, "2024:05:01 10:00:00"),
    "site/a2.jpg": ("chelsea", RECONYX, None, "2024:05:01 10:00:01"),
    "site/a3.jpg": ("coffee", RECONYX, None, "2024:05:01 10:00:03"),
    "site/b1.jpg": ("rocket", BUSHNELL, None, "2024:05:01 10:00:01"),  # overlaps camera A's burst
    "site/b2.jpg": ("rocket", BUSHNELL, None, "2024:05:01 10:00:02"),
    "site/a4.jpg": ("astronaut", RECONYX, None, "2024:05:01 10:05:00"),  # same camera, minutes later
    "site/notime.jpg": ("coffee", RECONYX, None, None),
    "site2/a1.jpg": ("chelsea", RECONYX, None, "2024:05:01 10:00:02"),  # another folder
    "pair/s1.jpg": ("chelsea", BUSHNELL, "SN-1", "2024:05:01 11:00:00"),
    "pair/s2.jpg": ("rocket", BUSHNELL, "SN-2", "2024:05:01 11:00:00"),  # same model, other body
    "pair/s3.jpg": ("chelsea", BUSHNELL, "SN-1", "2024:05:01 11:00:02"),
}
EXPECTED = [{"site/a1.jpg", "site/a2.jpg", "site/a3.jpg"}, {"site/b1.jpg", "site/b2.jpg"}, {"site/a4.jpg"},
            {"site/notime.jpg"}, {"site2/a1.jpg"}, {"pair/s1.jpg", "pair/s3.jpg"}, {"pair/s2.jpg"}]


def write_burst(root: Path, photo_dir: Path, names=BURSTS) -> Path:
    for name in names:
        photo, (make, model), serial, when = BURSTS[name]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = make, model
        if when:
            exif.get_ifd(0x8769)[0x9003] = when
        if serial:
            exif.get_ifd(0x8769)[0xA431] = serial
        Image.open(photo_dir / f"{photo}.jpg").convert("RGB").resize((96, 64)).save(path, exif=exif)
    return root


def classify(*args) -> int:
    return main(["classify", *map(str, args), "--no-progress"])


def groups_of(records: list[dict]) -> list[set[str]]:
    seqs: dict[str, set[str]] = {}
    for r in records:
        seqs.setdefault(r["seq_id"], set()).add(r["filepath"])
    return sorted(seqs.values(), key=lambda s: sorted(s))


# --- the grouping rule ------------------------------------------------------------------------------
def _record(name: str) -> dict:
    photo, (make, model), serial, when = BURSTS[name]
    record = {"kind": "image", "filepath": name, "predictions": [], "failures": [], "make": make, "model": model}
    if when:
        record["datetime"] = when
    if serial:
        record["serial"] = serial
    return record


def test_grouping_by_folder_camera_serial_and_gap():
    records = [_record(n) for n in BURSTS]
    groups = [{records[i]["filepath"] for i in g} for g in group_sequences(records, 5.0)]
    assert sorted(groups, key=sorted) == sorted(EXPECTED, key=sorted)
    tight = [{records[i]["filepath"] for i in g} for g in group_sequences(records, 1.5)]
    assert {"site/a1.jpg", "site/a2.jpg"} in tight and {"site/a3.jpg"} in tight  # 2 s > 1.5 s gap


def test_sequence_fields_and_order_do_not_depend_on_record_order():
    records = [_record(n) for n in BURSTS]
    one = {r["filepath"]: r for r in apply_sequences(records, SequenceOptions(5.0), 3)}
    two = {r["filepath"]: r for r in apply_sequences(records[::-1], SequenceOptions(5.0), 3)}
    assert one == two
    assert [one[n]["frame_num"] for n in ("site/a1.jpg", "site/a2.jpg", "site/a3.jpg")] == [0, 1, 2]
    assert one["site/a1.jpg"]["seq_num_frames"] == 3 and one["site/notime.jpg"]["seq_num_frames"] == 1
    assert one["site/a1.jpg"]["seq_id"] == one["site/a3.jpg"]["seq_id"] != one["site2/a1.jpg"]["seq_id"]


def test_mean_rule_counts_missing_labels_as_zero():
    frames = [[{"label": "cat", "score": 0.6, "index": 0}, {"label": "dog", "score": 0.3, "index": 1}],
              [{"label": "cat", "score": 0.5, "index": 0}, {"label": "fox", "score": 0.4, "index": 2}],
              []]  # a failed frame is left out
    top = mean_topk(frames, 2)
    assert [(p["label"], p["score"]) for p in top] == [("cat", 0.55), ("fox", 0.2)]


def test_smooth_needs_a_gap():
    with pytest.raises(Exception, match="--sequence-gap"):
        SequenceOptions(smooth=True)


# --- end to end -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def burst_card(photo_dir, tmp_path_factory) -> Path:
    return write_burst(tmp_path_factory.mktemp("bursts"), photo_dir)


def test_every_format_carries_coco_camera_traps_fields(tiny_bundle, burst_card, tmp_path):
    md, out_csv, out_jsonl = tmp_path / "s.json", tmp_path / "s.csv", tmp_path / "s.jsonl"
    for out in (md, out_csv, out_jsonl):
        assert classify(tiny_bundle, burst_card, "--labels", LABELS, "--out", out, "--relative-paths", "--sequence-gap", "5") == 0
    doc = assert_md_valid(md)
    assert groups_of([{"filepath": im["file"], **im} for im in doc["images"]]) == sorted(EXPECTED, key=sorted)
    entry = next(im for im in doc["images"] if im["file"] == "site/a2.jpg")
    assert (entry["seq_num_frames"], entry["frame_num"]) == (3, 1) and len(entry["seq_classifications"]) == 4
    assert doc["info"]["classifier_metadata"]["sequence_gap_seconds"] == 5.0
    rows = list(csv.DictReader(out_csv.open()))
    assert {"seq_id", "seq_num_frames", "frame_num", "seq_label_1", "seq_score_1"} <= set(rows[0])
    assert groups_of(rows) == sorted(EXPECTED, key=sorted)
    lines = [json.loads(line) for line in out_jsonl.read_text().splitlines()]
    assert groups_of(lines) == sorted(EXPECTED, key=sorted)
    burst = [r for r in lines if r["seq_id"] == next(r["seq_id"] for r in lines if r["filepath"] == "site/a1.jpg")]
    expected_top = mean_topk([r["predictions"] for r in burst], 4)
    assert burst[0]["seq_predictions"] == expected_top
    assert next(r for r in rows if r["filepath"] == "pair/s1.jpg")["serial"] == "SN-1"


def test_smooth_replaces_labels_and_keeps_the_images_own(tiny_bundle, burst_card, tmp_path):
    plain, smooth, md = tmp_path / "plain.jsonl", tmp_path / "smooth.jsonl", tmp_path / "smooth.json"
    assert classify(tiny_bundle, burst_card, "--labels", LABELS, "--out", plain, "--relative-paths", "--sequence-gap", "5") == 0
    assert classify(tiny_bundle, burst_card, "--labels", LABELS, "--out", smooth, "--relative-paths", "--sequence-gap", "5", "--smooth") == 0
    own = {r["filepath"]: r for r in map(json.loads, plain.read_text().splitlines())}
    for r in map(json.loads, smooth.read_text().splitlines()):
        assert r["predictions"] == r["seq_predictions"] and r["image_predictions"] == own[r["filepath"]]["predictions"]
    assert classify(tiny_bundle, burst_card, "--labels", LABELS, "--out", md, "--relative-paths", "--sequence-gap", "5", "--smooth") == 0
    doc = assert_md_valid(md)
    entry = next(im for im in doc["images"] if im["file"] == "site/a1.jpg")
    assert entry["detections"][0]["classifications"] == entry["seq_classifications"]
    assert entry["pre_smoothing_classifications"] and entry["pre_smoothing_description"] == own["site/a1.jpg"]["predictions"][0]["label"]


@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_resume_groups_as_one_run(tiny_bundle, photo_dir, tmp_path, fmt):
    """Half a burst first, the rest added with --resume: same sequences as one run over everything."""
    names = list(BURSTS)
    card = write_burst(tmp_path / "card", photo_dir, names[:4])
    out, whole = tmp_path / f"resumed.{fmt}", tmp_path / f"one.{fmt}"
    opts = ("--labels", LABELS, "--relative-paths", "--sequence-gap", "5", "--smooth")
    assert classify(tiny_bundle, card, "--out", out, *opts) == 0
    write_burst(card, photo_dir, names[4:])
    assert classify(tiny_bundle, card, "--out", out, "--resume", *opts) == 0
    assert classify(tiny_bundle, card, "--out", whole, *opts) == 0
    if fmt == "json":
        assert json.loads(out.read_text())["images"] == json.loads(whole.read_text())["images"]
    else:
        assert out.read_text() == whole.read_text()

"""The checkpoint is an append-only journal and outputs are written by streaming: a result is
appended (never a rewrite), a torn last line is dropped and cut off, and the streaming writers
write the same bytes as the whole-list renderers, whatever the records hold."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bioclip_edge.errors import CheckpointError
from bioclip_edge.runtime.jobs.checkpoint import Checkpoint, checkpoint_path
from bioclip_edge.runtime.jobs.records import failure_record, image_record, video_record
from bioclip_edge.runtime.jobs.runner import JobConfig, run_job
from bioclip_edge.runtime.jobs.sequences import SequenceOptions, apply_sequences
from bioclip_edge.runtime.jobs.stream_writers import scan, write_csv, write_jsonl, write_megadetector
from bioclip_edge.runtime.jobs.writers import csv_text, jsonl_text, megadetector_document
from tests.helpers.md_validation import assert_md_valid

FINGERPRINT = {"model": "tiny"}


def _image(i: int, **info):
    top = [{"label": f"label {(i * 3 + j) % 7}", "score": round(0.6 / (j + 1), 6), "index": (i * 3 + j) % 7} for j in range(2)]
    return image_record(f"cam{i % 2}/IMG_{i:04d}.JPG", info, top)


def test_results_are_appended_never_rewritten(tmp_path):
    out = tmp_path / "o.jsonl"
    journal = Checkpoint(out, FINGERPRINT, every_images=2)
    journal.add({"filepath": "0.jpg"})
    assert not checkpoint_path(out).exists()  # made with its first batch: a run killed before leaves none
    journal.sync()
    inode = checkpoint_path(out).stat().st_ino
    before = checkpoint_path(out).read_bytes()
    for i in range(1, 7):
        journal.add({"filepath": f"{i}.jpg"})
        journal.sync(fsync=False)
        now = checkpoint_path(out).read_bytes()
        assert now.startswith(before) and checkpoint_path(out).stat().st_ino == inode  # appended in place
        before = now
    journal.close()
    again = Checkpoint(out, FINGERPRINT)
    assert [row["filepath"] for row in again.load()] == [f"{i}.jpg" for i in range(7)] and not again.damage
    again.open()
    again.add({"filepath": "7.jpg"})
    again.close()
    assert checkpoint_path(out).stat().st_ino == inode and len(checkpoint_path(out).read_text().splitlines()) == 1 + 8


def test_a_torn_last_line_is_dropped_reported_and_cut_off(tmp_path):
    out = tmp_path / "o.jsonl"
    journal = Checkpoint(out, FINGERPRINT)
    journal.create([{"filepath": "a.jpg"}, {"filepath": "b.jpg"}])
    journal.close()
    with open(checkpoint_path(out), "ab") as fh:
        fh.write(b'{"filepath": "c.j')  # the power went while this line was written
    again = Checkpoint(out, FINGERPRINT)
    assert [row["filepath"] for row in again.load()] == ["a.jpg", "b.jpg"]
    assert len(again.damage) == 1 and "line 4" in again.damage[0] and "cut short" in again.damage[0]
    again.open()
    again.add({"filepath": "c.jpg"})
    again.close()
    assert [json.loads(line)["filepath"] for line in checkpoint_path(out).read_text().splitlines()[1:]] == ["a.jpg", "b.jpg", "c.jpg"]


def test_another_runs_checkpoint_is_refused(tmp_path):
    out = tmp_path / "o.jsonl"
    Checkpoint(out, {"model": "other"}).create([{"filepath": "a.jpg"}])
    with pytest.raises(CheckpointError, match="different run"):
        Checkpoint(out, FINGERPRINT).load()


def test_results_arriving_out_of_order_are_written_in_input_order(tmp_path, records_spec):
    names = [f"img{i}.jpg" for i in range(50)]
    shuffled = names[::-1][:25] + names[:25]  # a cluster engine's order: the second half first

    def make(skip):
        for name in shuffled:
            if name not in skip:
                yield image_record(name, {}, [{"label": "lion", "score": 0.5, "index": 0}])

    out = tmp_path / "o.jsonl"
    spec = records_spec(out, names, make)
    run = run_job(spec, JobConfig(out=out, progress=False))
    assert [r["filepath"] for r in spec.written] == names and run.summary.total == 50


def varied_records():
    """Stills with EXIF (a burst), a failure, a video with frames, a serial: every optional column."""
    records = [_image(i, datetime=f"2024:03:17 05:42:{i:02d}", make="Reconyx", model="HF2") for i in range(5)]
    records.append(failure_record("cam1/broken.jpg", "truncated", video=False))
    frames = [{"kind": "frame", "frame_number": n, "predictions": _image(n)["predictions"]} for n in (0, 30)]
    records.append(video_record("cam0/clip.mp4", {"frame_rate": 30.0, "frames_processed": [0, 30]}, frames, _image(9)["predictions"]))
    records.append({**_image(7), "serial": "SN1", "note": "damaged video: 2 of 3 frames"})
    return records


@pytest.mark.parametrize("sequences", [None, SequenceOptions(gap=5.0), SequenceOptions(gap=5.0, smooth=True)])
@pytest.mark.parametrize("fmt", ["megadetector", "csv", "jsonl"])
def test_streaming_writers_write_the_whole_list_renderers_bytes(tmp_path, fmt, sequences):
    records = varied_records()
    if sequences is not None:
        records = list(apply_sequences(records, sequences, 2))
    meta = {"model": "m", "variant": "v", "top_k": 2, "random_weights": fmt == "csv"}
    names = [f"label {i}" for i in range(7)]
    features = scan(records, len(names))
    path = tmp_path / "out"
    if fmt == "megadetector":
        write_megadetector(path, records, meta, names, features)
        doc = megadetector_document(records, meta, names)
        got = json.loads(path.read_text())
        for key in ("classification_completion_time", "detection_completion_time"):
            got["info"].pop(key), doc["info"].pop(key)
        assert got == doc and path.read_text().endswith("\n ]\n}\n")
        assert_md_valid(path)
    elif fmt == "csv":
        write_csv(path, records, meta, features)
        assert path.read_text() == csv_text(records, meta)
        assert list(csv.DictReader(io.StringIO(path.read_text())))[-1]["note"]
    else:
        write_jsonl(path, records, meta)
        assert path.read_text() == jsonl_text(records, meta)


def test_a_large_label_set_lists_only_the_categories_used(tmp_path):
    names = [f"species {i}" for i in range(20_001)]
    records = [image_record("a.jpg", {}, [{"label": names[19_999], "score": 0.5, "index": 19_999}])]
    path = tmp_path / "p.json"
    meta = {"model": "m", "top_k": 1}
    write_megadetector(path, records, meta, names, scan(records, len(names)))
    doc = json.loads(path.read_text())
    assert doc["classification_categories"] == {"19999": "species 19999"}
    assert doc["classification_categories"] == megadetector_document(records, meta, names)["classification_categories"]


def test_an_empty_run_writes_valid_outputs(tmp_path):
    path = tmp_path / "p.json"
    write_megadetector(path, [], {"model": "m", "top_k": 1}, ["a"], scan([]))
    assert assert_md_valid(path)["images"] == [] and json.loads(path.read_text()) == json.loads(
        json.dumps(megadetector_document([], {"model": "m", "top_k": 1}, ["a"]) | {"info": json.loads(path.read_text())["info"]}))

"""Records (``jobs.records``): each says its kind, set where it is made (the classifier) or read back
(outputs, checkpoints, the Ray wire), and no output ever writes it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioclip_edge.runtime.images.detections import read_detections
from bioclip_edge.runtime.images.discover import discover
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, run_classify
from bioclip_edge.runtime.jobs.media_fields import video_complete
from bioclip_edge.runtime.jobs.previous_output import read_output_records
from bioclip_edge.runtime.jobs.records import (ORDER, failure_record, frame_record, has_video_fields, image_record, read_back,
                                               stored, video_record)
from bioclip_edge.runtime.jobs.sequences import group_sequences

LABELS = ["lion", "leopard", "empty savanna"]
EXACT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime"), "decode_threads": 0}


@pytest.fixture(scope="module")
def card(photo_dir, tmp_path_factory) -> Path:
    """Two stills, a broken one, a good video and a file that only looks like one."""
    pytest.importorskip("av")
    from tests.helpers.video_factory import write_video

    root = tmp_path_factory.mktemp("kinds")
    for name in ("chelsea", "coffee"):
        shutil.copy(photo_dir / f"{name}.jpg", root / f"{name}.jpg")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    write_video(root / "clip.mp4", photo_dir / "chelsea.jpg", "mjpeg", fmt="mp4")
    (root / "notes.avi").write_text("field notes, not a video\n")
    return root


@pytest.fixture(scope="module")
def clf(tiny_bundle) -> Classifier:
    return Classifier(tiny_bundle, LABELS, top_k=2, **EXACT)


@pytest.fixture(scope="module")
def made(clf, card) -> dict[str, dict]:
    return {r["filepath"]: r for r in clf.predict([card], relative=True)}


def test_the_classifier_sets_each_kind(made):
    kinds = {name: r["kind"] for name, r in made.items()}
    assert kinds == {"chelsea.jpg": "image", "coffee.jpg": "image", "broken.jpg": "failure", "clip.mp4": "video",
                     "notes.avi": "failure"}
    clip = made["clip.mp4"]
    assert clip["frames"] and all(f["kind"] == "frame" for f in clip["frames"])
    assert [f["frame_number"] for f in clip["frames"]] == clip["frames_processed"]
    failed_video = made["notes.avi"]  # MegaDetector's fields for a failed video ride on its failure record
    assert failed_video["frame_rate"] == -1.0 and failed_video["frames_processed"] == [] and failed_video["failures"]
    assert "frame_rate" not in made["broken.jpg"] and made["broken.jpg"]["predictions"] == []
    assert [has_video_fields(made[n]) for n in ("chelsea.jpg", "broken.jpg", "clip.mp4", "notes.avi")] == [False, False, True, True]
    assert all(list(r) == [k for k in ORDER if k in r] for r in made.values())  # the layout's key order


def test_box_records_are_boxes_whatever_happened(clf, card, tmp_path):
    md = {"info": {"format_version": "1.5"}, "detection_categories": {"1": "animal"}, "images": [
        {"file": "chelsea.jpg", "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]},
                                               {"category": "1", "conf": 0.05, "bbox": [0.0, 0.0, 0.2, 0.2]}]},
        {"file": "coffee.jpg", "detections": []},
        {"file": "gone.jpg", "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1]}]},
        {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        {"file": "chelsea.jpg", "detections": [{"category": "1", "conf": 0.8, "bbox": [0.2, 0.2, 0.3, 0.3]}]}]}
    (tmp_path / "md.json").write_text(json.dumps(md))
    records = list(clf.iter_detections(read_detections(tmp_path / "md.json"), card, 0.2))
    assert [r["kind"] for r in records] == ["boxes"] * 5
    assert [r["filepath"] for r in records] == [e["file"] for e in md["images"]]
    first, _, gone, broken, again = records
    assert ["predictions" in d for d in first["detections"]] == [True, False]
    assert gone["failures"] and broken["md_failure"] == "Failure image access" and broken["detections"] is None
    # an entry listed twice is two items: each keeps its own boxes (nothing is looked up by identity or name)
    assert again["detections"][0]["bbox"] == [0.2, 0.2, 0.3, 0.3] and "predictions" in again["detections"][0]
    assert md["images"][0]["detections"][0].keys() == {"category", "conf", "bbox"}  # the input entries are not touched


def test_stored_drops_the_kind_and_read_back_gives_it_again(made):
    for record in made.values():
        row = stored(record)
        assert "kind" not in row and all("kind" not in f for f in row.get("frames", []))
        assert read_back(json.loads(json.dumps(row)), boxes=False) == record
    assert read_back({"filepath": "a.jpg", "detections": None, "failures": [], "extra": {}}, boxes=True)["kind"] == "boxes"


def test_builders_make_each_kind():
    info = {"width": 10, "height": 20, "datetime": "2024:01:01 00:00:00"}
    top = [{"label": "lion", "score": 0.9, "index": 0}]
    assert image_record("a.jpg", info, top) == {"kind": "image", "filepath": "a.jpg", "predictions": top, "failures": [],
                                                "datetime": "2024:01:01 00:00:00", "width": 10, "height": 20}
    frames = [frame_record(0, top), frame_record(10, top)]
    video = video_record("v.mp4", {"frame_rate": 10.0, "frames_processed": [0, 10]}, frames, top)
    assert video["kind"] == "video" and video["frames"][1] == {"kind": "frame", "frame_number": 10, "predictions": top}
    assert video_complete(video) and not video_complete({**video, "frames": frames[:1]})
    assert failure_record("v.mp4", "bad", video=True) == {"kind": "failure", "filepath": "v.mp4", "predictions": [],
                                                          "failures": ["bad"], "frame_rate": -1.0, "frames_processed": []}
    assert "frame_rate" not in failure_record("a.jpg", "bad", video=False)


def test_videos_and_failures_are_sequences_of_their_own(made):
    timed = {name: {**r, "datetime": "2024:01:01 00:00:00"} for name, r in made.items()}
    names = list(timed)
    groups = [{names[i] for i in g} for g in group_sequences(list(timed.values()), 60.0)]
    assert {"chelsea.jpg", "coffee.jpg"} in groups  # same folder, no camera fields, same time: one burst
    assert {"clip.mp4"} in groups and {"broken.jpg"} in groups and {"notes.avi"} in groups


@pytest.mark.parametrize("fmt", ["megadetector", "csv", "jsonl", "parquet"])
def test_outputs_never_write_the_kind_and_read_back_with_it(clf, card, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"p.{ {'megadetector': 'json'}.get(fmt, fmt) }"
    run_classify(clf, ClassifyJob(out=out, fmt=fmt, relative_paths=True, progress=False), discover([card], relative=True))
    if fmt != "parquet":
        assert '"kind"' not in out.read_text() and ",kind" not in out.read_text().splitlines()[0]
    back = {r["filepath"]: r for r in (read_output_records(out, fmt) if fmt != "parquet" else _parquet_records(clf, out))}
    assert {n: r["kind"] for n, r in back.items()} == {"chelsea.jpg": "image", "coffee.jpg": "image", "broken.jpg": "failure",
                                                       "clip.mp4": "video", "notes.avi": "failure"}
    if fmt in ("megadetector", "jsonl", "parquet"):  # formats that keep a video's frames
        assert all(f["kind"] == "frame" for f in back["clip.mp4"]["frames"])


def _parquet_records(clf, out):
    from bioclip_edge.runtime.jobs.classify_job import ClassifySpec

    job = ClassifyJob(out=out, fmt="parquet", relative_paths=True)
    return ClassifySpec(clf, job, [], None).finished()  # type: ignore[arg-type]


def test_the_ray_wire_carries_the_stored_form(clf, card, made, tiny_bundle):
    """A Ray worker sends each record as the JSON of its stored form (no kind); the driver's read_back
    gives back the record the local engine makes."""
    from bioclip_edge.runtime.cluster.workers import RECORD, ClassifyWorker, WorkerSpec

    spec = WorkerSpec(bundle=str(tiny_bundle), plan=clf.embedder.plan.to_dict(), provider=clf.embedder.provider,
                      request=clf.request, labels=LABELS)
    items = discover([card], relative=True)
    batch = {"path": [str(i.path) for i in items], "filepath": [i.filepath for i in items], "problem": [""] * len(items)}
    texts = list(ClassifyWorker(spec)(batch)[RECORD])
    assert texts == [json.dumps(stored(made[i.filepath]), ensure_ascii=False) for i in items]
    assert [read_back(json.loads(t), boxes=False) for t in texts] == [made[i.filepath] for i in items]

"""Classification end to end on real image files with the tiny exported bundle: the Python API,
the command line, failures as data, detections mode, checkpoints and --resume."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.images.detections import crop_box, read_detections
from bioclip_edge.runtime.images.discover import discover
from bioclip_edge.runtime.jobs.runner import JobConfig, run_job
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME
from bioclip_edge.runtime.images.pipeline import Prepared, prepare_stream
from bioclip_edge.runtime.inference.session import SessionOptions
from tests.helpers.image_factory import EXIF_DATETIME, EXIF_MAKE, EXIF_MODEL, bad_images, good_images

LABELS = ["lion", "leopard", "spotted hyena", "empty savanna", "domestic cat", "coffee cup"]
# Tests that compare results bit for bit ask for the exact path; the default (auto) may pick bf16
# or int8, whose results move slightly with the batch shape.
EXACT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime")}


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    """A memory card: good images of every kind, bad files of every kind, odd names."""
    root = tmp_path_factory.mktemp("card")
    good_images(root / "DCIM" / "100GOOD")
    bad_images(root / "DCIM" / "200BAD")
    odd = root / "odd names"
    odd.mkdir()
    Image.open(root / "DCIM" / "100GOOD" / "chelsea.jpg").save(odd / "ñandú en el río.jpg")
    return root


@pytest.fixture(scope="module")
def clf(tiny_bundle) -> Classifier:
    return Classifier(Bundle.open(tiny_bundle), LABELS, top_k=3, batch_size=4, decode_threads=2, **EXACT)


def by_name(results):
    return {Path(r["filepath"]).name: r for r in results}


def test_predict_folder_results_and_failures(clf, card):
    results = clf.predict([card], relative=True)
    names = by_name(results)
    assert len(results) == len(discover([card]))
    good = [r for r in results if not r["failures"]]
    bad = [r for r in results if r["failures"]]
    assert len(good) == 14 and len(bad) == 8  # 13 good + 1 odd name; 8 bad files (the .jpg folder is walked)
    for r in good:
        assert len(r["predictions"]) == 3
        scores = [p["score"] for p in r["predictions"]]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
        assert all(p["label"] == LABELS[p["index"]] for p in r["predictions"])
    for r in bad:
        assert r["predictions"] == [] and r["failures"][0]
    assert "truncated" in names["truncated.jpg"]["failures"][0]
    assert "dangling" in names["dangling.jpg"]["failures"][0]
    trail = names["trailcam.JPG"]
    assert (trail["datetime"], trail["make"], trail["model"]) == (EXIF_DATETIME, EXIF_MAKE, EXIF_MODEL)
    assert (trail["width"], trail["height"]) == (1080, 1920)  # EXIF orientation applied
    assert names["ñandú en el río.jpg"]["filepath"] == "odd names/ñandú en el río.jpg"


def test_scores_equal_embedding_times_label_matrix(clf, photo_dir):
    """The pipeline (threads, batching) gives exactly what embedding + topk give directly."""
    results = clf.predict([photo_dir])
    from bioclip_edge.runtime.images.decode import load_image

    for r in results:
        image = load_image(r["filepath"]).image
        vector = clf.embedder.embed(clf.transform(image)[None])
        idx, probs = clf.labels.topk(vector, 3)
        assert [p["index"] for p in r["predictions"]] == idx[0].tolist()
        np.testing.assert_allclose([p["score"] for p in r["predictions"]], probs[0], rtol=1e-5, atol=1e-6)


def test_threads_and_batch_sizes_do_not_change_results(tiny_bundle, photo_dir):
    bundle = Bundle.open(tiny_bundle)
    runs = [Classifier(bundle, LABELS, top_k=2, batch_size=b, decode_threads=t, **EXACT).predict([photo_dir])
            for b, t in ((1, 0), (4, 3), (64, 1))]
    for other in runs[1:]:
        assert [r["filepath"] for r in other] == [r["filepath"] for r in runs[0]]
        for a, b in zip(runs[0], other):
            assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
            np.testing.assert_allclose([p["score"] for p in a["predictions"]], [p["score"] for p in b["predictions"]], atol=1e-5)


def test_decoding_runs_in_worker_threads_with_bounded_lookahead(photo_dir):
    items = discover([photo_dir]) * 5
    seen_threads, in_flight, peak = set(), [0], [0]
    lock = threading.Lock()

    def prepare(item):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
            seen_threads.add(threading.current_thread().name)
        Image.open(item.path).load()
        with lock:
            in_flight[0] -= 1
        return Prepared(item)

    out = list(prepare_stream(items, prepare, decode_threads=3, window=4))
    assert [p.item for p in out] == items  # input order kept
    assert len(seen_threads) > 1 and all(name.startswith("decode") for name in seen_threads)
    assert peak[0] <= 4


def test_iter_predict_streams(clf, photo_dir):
    stream = clf.iter_predict([photo_dir])
    first = next(stream)
    assert first["filepath"].endswith(".jpg") and first["predictions"]
    stream.close()


def test_broken_bundle_and_labels_stop_before_work(tiny_bundle, tmp_path, photo_dir):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    from bioclip_edge.runtime.inference.selection import select_vision

    loaded = select_vision(Bundle.open(tiny_bundle)).variant.file  # the graph this run will load
    with open(broken / loaded, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02\x03")
    out = tmp_path / "p.json"
    code = cli_main(["classify", str(broken), str(photo_dir), "--labels", "a,b", "--out", str(out)])
    assert code == 2 and not out.exists()
    for labels, word in ((str(tmp_path / "nope.npz"), "nope.npz"), ("justone", "two labels"), (str(tmp_path / "missing.txt"), "missing.txt")):
        code = cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", labels, "--out", str(out)])
        assert code == 2 and not out.exists(), labels
    with pytest.raises(Exception, match="sha256"):
        Classifier(broken, LABELS)


def test_error_messages_name_the_file(tiny_bundle, tmp_path, photo_dir, capsys):
    bad_labels = tmp_path / "labels.npz"
    bad_labels.write_bytes(b"not a zip")
    code = cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", str(bad_labels), "--out", str(tmp_path / "o.json")])
    assert code == 2
    assert str(bad_labels) in capsys.readouterr().err
    (tmp_path / "nobundle").mkdir()
    code = cli_main(["classify", str(tmp_path / "nobundle"), str(photo_dir), "--labels", "a,b"])
    assert code == 2 and MANIFEST_NAME in capsys.readouterr().err


def test_cli_labels_from_text_file_and_exit_code_counts_failures(tiny_bundle, card, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("# my labels\nlion\nleopard\n\nspotted hyena\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = cli_main(["classify", str(tiny_bundle), str(card), "--labels", str(labels), "--out", str(out), "--top-k", "2", "--no-progress"])
    assert code == 1  # some images failed
    summary = capsys.readouterr().out
    assert "8 of 22 failed" in summary and "images/s" in summary
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 22 and sum(bool(r["failures"]) for r in rows) == 8
    assert {p["label"] for r in rows for p in r["predictions"]} <= {"lion", "leopard", "spotted hyena"}
    assert not checkpoint_path(out).exists()
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copy(card / "DCIM" / "100GOOD" / "chelsea.jpg", clean)
    assert cli_main(["classify", str(tiny_bundle), str(clean), "--labels", "a,b", "--out", str(tmp_path / "c.csv")]) == 0


def test_random_weights_are_said_plainly(random_flagged_bundle, tmp_path, photo_dir, capsys):
    fake = random_flagged_bundle
    out = tmp_path / "p.json"
    assert cli_main(["classify", str(fake), str(photo_dir), "--labels", "a,b,c", "--out", str(out)]) == 0
    assert "RANDOM weights" in capsys.readouterr().err
    info = json.loads(out.read_text())["info"]
    assert info["classifier_metadata"]["random_weights"] is True
    assert "RANDOM WEIGHTS" in info["classifier_metadata"]["warning"]
    assert cli_main(["info", str(fake)]) == 0
    assert capsys.readouterr().out.startswith("WARNING: RANDOM WEIGHTS")


def test_killed_run_resumes_without_losing_or_redoing_work(clf, card, tmp_path, records_spec):
    items = discover([card])
    order = [it.filepath for it in items]
    out = tmp_path / "run.jsonl"
    fingerprint = {"model": "tiny", "labels": 6}
    seen = []

    def killed(skip):
        for i, record in enumerate(clf.iter_items([it for it in items if it.filepath not in skip])):
            if i == 9:
                raise KeyboardInterrupt
            seen.append(record["filepath"])
            yield record

    config = JobConfig(out=out, checkpoint_images=4, progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_job(records_spec(out, order, killed, fingerprint), config)
    assert not out.exists()
    lines = checkpoint_path(out).read_text().splitlines()
    assert len(lines) == 1 + 9  # header + every finished record, saved on the way out
    with pytest.raises(Exception, match="--resume"):
        run_job(records_spec(out, order, lambda skip: iter(()), fingerprint), config)
    with pytest.raises(Exception, match="different run"):
        run_job(records_spec(out, order, lambda skip: iter(()), {"model": "other", "labels": 6}), JobConfig(out=out, resume=True))

    redone = []

    def rest(skip):
        for record in clf.iter_items([it for it in items if it.filepath not in skip]):
            redone.append(record["filepath"])
            yield record

    summary = run_job(records_spec(out, order, rest, fingerprint), JobConfig(out=out, resume=True, progress=False)).summary
    done_before = [json.loads(line)["filepath"] for line in lines[1:] if not json.loads(line)["failures"]]
    assert not set(done_before) & set(redone)  # finished images are not classified again
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["filepath"] for r in final] == order  # complete and in input order
    assert summary.resumed == len(done_before) and summary.total == len(items)
    assert not checkpoint_path(out).exists()


def test_checkpoint_is_written_during_the_run(clf, photo_dir, tmp_path, records_spec):
    out = tmp_path / "o.json"
    sizes = []

    def produce(skip):
        for record in clf.iter_predict([photo_dir]):
            yield record
            path = checkpoint_path(out)
            sizes.append(len(path.read_text().splitlines()) if path.exists() else 0)

    order = [item.filepath for item in discover([photo_dir])]
    run_job(records_spec(out, order, produce, {"m": 1}), JobConfig(out=out, checkpoint_images=2, progress=False))
    assert sizes[1] == 3 and sizes[3] == 5  # header + 2, header + 4: saved every 2 images
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_cli_resume_after_checkpoint(tiny_bundle, photo_dir, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "a,b", "--out", str(out), "--format", "jsonl"]) == 0
    records = out.read_text().splitlines()
    ckpt = checkpoint_path(out)
    capsys.readouterr()
    # kill the next run after two images (Ctrl-C inside the loop, like a user would)
    from bioclip_edge.runtime.jobs import checkpoint as ck

    original = ck.Checkpoint.add
    calls = {"n": 0}

    def add_then_die(self, record):
        original(self, record)
        calls["n"] += 1
        if calls["n"] == 2:
            self.sync()
            raise KeyboardInterrupt

    ck.Checkpoint.add = add_then_die
    try:  # a fresh run over the finished output: only with --overwrite, and the output stays until it is done
        assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "a,b", "--out", str(out), "--format", "jsonl",
                         "--overwrite"]) == 130
    finally:
        ck.Checkpoint.add = original
    assert ckpt.exists() and out.read_text().splitlines() == records
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "a,b", "--out", str(out), "--format", "jsonl"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--labels", "a,b", "--out", str(out), "--format", "jsonl", "--resume"]) == 0
    assert "2 done before" in capsys.readouterr().out
    assert out.read_text().splitlines() == records and not ckpt.exists()


def test_crop_box():
    assert crop_box(1000, 500, [0.1, 0.2, 0.3, 0.4]) == (100, 100, 400, 300)
    assert crop_box(100, 100, [0.999, 0.5, 0.0, 0.0]) == (99, 50, 100, 51)  # never empty
    assert crop_box(100, 100, [-0.1, -0.1, 1.5, 1.5]) == (0, 0, 100, 100)  # clamped


def test_detections_mode_classifies_boxes(clf, tiny_bundle, card, tmp_path):
    folder = card / "DCIM" / "100GOOD"
    md = {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {"file": "chelsea.jpg", "max_detection_conf": 0.9, "detections": [
                {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.6], "classifications": [["7", 0.5]]},
                {"category": "1", "conf": 0.05, "bbox": [0.0, 0.0, 0.2, 0.2]},
                {"category": "2", "conf": 0.8, "bbox": [0.5, 0.5, 0.4, 0.4]},
            ]},
            {"file": "trailcam.JPG", "detections": [{"category": "1", "conf": 0.5, "bbox": [0.25, 0.1, 0.5, 0.3]}]},
            {"file": "coffee.PNG", "detections": []},
            {"file": "gone.jpg", "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1]}]},
            {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        ],
    }
    md_path = tmp_path / "md.json"
    md_path.write_text(json.dumps(md))
    out = tmp_path / "with_species.json"
    code = cli_main(["classify", str(tiny_bundle), str(folder), "--detections", str(md_path), "--out", str(out),
                     "--labels", ",".join(LABELS), "--top-k", "3", "--detection-threshold", "0.2"])
    assert code == 1  # gone.jpg could not be read
    doc = json.loads(out.read_text())
    images = {im["file"]: im for im in doc["images"]}
    assert doc["detection_categories"] == md["detection_categories"]
    assert doc["info"]["detector"] == "md_v5a.0.0.pt" and doc["info"]["classifier"].startswith("bioclip-edge")
    chelsea = images["chelsea.jpg"]
    assert chelsea["max_detection_conf"] == 0.9  # fields we do not touch are kept
    first, low, person = chelsea["detections"]
    assert len(first["classifications"]) == 3 and first["classifications"][0][0] in doc["classification_categories"]
    assert "classifications" not in low and "classifications" not in person  # below threshold / not an animal
    assert images["coffee.PNG"]["detections"] == []
    assert images["broken.jpg"] == {"file": "broken.jpg", "failure": "Failure image access", "detections": None}
    assert "not found" in images["gone.jpg"]["classification_failure"] and images["gone.jpg"]["detections"][0]["conf"] == 0.7

    # the crop is the box: classifying the saved crop as a whole image gives the same answer
    decoded = Image.open(folder / "chelsea.jpg").convert("RGB")
    crop_file = tmp_path / "crop.png"
    decoded.crop(crop_box(decoded.width, decoded.height, [0.1, 0.1, 0.5, 0.6])).save(crop_file)
    whole = clf.predict([crop_file])[0]["predictions"]
    det = [r for r in clf.iter_detections(read_detections(md_path), folder, 0.2) if r["filepath"] == "chelsea.jpg"][0]
    got = det["detections"][0]["predictions"]
    assert [p["index"] for p in got] == [p["index"] for p in whole]
    np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in whole], atol=1e-5)


def test_detections_file_errors(tiny_bundle, photo_dir, tmp_path, capsys):
    bad = tmp_path / "md.json"
    bad.write_text('{"images": "nope"}')
    out = tmp_path / "o.json"
    assert cli_main(["classify", str(tiny_bundle), str(photo_dir), "--detections", str(bad), "--labels", "a,b", "--out", str(out)]) == 2
    assert str(bad) in capsys.readouterr().err and not out.exists()


def test_a_folder_without_images_stops_with_a_clear_error(tiny_bundle, tmp_path, capsys):
    empty = tmp_path / "card"
    (empty / "DCIM").mkdir(parents=True)
    (empty / "DCIM" / "notes.txt.bak").write_text("not an image")
    out = tmp_path / "p.json"
    for command in (["classify", str(tiny_bundle), str(empty), "--labels", "a,b", "--out", str(out)],
                    ["embed", str(tiny_bundle), str(empty), "--out", str(tmp_path / "e.npy")]):
        assert cli_main(command) == 2
        err = capsys.readouterr().err
        assert "no images found" in err and str(empty) in err and "jpg" in err
    assert not out.exists() and not (tmp_path / "e.npy").exists()

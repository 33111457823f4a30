"""No finished work lost: output targets are checked before any image is read, an existing output
is never replaced silently, and ``--resume`` extends a finished output (MegaDetector JSON, CSV,
JSON Lines, with and without ``--detections``; ``embed``'s .npy + index) as long as the run's
fingerprint (graph, label *embeddings*, options) is the same."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from bioclip_edge.runtime.labels.matrix import LabelMatrix, bundle_info

FIRST = ("astronaut", "chelsea", "coffee")
LATER = ("rocket", "colorwheel")
SUFFIX = {"megadetector": "json", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    """An SD card's first batch: three photos and one file that is not an image."""
    folder = tmp_path / "card"
    folder.mkdir()
    for name in FIRST:
        shutil.copy(photo_dir / f"{name}.jpg", folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def next_card(card: Path, photo_dir: Path) -> None:
    """The next SD card's images join the folder, and the broken file is replaced by a good one."""
    for name in LATER:
        shutil.copy(photo_dir / f"{name}.jpg", card)
    shutil.copy(photo_dir / "immunohistochemistry.jpg", card / "broken.jpg")


def classify(bundle, inputs, out, *extra) -> int:
    return cli_main(["classify", str(bundle), str(inputs), "--out", str(out), "--no-progress", "--relative-paths",
                     "--labels", "lion,leopard,empty savanna", "--top-k", "2", *extra])


def no_decoding(monkeypatch):
    """Any image decode fails the test: the run must stop before reading one."""
    from bioclip_edge.runtime.jobs import box_records
    from bioclip_edge.runtime.images import decode as images

    def decode(*args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(box_records, "load_image", decode)
    monkeypatch.setattr(images, "load_image", decode)


# --- the output target is checked first --------------------------------------------------------
@pytest.mark.parametrize("where", ["under-a-file", "proc", "a-folder"])
@pytest.mark.parametrize("command", ["classify", "embed"])
def test_unwritable_output_stops_before_any_image_is_read(tiny_bundle, card, tmp_path, capsys, monkeypatch, where, command):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    (tmp_path / "taken").mkdir()
    name = "p.json" if command == "classify" else "e.npy"
    out = {"under-a-file": tmp_path / "notes.txt" / name, "proc": Path("/proc/bioclip-edge-test") / name,
           "a-folder": tmp_path / "taken"}[where]
    no_decoding(monkeypatch)
    args = [command, str(tiny_bundle), str(card), "--out", str(out), "--no-progress"]
    code = cli_main(args + (["--labels", "a,b"] if command == "classify" else []))
    err = capsys.readouterr().err
    assert code == 2 and str(out) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one line, no model announcement: nothing was loaded
    assert not checkpoint_path(out).exists() and not list(tmp_path.glob("**/*.checkpoint.jsonl"))


def test_existing_outputs_are_not_replaced_without_overwrite(tiny_bundle, card, tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.jsonl"
    assert classify(tiny_bundle, card, out) == 1  # broken.jpg failed
    before = out.read_bytes()
    capsys.readouterr()
    with monkeypatch.context() as patch:
        no_decoding(patch)
        assert classify(tiny_bundle, card, out) == 2
        err = capsys.readouterr().err
        assert str(out) in err and "--overwrite" in err and "--resume" in err
        assert classify(tiny_bundle, card, out, "--resume", "--overwrite") == 2
        assert "pass one of them" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert classify(tiny_bundle, card, out, "--overwrite", "--top-k", "1") == 1
    assert out.read_bytes() != before and json.loads(out.read_text().splitlines()[0])["predictions"][1:] == []


def test_embed_refuses_to_replace_either_file(tiny_bundle, card, tmp_path, capsys):
    out = tmp_path / "e.npy"
    index = tmp_path / "e.json"
    index.write_text("{}")  # only the index exists
    assert cli_main(["embed", str(tiny_bundle), str(card), "--out", str(out), "--no-progress"]) == 2
    assert str(index) in capsys.readouterr().err and index.read_text() == "{}"
    assert cli_main(["embed", str(tiny_bundle), str(card), "--out", str(out), "--no-progress", "--overwrite"]) == 1
    assert np.load(out).shape[0] == 3 and json.loads(index.read_text())["run_fingerprint"]["dtype"] == "float32"


# --- --resume extends a finished output ----------------------------------------------------------
def rows_of(path: Path, fmt: str) -> dict[str, str]:
    """filepath -> that image's rows as written (text for CSV / JSON Lines, canonical JSON for MegaDetector)."""
    if fmt == "megadetector":
        return {im["file"]: json.dumps(im, sort_keys=True) for im in json.loads(path.read_text())["images"]}
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return {row["filepath"]: json.dumps(row, sort_keys=True) for row in pq.read_table(path).to_pylist()}
    rows: dict[str, str] = {}
    lines = path.read_text().splitlines()
    for line in lines[1:] if fmt == "csv" else lines:
        name = next(csv.reader([line]))[0] if fmt == "csv" else json.loads(line)["filepath"]
        rows[name] = rows.get(name, "") + line + "\n"
    return rows


@pytest.mark.parametrize("fmt", ["megadetector", "csv", "jsonl", "parquet"])
def test_resume_extends_a_finished_output(tiny_bundle, card, photo_dir, tmp_path, capsys, fmt):
    out = tmp_path / f"predictions.{SUFFIX[fmt]}"
    assert classify(tiny_bundle, card, out) == 1
    first = rows_of(out, fmt)
    assert sorted(first) == sorted([f"{n}.jpg" for n in FIRST] + ["broken.jpg"])
    next_card(card, photo_dir)
    capsys.readouterr()
    assert classify(tiny_bundle, card, out, "--resume") == 0
    summary = capsys.readouterr().out
    assert "2 new, 1 done again" in summary and "kept 3 done before" in summary and "none of 6 failed" in summary
    now = rows_of(out, fmt)
    assert sorted(now) == sorted([f"{n}.jpg" for n in FIRST + LATER] + ["broken.jpg"])
    for name in (f"{n}.jpg" for n in FIRST):
        assert now[name] == first[name]  # kept as written, byte for byte
    assert now["broken.jpg"] != first["broken.jpg"] and "not an image" not in now["broken.jpg"]  # retried
    text = out.read_bytes()
    assert classify(tiny_bundle, card, out, "--resume") == 0  # nothing new: nothing changes
    assert "0 image(s)" in capsys.readouterr().out
    if fmt not in ("megadetector", "parquet"):  # (MegaDetector's info block carries the completion time)
        assert out.read_bytes() == text


def test_a_killed_extension_resumes_with_the_kept_rows(tiny_bundle, card, photo_dir, tmp_path, monkeypatch):
    """The Python API: an extension killed after one new image resumes from its checkpoint,
    which holds the rows it kept from the finished output as well."""
    from bioclip_edge.runtime.jobs import checkpoint as ck
    from bioclip_edge.runtime.jobs.classifier import Classifier
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, run_classify
    from bioclip_edge.runtime.images.discover import discover

    clf = Classifier(Bundle.open(tiny_bundle), ["lion", "leopard"], top_k=2)
    out = tmp_path / "p.csv"
    job = ClassifyJob(out=out, fmt="csv", relative_paths=True, progress=False)
    run_classify(clf, job, discover([card], relative=True))
    first = rows_of(out, "csv")
    next_card(card, photo_dir)
    resume = dataclasses.replace(job, resume=True)
    original = ck.Checkpoint.add

    def add_then_die(self, record):
        original(self, record)
        raise KeyboardInterrupt

    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(ck.Checkpoint, "add", add_then_die)
        run_classify(clf, resume, discover([card], relative=True))
    assert rows_of(out, "csv") == first  # the finished output is untouched until the run ends
    assert len(checkpoint_path(out).read_text().splitlines()) == 1 + 3 + 1  # header, kept, one new
    summary = run_classify(clf, resume, discover([card], relative=True))
    assert (summary.resumed, summary.processed, summary.total, summary.failed) == (4, 2, 6, 0)
    now = rows_of(out, "csv")
    assert all(now[f"{n}.jpg"] == first[f"{n}.jpg"] for n in FIRST) and not checkpoint_path(out).exists()


def md_file(path: Path, images: list[dict]) -> Path:
    path.write_text(json.dumps({"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
                                "detection_categories": {"1": "animal", "2": "person"}, "images": images}))
    return path


@pytest.mark.parametrize("fmt", ["megadetector", "csv"])
def test_resume_with_detections_adds_new_images_and_redoes_changed_boxes(tiny_bundle, card, photo_dir, tmp_path, capsys, fmt):
    boxes = [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.6]}, {"category": "2", "conf": 0.8, "bbox": [0.5, 0.5, 0.4, 0.4]}]
    images = [{"file": "astronaut.jpg", "max_detection_conf": 0.9, "detections": boxes},
              {"file": "chelsea.jpg", "detections": [{"category": "1", "conf": 1, "bbox": [0, 0, 1, 1]}]},
              {"file": "coffee.jpg", "detections": []}]
    out = tmp_path / f"with_species.{SUFFIX[fmt]}"
    assert classify(tiny_bundle, card, out, "--detections", str(md_file(tmp_path / "md1.json", images))) == 0
    first = rows_of(out, fmt)
    next_card(card, photo_dir)
    images[2] = {"file": "coffee.jpg", "detections": [{"category": "1", "conf": 0.7, "bbox": [0.2, 0.2, 0.3, 0.3]}]}
    images.append({"file": "rocket.jpg", "detections": [{"category": "1", "conf": 0.5, "bbox": [0.2, 0.2, 0.3, 0.3]}]})
    capsys.readouterr()
    assert classify(tiny_bundle, card, out, "--resume", "--detections", str(md_file(tmp_path / "md2.json", images))) == 0
    assert "1 new, 1 done again" in capsys.readouterr().out  # rocket new; coffee's boxes changed
    now = rows_of(out, fmt)
    assert now["astronaut.jpg"] == first["astronaut.jpg"] and now["chelsea.jpg"] == first["chelsea.jpg"]
    assert now["coffee.jpg"] != first["coffee.jpg"] and "rocket.jpg" in now
    if fmt == "megadetector":
        doc = json.loads(out.read_text())
        assert doc["info"]["detector"] == "md_v5a.0.0.pt" and doc["info"]["classifier_metadata"]["run_fingerprint"]["mode"] == "detections"
        assert [im["file"] for im in doc["images"]] == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]


# --- --resume refuses what would mix two runs --------------------------------------------------------
@pytest.mark.parametrize("fmt", ["megadetector", "csv"])
def test_resume_refuses_another_recipe_label_set_or_top_k(tiny_bundle, card, tmp_path, capsys, monkeypatch, fmt):
    out = tmp_path / f"p.{SUFFIX[fmt]}"
    assert classify(tiny_bundle, card, out) == 1
    before = out.read_bytes()
    no_decoding(monkeypatch)
    capsys.readouterr()
    # same label names, other embeddings: the finding that mixed two label sets in one output
    assert classify(tiny_bundle, card, out, "--resume", "--recipe", "photo") == 2
    err = capsys.readouterr().err
    assert str(out) in err and "different run" in err and "label embeddings" in err and "--recipe" in err
    assert cli_main(["classify", str(tiny_bundle), str(card), "--out", str(out), "--no-progress", "--relative-paths",
                     "--labels", "lion,leopard,spotted hyena", "--top-k", "2", "--resume"]) == 2
    assert "label embeddings" in capsys.readouterr().err
    assert classify(tiny_bundle, card, out, "--resume", "--top-k", "1") == 2
    assert "--top-k" in capsys.readouterr().err
    assert out.read_bytes() == before


def test_resume_refuses_a_label_matrix_with_the_same_names_but_other_embeddings(tiny_bundle, card, tmp_path, capsys):
    bundle = Bundle.open(tiny_bundle)
    info = bundle_info(bundle)
    rng = np.random.default_rng(0)
    names = ["lion", "leopard", "empty savanna"]
    paths = []
    for i in range(2):
        vectors = rng.standard_normal((3, info["embed_dim"])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        paths.append(LabelMatrix.from_embeddings(vectors, names, info, "plain").save(tmp_path / f"labels{i}.npz"))
    out = tmp_path / "p.jsonl"
    args = ["classify", str(tiny_bundle), str(card), "--out", str(out), "--no-progress"]
    assert cli_main([*args, "--labels", str(paths[0])]) == 1
    assert cli_main([*args, "--labels", str(paths[1]), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "label embeddings sha256" in err and "--recipe" not in err


def test_old_checkpoints_and_outputs_without_a_fingerprint_are_refused_clearly(tiny_bundle, card, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    old = {"model": "x", "variant_sha256": "0" * 64, "labels_sha256": "1" * 64, "top_k": 2, "mode": "whole-image",
           "detection_threshold": None, "relative_paths": True}  # the fingerprint before version 2
    checkpoint_path(out).write_text(json.dumps({"checkpoint": old}) + "\n" + json.dumps({"filepath": "chelsea.jpg", "predictions": [], "failures": []}) + "\n")
    assert classify(tiny_bundle, card, out, "--resume") == 2
    assert "earlier bioclip-edge" in capsys.readouterr().err
    assert classify(tiny_bundle, card, out, "--overwrite") == 1 and not checkpoint_path(out).exists()
    out.write_text(json.dumps({"filepath": "chelsea.jpg", "predictions": [], "failures": []}) + "\n")  # no run token
    assert classify(tiny_bundle, card, out, "--resume") == 2
    assert "no bioclip-edge run fingerprint" in capsys.readouterr().err


def test_label_digest_covers_the_vectors_and_is_cached_for_files(tiny_bundle, tmp_path, monkeypatch):
    from bioclip_edge.runtime.labels import digest as label_digest
    from bioclip_edge.runtime.labels.digest import label_matrix_sha256

    info = bundle_info(Bundle.open(tiny_bundle))
    vectors = np.eye(3, info["embed_dim"], dtype=np.float32)
    a = LabelMatrix.from_embeddings(vectors, ["x", "y", "z"], info, "plain")
    b = LabelMatrix.from_embeddings(vectors[[1, 0, 2]], ["x", "y", "z"], info, "plain")
    assert label_matrix_sha256(a) != label_matrix_sha256(b)
    path = a.save(tmp_path / "a.npz")
    digest = label_matrix_sha256(LabelMatrix.load(path))
    assert digest == label_matrix_sha256(a)  # the file's content, not its bytes on disk

    def no_hashing(*args):
        raise AssertionError("hashed again")

    with monkeypatch.context() as patch:
        patch.setattr(label_digest, "_content_sha256", no_hashing)
        assert label_matrix_sha256(LabelMatrix.load(path)) == digest  # the same file: from the cache
    b.save(path)  # the file changed: hashed again
    assert label_matrix_sha256(LabelMatrix.load(path)) == label_matrix_sha256(b)


# --- embed --------------------------------------------------------------------------------------------
def test_embed_resume_appends_new_images_and_keeps_rows(tiny_bundle, card, photo_dir, tmp_path, capsys):
    out = tmp_path / "e.npy"
    args = ["embed", str(tiny_bundle), str(card), "--out", str(out), "--no-progress"]
    assert cli_main(args) == 1
    first = np.load(out)
    index = json.loads(out.with_suffix(".json").read_text())
    assert first.shape[0] == 3 and len(index["failures"]) == 1
    next_card(card, photo_dir)
    capsys.readouterr()
    assert cli_main([*args, "--resume"]) == 0
    assert "kept 3 done before" in capsys.readouterr().out
    now = np.load(out)
    names = [Path(im["filepath"]).name for im in json.loads(out.with_suffix(".json").read_text())["images"]]
    assert now.shape[0] == 6 and now[:3].tobytes() == first.tobytes()  # old rows, same numbers, same places
    assert names[:3] == [Path(im["filepath"]).name for im in index["images"]] and sorted(names[3:]) == ["broken.jpg", "colorwheel.jpg", "rocket.jpg"]
    assert cli_main([*args, "--resume", "--dtype", "float16"]) == 2
    assert "--dtype" in capsys.readouterr().err

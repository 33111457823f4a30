"""One job API: the Python API and the command line run the same classify and embed
jobs from one request value; a resumable classify run is a few lines of Python."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.errors import CommandError, OptionError, UserError

PINNED = ["--precision", "fp32", "--backend", "onnxruntime", "--batch-size", "2", "--threads", "0", "--no-progress"]


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    folder = tmp_path / "card"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        shutil.copy(photo_dir / f"{name}.jpg", folder)
    return folder


def test_a_resumable_classify_run_in_python(tiny_bundle, card, photo_dir, tmp_path, monkeypatch):
    """The Python API guide's example: kill a run, run the same lines again, nothing is lost or redone."""
    from bioclip_edge.runtime import Classifier, ClassifyJob, run_classify
    from bioclip_edge.runtime.jobs import checkpoint as ck

    clf = Classifier(tiny_bundle, ["lion", "leopard", "empty savanna"], top_k=2, precision="fp32", decode_threads=0)
    job = ClassifyJob(out=tmp_path / "predictions.csv", resume=True, relative_paths=True, progress=False)
    assert job.fmt == "csv"  # from the suffix

    def die_after_one(self, record):
        original(self, record)
        raise KeyboardInterrupt

    original = ck.Checkpoint.add
    with monkeypatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(ck.Checkpoint, "add", die_after_one)
        run_classify(clf, job, [card])
    summary = run_classify(clf, job, [card])  # the same call: continues from the checkpoint
    assert (summary.resumed, summary.processed, summary.total, summary.failed) == (1, 2, 3, 0)
    shutil.copy(photo_dir / "rocket.jpg", card)
    summary = run_classify(clf, job, [card])  # and extends the finished output
    assert (summary.resumed, summary.processed, summary.total) == (3, 1, 4)


def test_python_and_cli_write_the_same_output(tiny_bundle, card, tmp_path):
    from bioclip_edge.runtime import Classifier, ClassifyJob, run_classify

    labels = ["lion", "leopard", "empty savanna"]
    cli_out = tmp_path / "cli.jsonl"
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", ",".join(labels), "--out", str(cli_out),
                     "--top-k", "2", "--relative-paths", *PINNED]) == 0
    from bioclip_edge.runtime.inference.session import SessionOptions

    clf = Classifier(tiny_bundle, labels, top_k=2, precision="fp32", batch_size=2, decode_threads=0,
                     session=SessionOptions(backend="onnxruntime"))
    py_out = tmp_path / "py.jsonl"
    run_classify(clf, ClassifyJob(out=py_out, relative_paths=True, progress=False), [card])
    assert py_out.read_text() == cli_out.read_text()  # rows carry the run token: same fingerprint too


def test_python_embed_job_matches_the_cli(tiny_bundle, card, tmp_path):
    from bioclip_edge.runtime import EmbedJob, ImageEmbedder, run_embed
    from bioclip_edge.runtime.inference.session import SessionOptions
    from bioclip_edge.runtime.images.request import ImageRequest

    assert cli_main(["embed", str(tiny_bundle), str(card), "--out", str(tmp_path / "cli.npy"), *PINNED]) == 0
    request = ImageRequest(precision="fp32", batch_size=2, decode_threads=0, session=SessionOptions(backend="onnxruntime"))
    summary = run_embed(ImageEmbedder(tiny_bundle, request), EmbedJob(out=str(tmp_path / "py.npy"), progress=False), [card])
    assert summary.embedded == 3
    np.testing.assert_array_equal(np.load(tmp_path / "py.npy"), np.load(tmp_path / "cli.npy"))
    cli_index, py_index = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("cli", "py"))
    assert py_index["run_fingerprint"] == cli_index["run_fingerprint"]


def test_requests_refuse_bad_values_in_both_apis(tiny_bundle, card, tmp_path, capsys):
    from bioclip_edge.runtime.images.request import ImageRequest
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob

    for bad, words in (({"batch_size": 0}, "--batch-size"), ({"decode_threads": -1}, "--decode-threads"), ({"max_pixels": 0}, "--max-pixels")):
        with pytest.raises(OptionError, match=words):
            ImageRequest(**bad)
    with pytest.raises(OptionError, match="--top-k"):
        ClassifyRequest(top_k=0)
    with pytest.raises(OptionError, match="--detection-threshold"):
        ClassifyJob(threshold=1.5)
    assert issubclass(OptionError, ValueError) and issubclass(CommandError, UserError)
    code = cli_main(["classify", str(tiny_bundle), str(card), "--labels", "a,b", "--top-k", "0",
                     "--out", str(tmp_path / "p.csv")])
    assert code == 2 and "--top-k must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_one_request_flows_down_unchanged(tiny_bundle):
    """The classifier, its embedder and their derived parts all read the request given."""
    from bioclip_edge.runtime import Classifier
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

    request = ClassifyRequest(precision="fp32", batch_size=3, decode_threads=1, fast_decode=True)
    clf = Classifier(tiny_bundle, ["lion", "leopard"], request)
    assert clf.request is request and clf.embedder.request is request
    assert (clf.embedder.flow.batch_size, clf.embedder.flow.decode_threads) == (3, 1)
    assert clf.embedder.decode.draft_size == clf.transform.draft_size and clf.embedder.crop_decode.draft_size is None
    assert clf.request.decode == "draft"  # fast_decode=True: another spelling of decode="draft"
    assert clf.draft_size == clf.transform.draft_size  # MegaDetector crops: drafted per frame (crop_options)

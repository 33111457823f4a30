"""The job runner (``jobs.runner.run_job``): one loop for every job. A spec-driven job saves what is
finished when it is killed, resumes without redoing it, keeps the finished output's results by
reference, and the same runner runs ``classify`` and ``embed``."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.errors import CheckpointError, OptionError, OutputTargetError
from bioclip_edge.runtime.images.discover import discover
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.inference.session import SessionOptions
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from bioclip_edge.runtime.jobs.classifier import Classifier
from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, ClassifySpec
from bioclip_edge.runtime.jobs.embed_job import EmbedJob, EmbedSpec
from bioclip_edge.runtime.jobs.embed_output import LEGACY_KEPT
from bioclip_edge.runtime.jobs.engines import LocalEngine
from bioclip_edge.runtime.jobs.records import failure_record, image_record
from bioclip_edge.runtime.jobs.runner import KEPT_FROM_OUTPUT, JobConfig, run_job

EXACT = {"precision": "fp32", "session": SessionOptions(backend="onnxruntime"), "decode_threads": 0}
NAMES = [f"img{i}.jpg" for i in range(6)]


def _record(name: str, fail: bool = False):
    top = [{"label": "lion", "score": 0.5, "index": 0}]
    return failure_record(name, "unreadable", video=False) if fail else image_record(name, {"width": 4, "height": 3}, top)


class Maker:
    """Records for ``names`` not skipped; ``die_after``: a KeyboardInterrupt after that many."""

    def __init__(self, die_after: int | None = None, failing: tuple[str, ...] = (), names: list[str] = NAMES):
        self.die_after, self.failing, self.names, self.made = die_after, failing, names, []

    def __call__(self, skip):
        for name in self.names:
            if name in skip:
                continue
            if self.die_after is not None and len(self.made) == self.die_after:
                raise KeyboardInterrupt
            self.made.append(name)
            yield _record(name, name in self.failing)


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in checkpoint_path(out).read_text().splitlines()]


def test_a_killed_job_saves_what_it_finished_and_resumes_without_redoing_it(tmp_path, records_spec):
    out = tmp_path / "out.jsonl"
    dying = Maker(die_after=4, failing=("img1.jpg",))
    with pytest.raises(KeyboardInterrupt):
        run_job(records_spec(out, NAMES, dying), JobConfig(out=out, checkpoint_images=100, progress=False))
    assert not out.exists()
    header, *rows = _lines(out)
    assert "checkpoint" in header and [r["filepath"] for r in rows] == NAMES[:4]  # saved on the way out, not every 100
    assert all("kind" not in r for r in rows)  # checkpoint lines are the stored form
    with pytest.raises(CheckpointError, match="--resume"):
        run_job(records_spec(out, NAMES, Maker()), JobConfig(out=out, progress=False))
    rest = Maker()
    spec = records_spec(out, NAMES, rest)
    run = run_job(spec, JobConfig(out=out, resume=True, progress=False))
    assert rest.made == ["img1.jpg", "img4.jpg", "img5.jpg"]  # the failure is tried again, the finished are not
    assert [r["filepath"] for r in spec.written] == NAMES and all(r["kind"] == "image" for r in spec.written)
    assert (run.summary.resumed, run.summary.processed, run.summary.redone, run.summary.failed) == (3, 3, 1, 0)
    assert not checkpoint_path(out).exists()


def test_an_extension_checkpoints_kept_results_by_reference(tmp_path, records_spec):
    out = tmp_path / "out.jsonl"
    run_job(records_spec(out, NAMES[:3], Maker(names=NAMES[:3])), JobConfig(out=out, progress=False))
    dying = Maker(die_after=1)
    with pytest.raises(KeyboardInterrupt):
        run_job(records_spec(out, NAMES, dying), JobConfig(out=out, resume=True, checkpoint_images=1, progress=False))
    _, *rows = _lines(out)
    assert rows[:3] == [{"filepath": n, KEPT_FROM_OUTPUT: True} for n in NAMES[:3]]
    assert rows[3]["filepath"] == "img3.jpg" and rows[3]["predictions"]
    rest = Maker()
    spec = records_spec(out, NAMES[1:], rest)  # img0 is no longer among the inputs: kept, after the others
    summary = run_job(spec, JobConfig(out=out, resume=True, progress=False)).summary
    assert rest.made == ["img4.jpg", "img5.jpg"]
    assert [r["filepath"] for r in spec.written] == NAMES[1:] + ["img0.jpg"]
    assert (summary.resumed, summary.not_in_inputs, summary.total) == (4, 1, 6)


def test_targets_are_checked_before_any_work(tmp_path, records_spec):
    out = tmp_path / "out.jsonl"
    out.write_text("")
    untouched = Maker()
    with pytest.raises(OutputTargetError, match="--overwrite"):
        run_job(records_spec(out, NAMES, untouched), JobConfig(out=out, progress=False))
    with pytest.raises(OptionError, match="pass one of them"):
        run_job(records_spec(out, NAMES, untouched), JobConfig(out=out, resume=True, overwrite=True, progress=False))
    assert untouched.made == []


class DyingEngine(LocalEngine):
    """The local engine, killed after ``n`` results (records, or embedding rows)."""

    def __init__(self, n: int):
        self.n, self.count = n, 0

    def _count(self, results):
        for result in results:
            if self.count == self.n:
                raise KeyboardInterrupt
            self.count += 1
            yield result

    def classify(self, clf, items):
        return self._count(super().classify(clf, items))

    def embed(self, embedder, items):
        return self._count(super().embed(embedder, items))


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    folder = tmp_path / "card"
    folder.mkdir()
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        shutil.copy(photo_dir / f"{name}.jpg", folder)
    return folder


@pytest.mark.parametrize("kind", ["classify", "embed"])
def test_one_runner_runs_classify_and_embed(tiny_bundle, card, tmp_path, kind):
    items = discover([card], relative=True)
    if kind == "classify":
        clf = Classifier(tiny_bundle, ["lion", "leopard"], top_k=2, **EXACT)

        def spec(out, engine):
            job = ClassifyJob(out=out, relative_paths=True, progress=False, checkpoint_images=1)
            return ClassifySpec(clf, job, items, engine), job
    else:
        embedder = ImageEmbedder(tiny_bundle, ImageRequest(**EXACT))

        def spec(out, engine):
            job = EmbedJob(out=out, relative_paths=True, progress=False, checkpoint_images=1)
            return EmbedSpec(embedder, job, items, engine), job
    out = tmp_path / ("p.jsonl" if kind == "classify" else "e.npy")
    dying, job = spec(out, DyingEngine(2))
    with pytest.raises(KeyboardInterrupt):
        run_job(dying, job.config)
    assert len(_lines(out)) == 1 + 2 and not out.exists()
    again = DyingEngine(99)
    run = run_job(spec(out, again)[0], JobConfig(out=out, resume=True, progress=False))
    assert again.count == 2 and (run.summary.resumed, run.summary.processed, run.summary.total) == (2, 2, 4)
    clean = tmp_path / f"clean{out.suffix}"
    run_job(*_with_config(spec(clean, LocalEngine())))
    if kind == "classify":
        assert out.read_text() == clean.read_text()
    else:
        np.testing.assert_allclose(np.load(out), np.load(clean), atol=1e-6)


def _with_config(spec_and_job):
    spec, job = spec_and_job
    return spec, job.config


def test_an_older_embed_checkpoint_still_resumes(tiny_bundle, card, photo_dir, tmp_path):
    """Its first line counted the output rows it kept; one line per row followed."""
    embedder = ImageEmbedder(tiny_bundle, ImageRequest(**EXACT))
    out = tmp_path / "e.npy"
    first = EmbedJob(out=out, relative_paths=True, progress=False)
    run_job(EmbedSpec(embedder, first, discover([card], relative=True), LocalEngine()), first.config)
    shutil.copy(photo_dir / "colorwheel.jpg", card)
    shutil.copy(photo_dir / "immunohistochemistry.jpg", card)
    items = discover([card], relative=True)
    spec = EmbedSpec(embedder, first, items, LocalEngine())
    new = next(r for r in spec.produce({"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "immunohistochemistry.jpg"}))
    vector = base64.b64encode(np.ascontiguousarray(new.vectors[0], np.float32).tobytes()).decode("ascii")
    lines = [{"checkpoint": spec.fingerprint}, {"filepath": LEGACY_KEPT, "kept": 4},
             {"filepath": new.filepath, "info": new.infos[0], "vector": vector}]
    checkpoint_path(out).write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = np.load(out)
    fresh = DyingEngine(99)
    run = run_job(EmbedSpec(embedder, first, items, fresh), JobConfig(out=out, resume=True, progress=False))
    assert fresh.count == 1 and (run.summary.resumed, run.summary.processed) == (5, 1)  # only immunohistochemistry is new
    now = np.load(out)
    assert now.shape[0] == 6 and now[:4].tobytes() == before.tobytes()
    index = json.loads(out.with_suffix(".json").read_text())
    assert [im["filepath"] for im in index["images"]][4:] == ["colorwheel.jpg", "immunohistochemistry.jpg"]

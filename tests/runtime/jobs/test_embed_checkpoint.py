"""``embed`` keeps finished rows in a checkpoint: a killed run resumes without losing or redoing
them, for the .npy pair and Parquet, for new runs, extensions and ``--overwrite`` runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.errors import CheckpointError
from bioclip_edge.runtime.inference.plan import SessionOptions
from bioclip_edge.runtime.images.embedder import ImageEmbedder
from bioclip_edge.runtime.images.request import ImageRequest
from bioclip_edge.runtime.jobs.embed_job import EmbedJob, run_embed
from bioclip_edge.runtime.jobs.engines import LocalEngine

NAMES = ("astronaut", "chelsea", "coffee", "rocket", "colorwheel", "immunohistochemistry")


class DiesAfter(LocalEngine):
    """The local engine, killed (KeyboardInterrupt, as Ctrl-C or a dying process) after ``n`` rows."""

    def __init__(self, n: int):
        self.n = n
        self.made: list[str] = []

    def embed(self, embedder, items):
        for row in super().embed(embedder, items):
            if len(self.made) == self.n:
                raise KeyboardInterrupt
            self.made.append(row[0])
            yield row


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    folder = tmp_path / "card"
    folder.mkdir()
    for name in NAMES[:4]:
        shutil.copy(photo_dir / f"{name}.jpg", folder)
    return folder


@pytest.fixture(scope="module")
def embedder(tiny_bundle):
    return ImageEmbedder(tiny_bundle, ImageRequest(precision="fp32", session=SessionOptions(backend="onnxruntime"), decode_threads=0))


def rows(out: Path) -> dict[str, np.ndarray]:
    """filepath -> vector, from either format."""
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq

        from bioclip_edge.runtime.jobs.parquet_output import embedding_matrix

        table = pq.read_table(out)
        return dict(zip(table.column("filepath").to_pylist(), embedding_matrix(table.column("embedding"))))
    index = json.loads(out.with_suffix(".json").read_text())
    return dict(zip([im["filepath"] for im in index["images"]], np.load(out)))


@pytest.mark.parametrize("suffix", ["npy", "parquet"])
def test_a_killed_embed_resumes_from_its_checkpoint(embedder, card, tmp_path, suffix):
    out = tmp_path / f"e.{suffix}"
    job = EmbedJob(out=out, progress=False, checkpoint_images=1)
    dying = DiesAfter(2)
    with pytest.raises(KeyboardInterrupt):
        run_embed(embedder, job, [card], engine=dying)
    assert not out.exists() and out.with_name(out.name + ".checkpoint.jsonl").exists()
    with pytest.raises(CheckpointError, match="--resume"):
        run_embed(embedder, job, [card])  # neither --resume nor --overwrite: refused, checkpoint kept
    again = DiesAfter(99)
    summary = run_embed(embedder, EmbedJob(out=out, progress=False, resume=True), [card], engine=again)
    assert summary.kept >= 1 and summary.kept + summary.embedded == 4
    assert not set(again.made) & set(dying.made[:summary.kept])  # nothing finished was redone
    assert not out.with_name(out.name + ".checkpoint.jsonl").exists()
    clean = tmp_path / f"clean.{suffix}"
    run_embed(embedder, EmbedJob(out=clean, progress=False), [card])
    got, want = rows(out), rows(clean)
    assert sorted(got) == sorted(want)
    assert all(np.allclose(got[k], want[k], atol=1e-6) for k in want)


def test_a_killed_extension_keeps_the_outputs_rows_and_its_own(embedder, card, photo_dir, tmp_path):
    out = tmp_path / "e.npy"
    run_embed(embedder, EmbedJob(out=out, progress=False), [card])
    first = np.load(out)
    for name in NAMES[4:]:
        shutil.copy(photo_dir / f"{name}.jpg", card)
    with pytest.raises(KeyboardInterrupt):
        run_embed(embedder, EmbedJob(out=out, progress=False, resume=True, checkpoint_images=1), [card], engine=DiesAfter(1))
    summary = run_embed(embedder, EmbedJob(out=out, progress=False, resume=True), [card])
    assert summary.kept == 5 and summary.embedded == 1  # 4 from the output + 1 from the checkpoint
    now = np.load(out)
    assert now.shape[0] == 6 and now[:4].tobytes() == first.tobytes()


def test_a_killed_overwrite_does_not_bring_back_the_replaced_rows(embedder, card, tmp_path):
    out = tmp_path / "e.npy"
    run_embed(embedder, EmbedJob(out=out, progress=False), [card / "astronaut.jpg"])
    with pytest.raises(KeyboardInterrupt):
        run_embed(embedder, EmbedJob(out=out, progress=False, overwrite=True, checkpoint_images=1), [card / "rocket.jpg", card / "coffee.jpg"],
                  engine=DiesAfter(1))
    run_embed(embedder, EmbedJob(out=out, progress=False, resume=True), [card / "rocket.jpg", card / "coffee.jpg"])
    assert sorted(Path(p).name for p in rows(out)) == ["coffee.jpg", "rocket.jpg"]

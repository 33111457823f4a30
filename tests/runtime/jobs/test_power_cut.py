"""Power cuts, tested: ``bioclip-edge classify`` is killed with SIGKILL at random moments (seeded),
then ``--resume``d until it finishes, and its output must equal an uninterrupted run's: same rows,
same order, same scores, in every format.

Kills land at named points (``jobs.faults``: a result arrived while the next images decode, half a
checkpoint line written, the checkpoint flushed but not fsync'd, a new checkpoint not yet renamed,
part of the output written, the output written but not renamed, renamed but the checkpoint not yet
removed), at a random count of each, and at purely random times. Some trials are killed again
during the resume. Five trials run in the default suite; twenty as a slow test.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from tests.helpers.image_factory import PHOTOS, photo

FORMATS = {"megadetector": "json", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
N_IMAGES = 24
# a trial's first kill takes these in turn (the default suite's five trials the first five), its second one at random
POINTS = ("checkpoint-append", "result", "output-write", "checkpoint-sync", "output-rename", "random-time",
          "checkpoint-create", "output-renamed")
MAX_NTH = {"result": N_IMAGES, "checkpoint-append": N_IMAGES, "output-write": N_IMAGES}  # else 1: reached once per run
CLI = [sys.executable, "-c", "import sys; from bioclip_edge.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def card(tmp_path_factory) -> Path:
    """24 small real photos: crops of the sample photos at several sizes (each its own prediction)."""
    folder = tmp_path_factory.mktemp("powercut") / "card"
    folder.mkdir()
    for i in range(N_IMAGES):
        image = photo(PHOTOS[i % len(PHOTOS)]).convert("RGB")
        w, h = image.size
        box = (i * 7 % (w // 3), i * 5 % (h // 3), w - i * 3 % (w // 4), h - i * 11 % (h // 4))
        image.crop(box).resize((96 + 8 * (i % 5), 80 + 8 * (i % 3))).save(folder / f"IMG_{i:04d}.jpg", quality=90)
    return folder


def args(bundle: Path, card: Path, out: Path, *extra: str) -> list[str]:
    return ["classify", str(bundle), str(card), "--out", str(out), "--no-progress", "--relative-paths",
            "--labels", "lion,leopard,zebra,empty savanna", "--top-k", "3", "--precision", "fp32", "--backend", "onnxruntime",
            "--model-threads", "1", "--batch-size", "4", "--threads", "0", "--checkpoint-every", "3", *extra]


def run(command: list[str], kill_at: str | None = None, kill_after: float | None = None) -> int:
    """The CLI in a child process; killed at a named point (``BIOCLIP_EDGE_KILL_AT``) or after a delay."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    env.pop("BIOCLIP_EDGE_KILL_AT", None)
    if kill_at:
        env["BIOCLIP_EDGE_KILL_AT"] = kill_at
    proc = subprocess.Popen(CLI + command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return proc.returncode


def content(path: Path, fmt: str):
    """What must be identical: every byte of CSV / JSON Lines; MegaDetector JSON but for its completion
    times; a Parquet file's rows and metadata."""
    if fmt == "megadetector":
        doc = json.loads(path.read_text())
        for key in ("classification_completion_time", "detection_completion_time"):
            doc["info"].pop(key)
        return doc
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.to_pylist(), table.schema.metadata
    return path.read_bytes()


@pytest.fixture(scope="module")
def uninterrupted(tiny_bundle, card, tmp_path_factory) -> dict[str, Path]:
    """Each format written by one run that nothing interrupts (in this process: the fixed precision,
    threads and batch make runs in any process give the same bytes)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    outs = {fmt: folder / f"p.{suffix}" for fmt, suffix in FORMATS.items()}
    for out in outs.values():
        assert cli_main(args(tiny_bundle, card, out)) == 0
    return outs


def kill_plan(rng: random.Random, fmt: str, point: str | None = None) -> tuple[str | None, float | None]:
    point = point or rng.choice(POINTS)
    if point == "random-time":
        return None, rng.uniform(0.3, 3.0)  # start-up, decoding, classifying or writing, as it falls
    most = 1 if (point, fmt) == ("output-write", "parquet") else MAX_NTH.get(point, 1)  # one row group of 24
    return f"{point}:{rng.randint(1, most)}", None


def trial(seed: int, bundle: Path, card: Path, uninterrupted: dict[str, Path], tmp_path: Path) -> None:
    rng = random.Random(seed)
    fmt = list(FORMATS)[seed % len(FORMATS)]
    out = tmp_path / f"s{seed}" / f"p.{FORMATS[fmt]}"
    out.parent.mkdir()
    kills = [kill_plan(rng, fmt, POINTS[seed % len(POINTS)])] + ([kill_plan(rng, fmt)] if rng.random() < 0.5 else [])
    history = []
    for i, (point, delay) in enumerate(kills):
        history.append((point or f"after {delay:.1f} s", run(args(bundle, card, out, *(["--resume"] if i else [])), point, delay)))
    if kills[0][0]:
        assert history[0][1] == -signal.SIGKILL, history  # every named point is reached by a fresh run
    assert cli_main(args(bundle, card, out, "--resume")) == 0, history  # the last resume, here: saves a start-up
    assert content(out, fmt) == content(uninterrupted[fmt], fmt), (fmt, history)
    assert not checkpoint_path(out).exists()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name], history  # killed runs' temporary files cleared


@pytest.mark.parametrize("seed", range(5))
def test_killed_runs_resume_to_the_uninterrupted_output(tiny_bundle, card, uninterrupted, tmp_path, seed):
    trial(seed, tiny_bundle, card, uninterrupted, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 120))
def test_twenty_power_cuts(tiny_bundle, card, uninterrupted, tmp_path, seed):
    trial(seed, tiny_bundle, card, uninterrupted, tmp_path)

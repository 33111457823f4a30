"""Every command that writes, on a disk that fills: exit code 3, one error line naming the file and
the space, no traceback, no temporary file left, the last good checkpoint kept; once there is room,
``--resume`` (or the same command again) finishes with nothing lost and nothing done twice, and
the output is byte for byte what an uninterrupted run writes.

Disks are real small tmpfs mounts where this machine allows them, else a fault-injecting file
layer (tests/helpers/full_disk.py); one classify run uses the injected layer everywhere."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from tests.helpers.full_disk import disk_of_kind

LABELS = "lion,leopard,empty savanna"
PINNED = ["--precision", "fp32", "--backend", "onnxruntime", "--batch-size", "2", "--threads", "0", "--no-progress"]
SUFFIX = {"megadetector": "json", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


@pytest.fixture
def disk(tmp_path, monkeypatch):
    """A real tmpfs where this machine allows one, else the fault-injecting layer."""
    with disk_of_kind("best", tmp_path / "disk", monkeypatch) as d:
        yield d


@pytest.fixture
def injected_disk(tmp_path, monkeypatch):
    with disk_of_kind("injected", tmp_path / "disk", monkeypatch) as d:
        yield d


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    folder = tmp_path / "card"
    shutil.copytree(photo_dir, folder)
    return folder


def classify(bundle, card, out, *extra) -> int:
    return cli_main(["classify", str(bundle), str(card), "--out", str(out), "--relative-paths", "--labels", LABELS,
                     "--top-k", "2", "--checkpoint-every", "2", *PINNED, *extra])


def error_line(err: str, target_folder: Path) -> str:
    """The one error line: the last line, naming a file on the full disk; no traceback anywhere."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err
    assert str(target_folder) in lines[0], lines[0]
    return lines[0]


def checkpoint_rows(path: Path) -> int:
    """Finished results in a checkpoint: its lines after the header that parse and name a file."""
    rows = 0
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        try:
            rows += "filepath" in json.loads(line)
        except json.JSONDecodeError:
            pass
    return rows


def comparable(path: Path, fmt: str):
    """The output's bytes; a MegaDetector file's document less its completion times (the clock's, not the run's)."""
    if fmt != "megadetector":
        return path.read_bytes()
    doc = json.loads(path.read_text(encoding="utf-8"))
    for key in ("classification_completion_time", "detection_completion_time"):
        doc["info"].pop(key)
    return doc


@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_classify_on_a_full_disk_then_resume(tiny_bundle, card, disk, tmp_path, capsys, fmt):
    full_disk_then_resume(tiny_bundle, card, disk, tmp_path, capsys, fmt)


def test_classify_on_an_injected_full_disk(tiny_bundle, card, injected_disk, tmp_path, capsys):
    """The fault-injecting layer, also where a tmpfs runs the test above."""
    full_disk_then_resume(tiny_bundle, card, injected_disk, tmp_path, capsys, "csv")


def full_disk_then_resume(tiny_bundle, card, disk, tmp_path, capsys, fmt):
    reference = tmp_path / "reference" / f"p.{SUFFIX[fmt]}"
    assert classify(tiny_bundle, card, reference) == 0
    out = disk.folder / f"p.{SUFFIX[fmt]}"
    capsys.readouterr()
    disk.leave(1)  # room for the first checkpoints, not for all of them and the output
    assert classify(tiny_bundle, card, out) == 3
    line = error_line(capsys.readouterr().err, disk.folder)
    assert "no space left on the disk" in line and "then run the same command again with --resume" in line
    assert f"cannot write {out}" in line  # the output, or its checkpoint journal beside it, by name
    assert not out.exists() and disk.leftovers() == []
    kept = checkpoint_rows(checkpoint_path(out))  # the last good checkpoint
    assert 0 < kept <= 6
    disk.leave(0)  # --resume before any space was freed: the same message, the checkpoint as it was
    assert classify(tiny_bundle, card, out, "--resume") == 3
    assert "no space left" in error_line(capsys.readouterr().err, disk.folder)
    assert checkpoint_rows(checkpoint_path(out)) == kept and disk.leftovers() == []

    disk.make_room()
    assert classify(tiny_bundle, card, out, "--resume") == 0
    summary = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("classified"))
    new = int(re.search(r"classified (\d+) image", summary)[1])
    assert new == 6 - kept and (f"kept {kept} done before" in summary or kept == 0), summary  # nothing done twice
    assert comparable(out, fmt) == comparable(reference, fmt)  # nothing lost: as if it had never stopped
    assert not checkpoint_path(out).exists()


@pytest.mark.parametrize("suffix", ["npy", "parquet"])
def test_embed_on_a_full_disk_then_resume(tiny_bundle, card, disk, tmp_path, capsys, suffix):
    def embed(out, *extra):
        return cli_main(["embed", str(tiny_bundle), str(card), "--out", str(out), "--relative-paths",
                         "--checkpoint-every", "2", *PINNED, *extra])

    reference = tmp_path / "reference" / f"e.{suffix}"
    assert embed(reference) == 0
    out = disk.folder / f"e.{suffix}"
    capsys.readouterr()
    disk.leave(1)
    assert embed(out) == 3
    line = error_line(capsys.readouterr().err, disk.folder)
    assert "no space left" in line and "--resume" in line
    assert not out.exists() and disk.leftovers() == []
    disk.make_room()
    assert embed(out, "--resume") == 0
    capsys.readouterr()
    if suffix == "npy":
        assert np.array_equal(np.load(out), np.load(reference))
        index, ref_index = (json.loads(p.with_suffix(".json").read_text()) for p in (out, reference))
        assert index["images"] == ref_index["images"]
    else:
        import pyarrow.parquet as pq

        assert pq.read_table(out).equals(pq.read_table(reference))


# --- labels, preview, evaluate: one output each, written whole -------------------------------------
def _labels_inputs(tmp_path: Path, card: Path) -> tuple[Path, Path]:
    text = tmp_path / "labels.txt"
    text.write_text(LABELS.replace(",", "\n") + "\n")
    examples = tmp_path / "examples"
    for label, names in {"lion": ("chelsea", "astronaut"), "leopard": ("coffee", "rocket")}.items():
        (examples / label).mkdir(parents=True)
        for name in names:
            shutil.copy(card / f"{name}.jpg", examples / label)
    return text, examples


def _label_commands(bundle: Path, text: Path, examples: Path, base: Path, out: Path) -> dict[str, list[str]]:
    return {
        "build": ["labels", "build", str(bundle), "--from", str(text), "--out", str(out)],
        "subset": ["labels", "subset", str(base), "--where", "name=lion", "--out", str(out)],
        "adapt": ["labels", "adapt", str(bundle), "--examples", str(examples), "--base", str(base), "--out", str(out),
                  "--precision", "fp32"],
    }


@pytest.mark.parametrize("action", ["build", "subset", "adapt"])
def test_labels_on_a_full_disk(tiny_bundle, card, disk, tmp_path, capsys, action):
    text, examples = _labels_inputs(tmp_path, card)
    base = tmp_path / "base.npz"
    assert cli_main(_label_commands(tiny_bundle, text, examples, base, base)["build"]) == 0
    out = disk.folder / "labels" / "out.npz"
    command = _label_commands(tiny_bundle, text, examples, base, out)[action]
    capsys.readouterr()
    disk.leave(0)
    assert cli_main(command) == 3
    line = error_line(capsys.readouterr().err, disk.folder)
    assert "no space left on the disk" in line and "then run the same command again" in line
    assert not out.exists() and disk.leftovers() == []
    disk.make_room()
    assert cli_main(command) == 0
    assert out.is_file()


@pytest.fixture
def predictions(tiny_bundle, card, tmp_path) -> Path:
    out = tmp_path / "predictions" / "p.csv"
    assert classify(tiny_bundle, card, out) == 0
    return out


def test_preview_on_a_full_disk(predictions, card, disk, capsys):
    site = disk.folder / "site"
    command = ["preview", str(predictions), "--out", str(site), "--image-root", str(card), "--no-progress"]
    disk.leave(2)  # a few thumbnails fit, not the whole site
    assert cli_main(command) == 3
    line = error_line(capsys.readouterr().err, disk.folder)
    assert "no space left" in line and disk.leftovers() == []
    disk.make_room()
    assert cli_main(command) == 0
    assert (site / "index.html").is_file()


def test_evaluate_on_a_full_disk(predictions, card, disk, tmp_path, capsys):
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as fh:
        rows = csv.writer(fh)
        rows.writerow(["filepath", "label"])
        rows.writerows([[f"card/{p.name}", "lion" if i % 2 else "leopard"] for i, p in enumerate(sorted(card.iterdir()))])
    report = disk.folder / "eval"
    command = ["evaluate", str(predictions), "--truth", str(truth), "--image-root", str(card), "--out", str(report)]
    disk.leave(0)
    assert cli_main(command) == 3
    line = error_line(capsys.readouterr().err, disk.folder)
    assert "no space left" in line and disk.leftovers() == []
    disk.make_room()
    assert cli_main(command + ["--overwrite"]) == 0
    assert (report / "metrics.json").is_file()


def test_the_installed_command_on_a_full_tmpfs(tiny_bundle, card, tmp_path):
    """The real entry point in its own process: exit status 3, the error the last line of stderr."""
    import subprocess
    import sys

    from tests.helpers.full_disk import fill, small_tmpfs

    with small_tmpfs(tmp_path / "disk", 256 << 10) as disk:
        fill(disk, 0)
        out = disk / "p.csv"
        done = subprocess.run([sys.executable, "-m", "bioclip_edge.cli", "classify", str(tiny_bundle), str(card),
                               "--out", str(out), "--labels", LABELS, *PINNED], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"bioclip-edge classify: error: cannot write {disk}")

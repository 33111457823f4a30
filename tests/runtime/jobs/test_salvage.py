"""Damaged outputs and checkpoints are salvaged: ``--resume`` keeps every intact row, says what was
damaged (file, line or byte offset, rows lost), does again only the images whose rows were lost and
writes a clean output, identical to an undamaged run's. A file from another tool, from an earlier
version and a damaged file get three different messages."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.jobs.checkpoint import checkpoint_path
from tests.helpers.md_validation import assert_md_valid

SUFFIX = {"megadetector": "json", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}


@pytest.fixture(scope="module")
def card(photo_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("salvage") / "card"
    folder.mkdir()
    for path in sorted(photo_dir.glob("*.jpg")):
        shutil.copy(path, folder)
    return folder


def classify(bundle, card, out, *extra) -> int:
    return cli_main(["classify", str(bundle), str(card), "--out", str(out), "--no-progress", "--relative-paths",
                     "--labels", "lion,leopard,empty savanna", "--top-k", "2", "--precision", "fp32",
                     "--backend", "onnxruntime", *extra])


@pytest.fixture(scope="module")
def clean(tiny_bundle, card, tmp_path_factory) -> dict[str, Path]:
    """An undamaged output per format: what a salvaged one must equal."""
    folder = tmp_path_factory.mktemp("clean")
    outs = {}
    for fmt, suffix in SUFFIX.items():
        outs[fmt] = folder / f"p.{suffix}"
        assert classify(tiny_bundle, card, outs[fmt]) == 0
    return outs


def rows_of(path: Path, fmt: str) -> list:
    """The output's rows in order (MegaDetector: its images; the info block carries a time)."""
    if fmt == "megadetector":
        return assert_md_valid(path)["images"]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return path.read_text().splitlines()


def cut_at(path: Path, fraction: float) -> int:
    data = path.read_bytes()
    size = int(len(data) * fraction)
    path.write_bytes(data[:size])
    return size


def cut_mid_row(path: Path) -> None:
    """Cut the file half-way through its last row (an interrupted copy)."""
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    path.write_bytes(data[: last + 1 + (len(data) - last) // 2])


DAMAGES = {
    "csv-trailing-garbage": ("csv", lambda p: p.write_bytes(p.read_bytes() + b"\x00\x17garbled,by,a,card\n")),
    "csv-cut-mid-row": ("csv", cut_mid_row),
    "csv-garbled-middle-row": ("csv", lambda p: _garble_line(p, 3)),
    "jsonl-trailing-garbage": ("jsonl", lambda p: p.write_bytes(p.read_bytes() + b'{"filepath": "x.jpg", "pred\n')),
    "jsonl-cut-mid-row": ("jsonl", cut_mid_row),
    "megadetector-cut-short": ("megadetector", lambda p: cut_at(p, 0.6)),
    "parquet-cut-footer": ("parquet", lambda p: cut_at(p, 0.85)),
    "parquet-garbled-footer": ("parquet", lambda p: _garble_tail(p, 300)),
}


def _garble_line(path: Path, number: int) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = lines[number - 1][:10] + b"\xff\xfe" + lines[number - 1][25:]
    path.write_bytes(b"\n".join(lines))


def _garble_tail(path: Path, n: int) -> None:
    data = bytearray(path.read_bytes())
    data[-n:-8] = bytes(len(data[-n:-8]))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_resume_salvages_a_damaged_output(tiny_bundle, card, clean, tmp_path, capsys, case):
    fmt, damage = DAMAGES[case]
    out = tmp_path / f"p.{SUFFIX[fmt]}"
    shutil.copy(clean[fmt], out)
    damage(out)
    capsys.readouterr()
    assert classify(tiny_bundle, card, out, "--resume") == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("note:")]
    assert notes and str(out) in notes[0] and "damaged" in notes[0], captured.err
    assert re.search(r"(line|byte|row group)s? \d+", notes[0]), notes[0]  # where
    assert "fingerprint" not in captured.err  # not called a file of another version
    summary = captured.out
    new = int(re.search(r"classified (\d+) image", summary).group(1))
    kept = int(re.search(r"kept (\d+) done before", summary).group(1))
    assert kept >= 1 and new + kept == 6  # only what was lost is done again
    assert (new == 0) == ("trailing" in case or "footer" in case)  # damage after the last row (a footer) lost no image
    assert rows_of(out, fmt) == rows_of(clean[fmt], fmt)  # a clean output, as an undamaged run writes it
    assert not checkpoint_path(out).exists()


def test_three_cases_three_messages(tiny_bundle, card, clean, tmp_path, capsys):
    theirs, older, damaged = tmp_path / "theirs.csv", tmp_path / "older.csv", tmp_path / "damaged.csv"
    theirs.write_text("file,species\na.jpg,lion\n")
    text = clean["csv"].read_text().splitlines()
    run = text[0].split(",").index("run")
    older.write_text("\n".join(",".join(line.split(",")[:run]) for line in text) + "\n")  # no run column
    shutil.copy(clean["csv"], damaged)
    cut_mid_row(damaged)
    messages = []
    for path in (theirs, older, damaged):
        capsys.readouterr()
        code = classify(tiny_bundle, card, path, "--resume")
        messages.append((code, capsys.readouterr().err))
    assert messages[0][0] == 2 and "not written by bioclip-edge" in messages[0][1] and "earlier" not in messages[0][1]
    assert messages[1][0] == 2 and "earlier bioclip-edge" in messages[1][1] and "damaged" not in messages[1][1]
    assert messages[2][0] == 0 and "damaged" in messages[2][1] and "earlier" not in messages[2][1]
    assert "not written" not in messages[2][1]


def test_a_damaged_checkpoint_keeps_every_intact_line(tiny_bundle, card, clean, tmp_path, capsys, monkeypatch):
    out = tmp_path / "p.jsonl"
    from bioclip_edge.runtime.jobs import checkpoint as ck

    original = ck.Checkpoint.add
    calls = {"n": 0}

    def add_then_die(self, record):
        original(self, record)
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ck.Checkpoint, "add", add_then_die)
        assert classify(tiny_bundle, card, out) == 130
    journal = checkpoint_path(out)
    lines = journal.read_bytes().split(b"\n")
    assert len(lines) == 1 + 5 + 1  # header, five results, the end
    lines[2] = b'{"filepath": "garbled\x00'  # line 3 damaged on disk
    journal.write_bytes(b"\n".join(lines[:-2]) + b"\n" + lines[-2][: len(lines[-2]) // 2])  # line 6 torn
    capsys.readouterr()
    assert classify(tiny_bundle, card, out, "--resume") == 0
    captured = capsys.readouterr()
    assert "line 3" in captured.err and "line 6" in captured.err and str(journal) in captured.err
    assert "kept 3 done before" in captured.out and "classified 3 image" in captured.out
    assert rows_of(out, "jsonl") == rows_of(clean["jsonl"], "jsonl")


def test_a_damaged_checkpoint_header_is_not_called_another_tools(tiny_bundle, card, tmp_path, capsys):
    out = tmp_path / "p.csv"
    checkpoint_path(out).write_text('{"checkpoint": {"fingerprint_ver\n{"filepath": "a.jpg", "predictions": []}\n')
    assert classify(tiny_bundle, card, out, "--resume") == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "damaged" in err and "not a bioclip-edge checkpoint" not in err
    checkpoint_path(out).write_text("hello\n")
    assert classify(tiny_bundle, card, out, "--resume") == 2
    assert "not a bioclip-edge checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["npy-cut-mid-row", "index-cut-short"])
def test_embed_salvages_a_damaged_pair(tiny_bundle, card, tmp_path, capsys, damage):
    args = ["embed", str(tiny_bundle), str(card), "--no-progress", "--relative-paths", "--precision", "fp32",
            "--backend", "onnxruntime"]
    clean, out = tmp_path / "clean.npy", tmp_path / "e.npy"
    assert cli_main([*args, "--out", str(clean)]) == 0
    assert cli_main([*args, "--out", str(out)]) == 0
    if damage == "npy-cut-mid-row":
        size = out.stat().st_size
        with open(out, "r+b") as fh:
            fh.truncate(size - 2 * 4 * np.load(clean).shape[1] - 7)  # two rows and a bit of a third lost
    else:
        cut_at(out.with_suffix(".json"), 0.85)  # inside the image entries, after the first ones
    capsys.readouterr()
    assert cli_main([*args, "--out", str(out), "--resume"]) == 0
    captured = capsys.readouterr()
    assert "damaged" in captured.err and ("byte" in captured.err or "rows" in captured.err)
    kept = int(re.search(r"kept (\d+) done before", captured.out).group(1))
    assert 1 <= kept < 6
    got = dict(zip([im["filepath"] for im in json.loads(out.with_suffix(".json").read_text())["images"]], np.load(out)))
    want = dict(zip([im["filepath"] for im in json.loads(clean.with_suffix(".json").read_text())["images"]], np.load(clean)))
    assert sorted(got) == sorted(want)
    assert all(np.allclose(got[k], want[k], atol=1e-6) for k in want)

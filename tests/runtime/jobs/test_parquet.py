"""Parquet outputs: ``embed --out X.parquet`` and ``classify --out X.parquet`` (one row per image),
their metadata, ``--resume``, and the errors when pyarrow is missing or the file is foreign."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bioclip_edge.cli import main as cli_main

NAMES = ("astronaut", "chelsea", "coffee")


@pytest.fixture
def card(photo_dir, tmp_path) -> Path:
    folder = tmp_path / "card ü"  # a space and a non-ASCII letter: paths are data, not code
    folder.mkdir()
    for name in NAMES:
        shutil.copy(photo_dir / f"{name}.jpg", folder)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def embed(bundle, card, out, *extra) -> int:
    return cli_main(["embed", str(bundle), str(card), "--out", str(out), "--no-progress", "--precision", "fp32",
                     "--backend", "onnxruntime", *extra])


def test_embed_parquet_has_one_row_per_image_and_matches_the_npy(tiny_bundle, card, tmp_path):
    assert embed(tiny_bundle, card, tmp_path / "e.parquet") == 1  # one image failed
    assert embed(tiny_bundle, card, tmp_path / "e.npy") == 1
    table = pq.read_table(tmp_path / "e.parquet")
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 32)
    rows = table.to_pylist()
    assert [Path(r["filepath"]).name for r in rows] == [f"{n}.jpg" for n in NAMES] + ["broken.jpg"]
    assert rows[-1]["embedding"] is None and "not an image" in rows[-1]["failure"]
    assert all(r["failure"] is None and r["width"] > 0 for r in rows[:3])
    vectors = np.array([r["embedding"] for r in rows[:3]], np.float32)
    assert np.array_equal(vectors, np.load(tmp_path / "e.npy"))  # same numbers as the .npy, bit for bit
    meta = json.loads(table.schema.metadata[b"bioclip_edge"])
    assert meta["dim"] == 32 and meta["engine"] == "local" and meta["run_fingerprint"]["dtype"] == "float32"


def test_embed_parquet_resume_keeps_rows_and_retries_failures(tiny_bundle, card, photo_dir, tmp_path, capsys):
    out = tmp_path / "e.parquet"
    assert embed(tiny_bundle, card, out) == 1
    first = pq.read_table(out).to_pylist()
    shutil.copy(photo_dir / "rocket.jpg", card / "broken.jpg")  # the broken file is fixed
    shutil.copy(photo_dir / "colorwheel.jpg", card)  # and a new image arrives
    capsys.readouterr()
    assert embed(tiny_bundle, card, out, "--resume") == 0
    assert "kept 3 done before" in capsys.readouterr().out
    now = pq.read_table(out).to_pylist()
    assert now[:3] == first[:3]  # kept rows unchanged, in their places
    assert sorted(Path(r["filepath"]).name for r in now[3:]) == ["broken.jpg", "colorwheel.jpg"]
    assert all(r["failure"] is None for r in now)
    assert embed(tiny_bundle, card, out, "--resume", "--dtype", "float16") == 2  # another dtype: refused
    assert "--dtype" in capsys.readouterr().err


def test_float16_parquet_embeddings(tiny_bundle, card, tmp_path):
    out = tmp_path / "e16.parquet"
    assert embed(tiny_bundle, card, out, "--dtype", "float16") == 1
    assert pq.read_table(out).schema.field("embedding").type == pa.list_(pa.float16(), 32)


def test_classify_parquet_columns(tiny_bundle, card, tmp_path):
    out = tmp_path / "p.parquet"
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", "lion,leopard,empty savanna", "--top-k", "2",
                     "--out", str(out), "--no-progress"]) == 1
    table = pq.read_table(out)
    rows = {Path(r["filepath"]).name: r for r in table.to_pylist()}
    assert len(rows) == 4 and rows["broken.jpg"]["labels"] == [] and rows["broken.jpg"]["failure"]
    good = rows["astronaut.jpg"]
    assert len(good["labels"]) == 2 and good["scores"][0] >= good["scores"][1] and good["failure"] is None
    assert json.loads(good["record"])["predictions"][0]["label"] == good["labels"][0]
    meta = json.loads(table.schema.metadata[b"bioclip_edge"])
    assert meta["top_k"] == 2 and "run_fingerprint" in meta and good["run"]


def test_a_foreign_parquet_file_is_not_extended(tiny_bundle, card, tmp_path, capsys):
    out = tmp_path / "theirs.parquet"
    pq.write_table(pa.table({"filepath": ["a.jpg"]}), out)
    assert embed(tiny_bundle, card, out, "--resume") == 2
    assert "not written by bioclip-edge" in capsys.readouterr().err
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", "a,b", "--out", str(out), "--resume"]) == 2
    assert "not written by bioclip-edge" in capsys.readouterr().err
    assert pq.read_table(out).column_names == ["filepath"]  # left as it was


def test_parquet_without_pyarrow_is_refused_before_any_work(tiny_bundle, card, tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    assert embed(tiny_bundle, card, tmp_path / "e.parquet") == 2
    assert 'pip install "bioclip-edge[parquet]"' in capsys.readouterr().err
    assert cli_main(["classify", str(tiny_bundle), str(card), "--labels", "a,b", "--out", str(tmp_path / "p.parquet")]) == 2
    assert 'pip install "bioclip-edge[parquet]"' in capsys.readouterr().err
    assert not list(tmp_path.glob("*.parquet"))

"""make demo's second part: the small trained model through the same classify step, on held-out
crops, printing right top-1 labels and saying which model made them."""

from __future__ import annotations

import shutil

from bioclip_edge import demo


def test_the_demo_shows_right_answers_from_the_trained_model(tmp_path, trained_fp32_bundle, capsys):
    out = tmp_path / "demo-out"
    shutil.copytree(trained_fp32_bundle, out / "trained-tiny")  # reused as `make demo` reuses its bundles
    code = demo.main(["--out", str(out), "--skip-bioclip"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "reusing" in printed and "small TRAINED model (tests/data/trained-tiny" in printed
    rows = [line for line in printed.splitlines() if line.strip().endswith("[right]") or "[WRONG" in line]
    assert len(rows) == 16
    right = sum(line.strip().endswith("[right]") for line in rows)
    assert right >= 14, printed  # 15 of 16 on the reference machine; chance is 1 in 15
    assert f"top-1 right on {right} of 16 held-out crops" in printed
    assert "00-astronaut.jpg: a photo of an astronaut" in printed


def test_without_the_trained_model_the_demo_says_so(tmp_path, capsys):
    code = demo.main(["--out", str(tmp_path), "--skip-bioclip", "--trained-model", str(tmp_path / "absent")])
    assert code == 0
    assert "skipped: no trained model at" in capsys.readouterr().out

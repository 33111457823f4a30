"""The evaluation's parts on their own: metrics against scikit-learn on awkward labels, path
matching, the error messages (exit 2) and a report without matplotlib."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from bioclip_edge.cli import main
from bioclip_edge.runtime.evaluation import plots
from bioclip_edge.runtime.evaluation.matching import match
from bioclip_edge.runtime.evaluation.metrics import compute
from bioclip_edge.runtime.evaluation.ranks import Names
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.labels.taxonomy import TaxonomyError


@pytest.mark.parametrize("seed", range(5))
def test_metrics_equal_scikit_learn_with_unpredicted_and_untrue_classes(seed):
    rng = np.random.default_rng(seed)
    truth = [f"t{i}" for i in rng.integers(0, 6, 60)]  # t5 is never predicted
    predicted = [f"t{i}" if rng.random() < 0.5 else f"t{rng.integers(0, 5)}" for i in rng.integers(0, 5, 60)]
    predicted[:3] = ["only-predicted"] * 3  # a label absent from the truth
    m = compute(truth, [[p] for p in predicted])
    labels = sorted(set(truth) | set(predicted))
    p, r, f, s = skm.precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = skm.balanced_accuracy_score(truth, predicted)
    assert m.labels == labels and m.k == 1
    assert m.top1 == pytest.approx(skm.accuracy_score(truth, predicted)) and m.balanced_accuracy == pytest.approx(balanced)
    assert m.macro_f1 == pytest.approx(skm.f1_score(truth, predicted, average="macro", zero_division=0))
    assert np.allclose([c.precision for c in m.classes], p) and np.allclose([c.recall for c in m.classes], r)
    assert np.allclose([c.f1 for c in m.classes], f) and [c.support for c in m.classes] == list(s)
    assert (m.confusion == skm.confusion_matrix(truth, predicted, labels=labels)).all()


def test_paths_match_exactly_then_by_a_tail_only_one_file_has(tmp_path):
    truth = [str(tmp_path / "t" / x) for x in ("lion/a.jpg", "cam1/IMG_1.JPG", "cam2/IMG_1.JPG", "zebra/b.jpg")]
    pairs = match([truth[0], "cam1/IMG_1.JPG", "IMG_1.JPG", "elsewhere/zebra/b.jpg"], truth, tmp_path / "out")
    assert pairs.pairs == [(0, truth[0]), (1, truth[1]), (3, truth[3])]
    assert pairs.unmatched_predictions == [2] and pairs.unmatched_truth == [truth[2]]  # IMG_1.JPG alone is ambiguous


def _error(capsys, *args: object) -> str:
    assert main(["evaluate", *map(str, args)]) == 2
    return capsys.readouterr().err


def test_bad_inputs_are_named_with_what_to_do(eval_runs, tmp_path, capsys):
    out = tmp_path / "r"
    assert "no such file or folder" in _error(capsys, eval_runs.csv, "--truth", tmp_path / "nope", "--out", out)
    (tmp_path / "bad.csv").write_text("path,species\na.jpg,lion\n")
    assert "no 'filepath' and 'label' columns" in _error(capsys, eval_runs.csv, "--truth", tmp_path / "bad.csv", "--out", out)
    (tmp_path / "notes.txt").write_text("hello\n")
    assert "not a bioclip-edge or MegaDetector output" in _error(capsys, tmp_path / "notes.txt", "--truth", eval_runs.truth, "--out", out)
    detector = eval_runs.truth.parent / "md.json"
    assert "holds no classifications" in _error(capsys, detector, "--truth", eval_runs.truth, "--out", out)
    (tmp_path / "other" / "lion").mkdir(parents=True)
    (tmp_path / "other" / "lion" / "x.png").write_bytes(b"")
    assert "share no file" in _error(capsys, eval_runs.csv, "--truth", tmp_path / "other", "--out", out)
    assert "unknown rank 'tribe'" in _error(capsys, eval_runs.csv, "--truth", eval_runs.truth, "--out", out, "--rank", "tribe")
    assert "pass --labels" in _error(capsys, eval_runs.csv, "--truth", eval_runs.truth, "--out", out, "--rank", "genus")
    other = LabelMatrix.from_embeddings(np.eye(2, 4, dtype=np.float32), ["lion", "zebra"], {"embed_dim": 4}, "plain")
    other.save(tmp_path / "other.npz")
    assert "pass the label matrix classify used" in _error(capsys, eval_runs.csv, "--truth", eval_runs.truth, "--out", out,
                                                           "--labels", tmp_path / "other.npz")
    assert "--target-precision" in _error(capsys, eval_runs.csv, "--truth", eval_runs.truth, "--out", out, "--target-precision", "2")


def test_an_earlier_report_is_replaced_only_with_overwrite(eval_runs, tmp_path, capsys):
    args = [eval_runs.csv, "--truth", eval_runs.truth, "--out", tmp_path]
    assert main(["evaluate", *map(str, args)]) == 0
    assert "pass --overwrite" in _error(capsys, *args)
    assert main(["evaluate", *map(str, args), "--overwrite"]) == 0
    (tmp_path / "file").write_text("")
    assert "is a file" in _error(capsys, eval_runs.csv, "--truth", eval_runs.truth, "--out", tmp_path / "file")


def test_without_matplotlib_everything_else_is_written(eval_runs, tmp_path, capsys, monkeypatch):
    def missing():
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(plots, "_figure_class", missing)
    assert main(["evaluate", str(eval_runs.parquet), "--truth", str(eval_runs.truth), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.md"]
    assert "bioclip-edge[profiling]" in capsys.readouterr().out
    assert "Plots skipped" in (tmp_path / "report.md").read_text()
    csv_report = tmp_path / "csv"
    assert main(["evaluate", str(eval_runs.csv), "--truth", str(eval_runs.truth), "--out", str(csv_report)]) == 0
    parquet, csv = (json.loads((p / "metrics.json").read_text()) for p in (tmp_path, csv_report))
    assert parquet["format"] == "parquet" and parquet["confusion_matrix"] == csv["confusion_matrix"]  # the same run's labels
    assert (parquet["top5_accuracy"], parquet["macro_f1"]) == pytest.approx((csv["top5_accuracy"], csv["macro_f1"]))


def test_help_is_light_and_the_evaluation_needs_no_torch_or_matplotlib_to_import():
    code = ("import sys, argparse; from bioclip_edge.runtime.cli import evaluate; evaluate.add_arguments(argparse.ArgumentParser()); "
            "light = [m for m in ('numpy', 'onnxruntime') if m in sys.modules]; "
            "import bioclip_edge.runtime.evaluation.evaluate; "
            "print(light, [m for m in ('torch', 'open_clip', 'matplotlib', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"


def test_names_match_binomials_and_taxa_and_roll_scores_up():
    names = Names.from_descriptions(["lion", "leopard", "blank"], {"lion": "mammalia;carnivora;felidae;panthera;leo",
                                                                    "leopard": "mammalia;carnivora;felidae;panthera;pardus"}, "md")
    assert names.canonical("PANTHERA LEO") == "lion" and names.canonical("Lion") == "lion" and names.canonical("okapi") == "okapi"
    assert names.taxon("Panthera", "genus") == "panthera" and names.taxon("blank", "genus") == "blank"
    assert names.rolled(["lion", "blank", "leopard"], [0.5, 0.3, 0.2], "genus") == (["panthera", "blank"], [0.7, 0.3])
    with pytest.raises(TaxonomyError, match="pass --labels"):
        names.check_rank("kingdom")  # a MegaDetector description starts at class

"""``bioclip-edge evaluate`` on real classify outputs: every number equals scikit-learn's on the same
labels, read independently from the output files and the truth tree."""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from bioclip_edge.cli import main
from tests.helpers.evaluation_runs import RELABELLED


def evaluate(*args: object) -> int:
    return main(["evaluate", *map(str, args)])


def truth_of(runs, path: str) -> str:
    """The truth label of an output's file path, as the model names it (folder names in other cases)."""
    label = runs.labels[str((runs.truth / path).resolve())]
    return label.lower() if label.lower().startswith("a photo of") else label


def csv_rows(path: Path) -> dict[str, tuple[list[str], list[float]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["filepath"]: ([r[f"label_{k}"] for k in range(1, 6)], [float(r[f"score_{k}"]) for k in range(1, 6)])
            for r in rows if not r.get("failure")}


def md_rows(path: Path) -> tuple[dict, dict[str, tuple[list[str], list[float]]]]:
    doc = json.loads(path.read_text())
    names = doc["classification_categories"]
    out = {}
    for image in doc["images"]:
        if image.get("failure"):
            continue
        pairs = image["detections"][0]["classifications"]
        out[image["file"]] = ([names[c] for c, _ in pairs], [s for _, s in pairs])
    return doc, out


def assert_sklearn(report: dict, y_true: list[str], ranked: list[list[str]], scores: list[list[float]]) -> None:
    y_pred = [r[0] for r in ranked]
    labels = sorted(set(y_true) | set(y_pred))
    assert report["images"] == len(y_true)
    assert report["top1_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about the predicted-only classes
        assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = report["per_class"]
    assert [c["label"] for c in per_class] == labels
    assert np.allclose([c["precision"] for c in per_class], p) and np.allclose([c["recall"] for c in per_class], r)
    assert np.allclose([c["f1"] for c in per_class], f) and [c["support"] for c in per_class] == list(s)
    assert report["confusion_matrix"]["rows_truth_columns_predicted"] == skm.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    classes = sorted(set(y_true) | {label for r in ranked for label in r})
    # a label the output did not keep is not in its top-k: below every kept one, the truth lowest (no lucky ties)
    y_score = np.array([[-1.0 - (c == t) for c in classes] for t in y_true])
    for row, (labels_i, scores_i) in enumerate(zip(ranked, scores)):
        for label, score in zip(labels_i, scores_i):
            y_score[row, classes.index(label)] = score
    assert report["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y_true, y_score, k=5, labels=classes))


def test_csv_output_against_a_folder_tree_equals_scikit_learn(eval_runs, tmp_path, capsys):
    rows = csv_rows(eval_runs.csv)
    assert evaluate(eval_runs.csv, "--truth", eval_runs.truth, "--out", tmp_path / "r", "--target-precision", "0.9") == 0
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    paired = [p for p in rows if p != "unlabelled.png"]
    assert_sklearn(report, [truth_of(eval_runs, p) for p in paired], [rows[p][0] for p in paired], [rows[p][1] for p in paired])
    assert 0.5 < report["top1_accuracy"] < 1  # the trained model is right often, not always
    assert report["truth_labels_the_model_cannot_predict"] == {RELABELLED[1]: 3}
    assert f"a photo of {RELABELLED[0]}" in [c["label"] for c in report["per_class"] if c["support"] == 0]
    assert report["predicted_files_without_truth"] == ["unlabelled.png"]
    assert [Path(f["filepath"]).name for f in report["failed"]] == ["broken.png"]
    assert report["truth_files_without_prediction"] == []
    for name in ("report.md", "confusion-matrix.png", "threshold-curve.png"):
        assert (tmp_path / "r" / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "top-1 accuracy" in printed and "macro-F1" in printed
    _check_thresholds(report, [rows[p][1][0] for p in paired],
                      [rows[p][0][0] == truth_of(eval_runs, p) for p in paired], 0.9)


def _check_thresholds(report: dict, scores: list[float], right: list[bool], target: float) -> None:
    s, r = np.array(scores), np.array(right)
    for point in report["thresholds"]["curve"]:
        kept = s >= point["threshold"]
        assert point["coverage"] == pytest.approx(kept.mean())
        assert point["precision"] == pytest.approx(r[kept].mean() if kept.any() else 0.0)
    reaching = [t for t in np.unique(s) if r[s >= t].mean() >= target]
    suggested = report["thresholds"]["suggested"]
    assert (suggested["threshold"] if suggested else None) == (pytest.approx(min(reaching)) if reaching else None)


def test_megadetector_output_with_a_truth_csv_and_a_rank_roll_up(eval_runs, tmp_path):
    doc, rows = md_rows(eval_runs.md)
    truth_csv = tmp_path / "truth.csv"
    files = [Path(p) for p in rows if Path(p).name != "unlabelled.png"]
    with open(truth_csv, "w", newline="", encoding="utf-8") as fh:  # paths relative to the CSV, and one file never classified
        out = csv.writer(fh)
        out.writerow(["filepath", "label"])
        out.writerows([(os.path.relpath(p, tmp_path), eval_runs.labels[str(p)]) for p in files])
        out.writerow(["missing/999.png", "a cat"])
    assert evaluate(eval_runs.md, "--truth", truth_csv, "--out", tmp_path / "species") == 0
    report = json.loads((tmp_path / "species" / "metrics.json").read_text())
    y_true = [truth_of(eval_runs, str(p)) for p in files]
    assert_sklearn(report, y_true, [rows[str(p)][0] for p in files], [rows[str(p)][1] for p in files])
    assert report["truth_files_without_prediction"] == [str((tmp_path / "missing" / "999.png").resolve())]

    assert evaluate(eval_runs.md, "--truth", truth_csv, "--out", tmp_path / "genus", "--rank", "genus") == 0
    report = json.loads((tmp_path / "genus" / "metrics.json").read_text())
    genus = {label: g.lower() for label, g in eval_runs.genus.items()}  # MegaDetector's descriptions are lower case
    rolled = [_rolled(rows[str(p)], genus) for p in files]
    assert_sklearn(report, [genus.get(t, t) for t in y_true], [r[0] for r in rolled], [r[1] for r in rolled])
    assert report["top1_accuracy"] >= skm.accuracy_score(y_true, [rows[str(p)][0][0] for p in files])


def _rolled(row: tuple[list[str], list[float]], genus: dict[str, str]) -> tuple[list[str], list[float]]:
    sums: dict[str, float] = {}
    for label, score in zip(*row):
        sums[genus[label]] = sums.get(genus[label], 0.0) + score
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])
    return [g for g, _ in ranked], [s for _, s in ranked]


def test_rank_roll_up_from_the_label_matrix(eval_runs, tmp_path):
    rows = csv_rows(eval_runs.csv)
    assert evaluate(eval_runs.csv, "--truth", eval_runs.truth, "--out", tmp_path, "--rank", "genus", "--labels", eval_runs.matrix,
                    "--overwrite") == 0
    report = json.loads((tmp_path / "metrics.json").read_text())
    paired = [p for p in rows if p != "unlabelled.png"]
    rolled = [_rolled(rows[p], eval_runs.genus) for p in paired]
    y_true = [eval_runs.genus.get(truth_of(eval_runs, p), truth_of(eval_runs, p)) for p in paired]
    assert_sklearn(report, y_true, [r[0] for r in rolled], [r[1] for r in rolled])


def test_detections_output_most_confident_box_or_blank(eval_runs, tmp_path):
    doc = json.loads(eval_runs.detections.read_text())
    names = doc["classification_categories"]
    truth_csv = tmp_path / "truth.csv"
    y_true, ranked, scores = [], [], []
    with open(truth_csv, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["filepath", "label"])
        for image in doc["images"]:
            full = (eval_runs.truth / image["file"]).resolve()
            boxes = [d for d in image["detections"] if d.get("classifications") and d["conf"] >= 0.5]
            label = eval_runs.labels[str(full)] if boxes else "Empty"  # a blank image, labelled as people do
            out.writerow([full, label])
            y_true.append(truth_of(eval_runs, image["file"]) if boxes else "blank")
            best = max(boxes, key=lambda d: d["conf"])["classifications"] if boxes else []
            ranked.append([names[c] for c, _ in best] or ["blank"])
            scores.append([s for _, s in best] or [1.0])
    assert evaluate(eval_runs.detections, "--truth", truth_csv, "--out", tmp_path / "r", "--detection-threshold", "0.5",
                    "--image-root", eval_runs.truth) == 0
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert "blank" in y_true and report["detections"]
    assert_sklearn(report, y_true, ranked, scores)
    assert report["thresholds"]["images"] == sum(1 for r in ranked if r != ["blank"])

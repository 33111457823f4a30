"""``evaluate`` on a JSON Lines classify output, and on a run over videos: a video is one file to
evaluate, its prediction the roll-up over its sampled frames (the video's own record), never one
prediction per frame. Numbers equal scikit-learn's on labels read independently from the output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from bioclip_edge.cli import main
from bioclip_edge.runtime.evaluation.predictions import read_predictions
from tests.helpers.evaluation_runs import PINNED
from tests.helpers.video_factory import write_video
from tests.runtime.evaluation.test_evaluate import assert_sklearn, truth_of


def jsonl_rows(path: Path) -> tuple[dict[str, tuple[list[str], list[float]]], dict[str, list[dict]]]:
    """Per file its own record's top-k (failures left out), and per video its frame rows."""
    files, frames = {}, {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "frame_number" in row:
            frames.setdefault(row["filepath"], []).append(row)
        elif not row.get("failures") and row.get("predictions"):
            files[row["filepath"]] = ([p["label"] for p in row["predictions"]], [p["score"] for p in row["predictions"]])
    return files, frames


def test_json_lines_output_equals_scikit_learn(trained_fp32_bundle, eval_runs, tmp_path):
    out = tmp_path / "p.jsonl"
    assert main(["classify", str(trained_fp32_bundle), str(eval_runs.truth), "--labels",
                 str(eval_runs.truth.parent / "labels.txt"), "--out", str(out), *PINNED]) == 1  # 1: the broken PNG
    rows, _ = jsonl_rows(out)
    assert main(["evaluate", str(out), "--truth", str(eval_runs.truth), "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert report["format"] == "jsonl"
    root = eval_runs.truth.resolve()
    paired = [p for p in rows if not p.endswith("unlabelled.png")]
    assert_sklearn(report, [truth_of(eval_runs, str(Path(p).resolve().relative_to(root))) for p in paired],
                   [rows[p][0] for p in paired], [rows[p][1] for p in paired])
    assert [Path(f["filepath"]).name for f in report["failed"]] == ["broken.png"]
    assert [Path(p).name for p in report["predicted_files_without_truth"]] == ["unlabelled.png"]


@pytest.fixture(scope="module")
def video_truth(tmp_path_factory):
    """truth/<label>/: per label two clips panning across the label's photo and one still; one clip,
    filed as a rocket, pans from a cat to a rocket, so its frames disagree and its roll-up decides."""
    from bioclip_edge.export.reference import sample_photo

    root = tmp_path_factory.mktemp("videos")
    photos = {}
    for label, name in (("a photo of a cat", "chelsea"), ("a photo of a rocket", "rocket")):
        photos[name] = root / f"{name}.png"
        sample_photo(name).convert("RGB").resize((448, 320)).save(photos[name])
        for i in range(2):
            write_video(root / "truth" / label / f"clip{i}.mp4", photos[name], seconds=2.0, fps=5, size=(224, 160))
        sample_photo(name).save(root / "truth" / label / "still.jpg")
    both = Image.new("RGB", (448, 160))
    both.paste(Image.open(photos["chelsea"]).resize((224, 160)), (0, 0))
    both.paste(Image.open(photos["rocket"]).resize((224, 160)), (224, 0))
    both.save(root / "both.png")
    write_video(root / "truth" / "a photo of a rocket" / "pan.mp4", root / "both.png", seconds=4.0, fps=5, size=(224, 160))
    (root / "labels.txt").write_text("a photo of a cat\na photo of a rocket\na photo of the moon\n")
    return root


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "parquet"])
def test_a_video_is_one_file_judged_by_its_roll_up(trained_fp32_bundle, video_truth, tmp_path, fmt):
    out = tmp_path / f"p.{fmt}"
    assert main(["classify", str(trained_fp32_bundle), str(video_truth / "truth"), "--labels",
                 str(video_truth / "labels.txt"), "--out", str(out), "--top-k", "3", "--no-progress"]) == 0
    assert main(["evaluate", str(out), "--truth", str(video_truth / "truth"), "--out", str(tmp_path / "r")]) == 0
    report = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert report["images"] == 7  # 5 clips and 2 stills: frames are not files
    predicted = {Path(p.filepath).name if "pan" in p.filepath else p.filepath: p.labels[0]
                 for p in read_predictions(out).items}
    reference = tmp_path / "ref.jsonl"
    assert main(["classify", str(trained_fp32_bundle), str(video_truth / "truth"), "--labels",
                 str(video_truth / "labels.txt"), "--out", str(reference), "--top-k", "3", "--no-progress"]) == 0
    rows, frames = jsonl_rows(reference)
    pan = next(p for p in rows if p.endswith("pan.mp4"))
    frame_tops = {f["predictions"][0]["label"] for f in frames[pan]}
    assert frame_tops == {"a photo of a cat", "a photo of a rocket"}  # the frames disagree
    assert predicted["pan.mp4"] == rows[pan][0][0] == _mean_top1(frames[pan])
    y_true = [Path(p).parent.name for p in rows]
    y_pred = [rows[p][0][0] for p in rows]
    assert report["top1_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    labels = report["confusion_matrix"]["labels"]
    assert report["confusion_matrix"]["rows_truth_columns_predicted"] == skm.confusion_matrix(
        y_true, y_pred, labels=labels).tolist()


def _mean_top1(frames: list[dict]) -> str:
    """The roll-up rule (``jobs.rollup``): mean over frames of each label's probability, 0 where unlisted."""
    labels = sorted({p["label"] for f in frames for p in f["predictions"]})
    mean = np.zeros(len(labels))
    for f in frames:
        for p in f["predictions"]:
            mean[labels.index(p["label"])] += p["score"] / len(frames)
    return labels[int(mean.argmax())]

"""``bioclip-edge sort``: real classify outputs of real photos (and a video) sorted into folders, in every mode.

Each test sorts its own copy of the card (the outputs hold paths relative to it, so ``--image-root`` points them
at the copy) and checks the files themselves: which folder, how many, which bytes, which inodes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bioclip_edge.cli import main
from bioclip_edge.errors import UserError
from bioclip_edge.runtime.evaluation.predictions import read_predictions
from bioclip_edge.runtime.sorting import SortRequest, sort_files, undo_sort
from bioclip_edge.runtime.sorting.journal import MANIFEST
from bioclip_edge.runtime.sorting.plan import label_folders
from tests.helpers.sort_runs import CLASH, ODD_NAME, copy_card, files_under, hashes, snapshot

FORMATS = ("megadetector", "csv", "jsonl", "parquet")


def sort(runs, tmp: Path, fmt: str = "megadetector", **options) -> tuple[Path, Path, object]:
    card = copy_card(runs.card, tmp / "card")
    into = tmp / "sorted"
    predictions = runs.outputs[fmt] if fmt in runs.outputs else runs.detections
    result = sort_files(SortRequest(predictions=predictions, into=into, image_root=card, **options))
    return card, into, result


def sorted_files(into: Path) -> dict[str, list[str]]:
    """folder -> file names in it (the manifest left out)."""
    out: dict[str, list[str]] = {}
    for path in into.rglob("*"):
        if path.is_file() and path.name != MANIFEST:
            out.setdefault(path.parent.relative_to(into).as_posix(), []).append(path.name)
    return {k: sorted(v) for k, v in sorted(out.items())}


def median_score(predictions: Path) -> float:
    """A threshold with half the images below it (the trained model is sure of most: 0.5 would leave few)."""
    scores = sorted(i.score for i in read_predictions(predictions).items if i.score is not None)
    return scores[len(scores) // 2]


def expected_folders(predictions: Path, threshold: float) -> dict[str, str]:
    """file name as written -> the folder the sort must choose, from the output itself."""
    pf = read_predictions(predictions)
    folders = label_folders(i.labels[0] for i in pf.items if i.scores)
    out = {}
    for item in pf.items:
        if item.failure:
            out[item.filepath] = "failed"
        elif not item.scores:
            out[item.filepath] = "blank"
        else:
            out[item.filepath] = "unsure" if item.scores[0] < threshold else folders[item.labels[0]]
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_file_is_copied_once_into_its_labels_folder(sort_runs, tmp_path, fmt):
    cut = median_score(sort_runs.outputs[fmt])
    card, into, result = sort(sort_runs, tmp_path, fmt, mode="copy", threshold=cut)
    placed = sorted_files(into)
    assert sum(map(len, placed.values())) == len(files_under(card)) == len(result.placements)
    assert hashes(into, skip=(MANIFEST,)) == hashes(card)  # every byte of every file, once
    assert snapshot(card) == snapshot(copy_card(sort_runs.card, tmp_path / "fresh"))  # copy: the card is untouched
    want = expected_folders(sort_runs.outputs[fmt], cut)
    for p in result.placements:
        rel = os.path.relpath(p.source, card).replace(os.sep, "/")
        assert p.dest.split("/")[0] == want[rel], rel
        assert (into / p.dest).read_bytes() == Path(p.source).read_bytes()
    assert placed["failed"] == ["broken.jpg"]
    assert any(name == "clip.mp4" for names in placed.values() for name in names)  # videos are files too
    assert {"unsure", "failed"} <= set(placed) and len(placed) >= 4


def test_link_mode_hard_links_and_undo_removes_only_the_links(sort_runs, tmp_path):
    card, into, result = sort(sort_runs, tmp_path, "csv")
    before = snapshot(card)
    for p in result.placements:
        assert os.path.samefile(into / p.dest, p.source) and not (into / p.dest).is_symlink()
    assert result.symlinked == [] and result.done_now == len(result.placements)
    undone = undo_sort(into)
    assert undone.finished and undone.removed == len(result.placements) and not into.exists()
    assert snapshot(card) == before


def test_move_and_undo_put_every_byte_back(sort_runs, tmp_path):
    card = copy_card(sort_runs.card, tmp_path / "card")
    before, listing = snapshot(card), files_under(card)
    into = tmp_path / "sorted"
    assert main(["sort", str(sort_runs.outputs["jsonl"]), "--into", str(into), "--mode", "move", "--image-root", str(card)]) == 0
    assert files_under(card) == []  # every file moved out
    assert hashes(into, skip=(MANIFEST,)) == sorted(sha for sha, _ in before.values())
    journal = [json.loads(line) for line in (into / MANIFEST).read_text().splitlines()]
    assert sum(e["op"] == "removed" for e in journal) == len(listing)
    assert main(["sort", "--undo", str(into)]) == 0
    assert snapshot(card) == before and files_under(card) == listing  # bytes, times and the file list
    assert not into.exists()


def test_dry_run_prints_the_plan_and_touches_nothing(sort_runs, tmp_path, capsys):
    card = copy_card(sort_runs.card, tmp_path / "card")
    before = snapshot(card)
    into = tmp_path / "sorted"
    assert main(["sort", str(sort_runs.outputs["megadetector"]), "--into", str(into), "--mode", "move", "--dry-run",
                 "--image-root", str(card)]) == 0
    out = capsys.readouterr().out
    assert not into.exists() and snapshot(card) == before
    planned = [line for line in out.splitlines() if line.startswith("move ")]
    assert len(planned) == len(before)
    assert f"move {card / 'broken.jpg'} -> {into / 'failed' / 'broken.jpg'}" in planned
    assert "nothing was changed" in out


def test_clashing_names_get_a_suffix(sort_runs, tmp_path):
    _, into, result = sort(sort_runs, tmp_path, "megadetector", mode="copy", threshold=0.0)
    clashing = [p for p in result.placements if os.path.basename(p.source) == CLASH]
    assert len(clashing) == 2 and clashing[0].folder == clashing[1].folder  # the same photo: the same label
    names = sorted(p.dest.rsplit("/", 1)[1] for p in clashing)
    assert names == ["IMG_0001.JPG", "IMG_0001__2.JPG"]
    assert all((into / p.dest).is_file() for p in clashing)
    odd = next(p for p in result.placements if p.source.endswith(ODD_NAME))
    assert odd.dest.endswith("/léopard café #1.jpg") and (into / odd.dest).is_file()


def test_threshold_sends_low_scores_to_unsure(sort_runs, tmp_path):
    cut = median_score(sort_runs.outputs["csv"])
    scores = [i.score for i in read_predictions(sort_runs.outputs["csv"]).items if i.score is not None]
    _, into, result = sort(sort_runs, tmp_path / "a", "csv", threshold=cut)
    unsure = [p for p in result.placements if p.folder == "unsure"]
    assert len(unsure) == sum(s < cut for s in scores) > 0
    assert all(p.score < cut for p in unsure) and all(p.score >= cut for p in result.placements if p.score is not None
                                                         and p.folder != "unsure")
    _, _, none_unsure = sort(sort_runs, tmp_path / "b", "csv", threshold=0.0)
    assert "unsure" not in none_unsure.counts()


def test_rank_genus_from_the_category_descriptions_and_from_labels(sort_runs, tmp_path):
    genera = set(sort_runs.genus.values())
    _, _, by_descriptions = sort(sort_runs, tmp_path / "a", "megadetector", threshold=0.0, rank="genus")
    _, _, by_matrix = sort(sort_runs, tmp_path / "b", "csv", threshold=0.0, rank="genus", labels=sort_runs.matrix)
    for result in (by_descriptions, by_matrix):
        folders = set(result.counts()) - {"failed"}
        assert folders and {f.lower() for f in folders} <= {g.lower() for g in genera}, folders
        for p in result.placements:
            if p.label is not None:
                assert p.folder.lower() == p.label.lower()
    # MegaDetector descriptions are lower case (felis), the matrix keeps the taxonomy's case (Felis)
    assert [p.folder.lower() for p in by_descriptions.placements] == [p.folder.lower() for p in by_matrix.placements]
    with pytest.raises(UserError, match="--rank genus"):
        sort(sort_runs, tmp_path / "c", "jsonl", rank="genus")  # label texts only: no taxonomy


def test_rank_sums_scores_per_taxon(sort_runs, tmp_path):
    """A genus collects its species' scores: an image unsure as a species can be sure as a genus."""
    cut = 0.9
    _, _, species = sort(sort_runs, tmp_path / "a", "megadetector", threshold=cut)
    _, _, genus = sort(sort_runs, tmp_path / "b", "megadetector", threshold=cut, rank="genus")
    by_source = {p.source.split("/card/")[1]: p for p in genus.placements}
    for p in species.placements:
        g = by_source[p.source.split("/card/")[1]]
        if p.score is not None:
            assert g.score >= p.score - 1e-9
    assert sum(p.folder == "unsure" for p in genus.placements) <= sum(p.folder == "unsure" for p in species.placements)


def test_detections_file_images_under_the_most_confident_box_or_blank(sort_runs, tmp_path):
    card, into, result = sort(sort_runs, tmp_path, "detections", mode="copy", threshold=0.0)
    detector = json.loads(sort_runs.detector.read_text())
    boxed = {im["file"] for im in detector["images"] if im["detections"]}
    for p in result.placements:
        rel = os.path.relpath(p.source, card).replace(os.sep, "/")
        assert (p.folder != "blank") == (rel in boxed), rel
    # with --detection-threshold 0.5 the faint (0.3) boxes no longer count: those images become blank
    _, _, strict = sort(sort_runs, tmp_path / "strict", "detections", threshold=0.0, detection_threshold=0.5)
    faint = {im["file"] for im in detector["images"] if im["detections"] and im["max_detection_conf"] < 0.5}
    assert faint and sum(p.folder == "blank" for p in strict.placements) == \
        sum(p.folder == "blank" for p in result.placements) + len(faint)

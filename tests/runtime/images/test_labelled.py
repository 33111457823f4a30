"""One reader of labelled images (runtime.images.labelled) for ``labels adapt --examples`` and
``evaluate --truth``: the same tree means the same labels to both commands."""

from __future__ import annotations

import pytest

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.evaluation.truth import read_truth
from bioclip_edge.runtime.images.labelled import read_labelled
from bioclip_edge.runtime.adaptation.examples import read_examples


class Bad(UserError):
    pass


def _tree(root):
    for rel in ("lion/cam2/IMG_1.JPG", "lion/IMG_2.jpg", "zebra/cam1/burst/IMG_3.png", "top.jpg", "lion/notes.txt"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def test_a_label_is_the_top_subfolder_and_deeper_folders_are_groups(tmp_path):
    labelled = read_labelled(_tree(tmp_path), "--truth", Bad)
    got = {(f.name, f.label, f.group) for f in labelled.files}
    assert got == {("lion/IMG_2.jpg", "lion", "lion/IMG_2.jpg"), ("lion/cam2/IMG_1.JPG", "lion", "cam2"),
                   ("zebra/cam1/burst/IMG_3.png", "zebra", "cam1/burst")}
    assert [p.name for p in labelled.unlabelled] == ["top.jpg"]


def test_adapt_and_evaluate_read_one_tree_alike(tmp_path):
    root = _tree(tmp_path)
    truth = read_truth(root)
    examples = {str(e.path.resolve()): e.label for e in read_examples(root)}
    assert {p: label for p, label in truth.labels.items()} == examples
    assert sorted(truth.labels.values()) == ["lion", "lion", "zebra"]


def test_csv_rows_paths_groups_and_conflicts(tmp_path):
    (tmp_path / "l.csv").write_text("FilePath,Label,camera\na.jpg,lion,c1\nb.jpg,zebra,\n\na.jpg,lion,c1\n", encoding="utf-8")
    files = read_labelled(tmp_path / "l.csv", "--examples", Bad).files
    assert [(f.path, f.label, f.group) for f in files] == [(tmp_path / "a.jpg", "lion", "c1"), (tmp_path / "b.jpg", "zebra", "b.jpg")]
    (tmp_path / "c.csv").write_text("filepath,label\na.jpg,lion\na.jpg,zebra\n", encoding="utf-8")
    with pytest.raises(Bad, match="--examples .*line 3: a.jpg is labelled both 'lion' and 'zebra'"):
        read_labelled(tmp_path / "c.csv", "--examples", Bad)
    (tmp_path / "d.csv").write_text("path,species\na.jpg,lion\n", encoding="utf-8")
    with pytest.raises(Bad, match="no 'filepath' and 'label' columns \\(it has: path, species\\)"):
        read_labelled(tmp_path / "d.csv", "--truth", Bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(Bad, match="--truth .*empty: holds no labelled image"):
        read_labelled(tmp_path / "empty", "--truth", Bad)


def test_box_columns_make_one_row_per_box_only_for_a_reader_of_boxes(tmp_path):
    (tmp_path / "b.csv").write_text("filepath,label,bbox_x,bbox_y,bbox_w,bbox_h\n"
                                    "a.jpg,lion,0.1,0.2,0.3,0.4\na.jpg,zebra,0.5,0.5,0.25,0.25\nb.jpg,lion,,,,\n",
                                    encoding="utf-8")
    files = read_labelled(tmp_path / "b.csv", "--examples", Bad, boxes=True).files
    assert [(f.path.name, f.label, f.bbox) for f in files] == [
        ("a.jpg", "lion", (0.1, 0.2, 0.3, 0.4)), ("a.jpg", "zebra", (0.5, 0.5, 0.25, 0.25)), ("b.jpg", "lion", None)]
    assert [(e.label, e.bbox) for e in read_examples(tmp_path / "b.csv")][:2] == [("lion", (0.1, 0.2, 0.3, 0.4)),
                                                                                  ("zebra", (0.5, 0.5, 0.25, 0.25))]
    # evaluate judges whole files: there, two labels on one file are a conflict, whatever the boxes
    with pytest.raises(Bad, match="line 3: a.jpg is labelled both 'lion' and 'zebra'"):
        read_labelled(tmp_path / "b.csv", "--truth", Bad)
    (tmp_path / "one.csv").write_text('filepath,label,bbox\na.jpg,lion,"0.1, 0.2, 0.3, 0.4"\n', encoding="utf-8")
    assert read_labelled(tmp_path / "one.csv", "--examples", Bad, boxes=True).files[0].bbox == (0.1, 0.2, 0.3, 0.4)
    (tmp_path / "three.csv").write_text('filepath,label,bbox\na.jpg,lion,"0.1,0.2,0.3"\n', encoding="utf-8")
    with pytest.raises(Bad, match="line 2: the box '0.1,0.2,0.3' is not x,y,w,h"):
        read_labelled(tmp_path / "three.csv", "--examples", Bad, boxes=True)

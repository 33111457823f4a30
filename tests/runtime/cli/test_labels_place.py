"""``bioclip-edge labels subset --geofence/--checklist`` end to end: rows, report, provenance, errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from bioclip_edge.cli import main
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from tests.helpers.place import GEOFENCE, TAXA, place_matrix


@pytest.fixture
def files(tmp_path):
    labels = tmp_path / "tol.npz"
    place_matrix().save(labels, dtype="fp16")
    fence = tmp_path / "geofence_release.json"
    fence.write_text(json.dumps(GEOFENCE), encoding="utf-8")
    checklist = tmp_path / "kenya.txt"
    checklist.write_text("Panthera leo (Linnaeus, 1758)\nCrocuta crocuta\nLoxodonta africana\n", encoding="utf-8")
    return labels, fence, checklist, tmp_path


def test_geofence_subset_records_where_it_came_from(files, capsys):
    labels, fence, _, tmp = files
    out = tmp / "ny.npz"
    assert main(["labels", "subset", str(labels), "--geofence", str(fence), "--country", "usa", "--admin1", "NY",
                 "--out", str(out)]) == 0
    assert f"kept {len(TAXA) - 3}, dropped 3 of {len(TAXA)} labels" in capsys.readouterr().out
    sub = LabelMatrix.load(out)
    assert set(TAXA) - set(sub.names) == {"lion", "panthera genus", "cat family"} and sub.dtype == "fp16"
    step = sub.meta["place"][0]
    assert step["geofence"]["file"] == fence.name and step["geofence"]["country"] == "USA"
    assert step["geofence"]["sha256"] == hashlib.sha256(fence.read_bytes()).hexdigest()
    assert main(["labels", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"place: geofence {fence.name} (sha256 {step['geofence']['sha256'][:12]}) in USA-NY: 15 of 18 labels" in text
    assert main(["labels", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["place"][0]["geofence"]["admin1"] == "NY"


def test_checklist_with_where_reports_unmatched_names(files, capsys):
    labels, fence, checklist, tmp = files
    out = tmp / "kenya-cats.npz"
    assert main(["labels", "subset", str(labels), "--checklist", str(checklist), "--where", "family=Felidae",
                 "--geofence", str(fence), "--country", "KEN", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1 checklist name matches no label in the matrix:\n  - Loxodonta africana" in printed
    assert "kept 3, dropped 15 of 18 labels" in printed
    assert LabelMatrix.load(out).names == ["lion", "panthera genus", "cat family"]
    step = LabelMatrix.load(out).meta["place"][0]
    assert step["checklist"]["file"] == "kenya.txt" and step["where"] == ["family=Felidae"]
    again = tmp / "again.npz"  # a subset of a subset adds a step
    assert main(["labels", "subset", str(out), "--checklist", str(checklist), "--out", str(again)]) == 0
    assert [s["of"] for s in LabelMatrix.load(again).meta["place"]] == [18, 3]


@pytest.mark.parametrize("extra,message", [
    (["--geofence", "{fence}"], "--geofence needs --country"),
    (["--geofence", "{fence}", "--admin1", "CA"], "--admin1 needs --country"),
    (["--geofence", "{fence}", "--country", "KE"], "--country 'KE': expected an ISO 3166-1 alpha-3 code"),
    (["--admin1", "CA"], "pass --geofence FILE too"),
    (["--country", "KEN", "--checklist", "{checklist}"], "pass --geofence FILE too"),
    (["--geofence", "{tmp}/absent.json", "--country", "KEN"], "absent.json: geofence file not found"),
    (["--checklist", "{tmp}/absent.txt"], "absent.txt: checklist not found"),
    (["--geofence", "{checklist}", "--country", "KEN"], "kenya.txt: not a JSON geofence file"),
    ([], "pass --where COLUMN=VALUE, --geofence FILE --country ISO3, or --checklist FILE"),
])
def test_bad_input_exits_2_with_a_clear_message(files, capsys, extra, message):
    labels, fence, checklist, tmp = files
    args = [a.format(fence=fence, checklist=checklist, tmp=tmp) for a in extra]
    assert main(["labels", "subset", str(labels), *args, "--out", str(tmp / "out.npz")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp / "out.npz").exists()


def test_out_follows_the_overwrite_rules(files, capsys):
    labels, fence, _, tmp = files
    out = tmp / "kept.npz"
    out.write_bytes(b"mine")
    args = ["labels", "subset", str(labels), "--geofence", str(fence), "--country", "KEN", "--out", str(out)]
    assert main(args) == 2 and out.read_bytes() == b"mine"
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0 and LabelMatrix.load(out).n == len(TAXA)
    assert main(["labels", "subset", str(labels), "--checklist", str(fence), "--out", str(labels)]) == 2
    assert "--out must differ from the input file" in capsys.readouterr().err


def test_nothing_left_is_an_error(files, capsys):
    labels, _, _, tmp = files
    names = tmp / "elsewhere.txt"
    names.write_text("Giraffa camelopardalis\n", encoding="utf-8")
    assert main(["labels", "subset", str(labels), "--checklist", str(names), "--out", str(tmp / "none.npz")]) == 2
    assert "no label is left in this place" in capsys.readouterr().err

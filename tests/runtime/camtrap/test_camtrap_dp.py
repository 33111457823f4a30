"""``bioclip-edge camtrap-dp``: real classify outputs (whole images, a --detections run, videos, a
--sequence-gap run) of real photos and an encoded video, each turned into a Camtrap DP package that
validates offline against the official 1.0.2 profile and table schemas (frictionless and
jsonschema, tests/helpers/camtrap_validation.py); and the errors a user can make."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from bioclip_edge.cli import main
from bioclip_edge.runtime.camtrap import CamtrapRequest, write_camtrap_dp
from tests.helpers.camtrap_validation import assert_camtrap_valid, spec_json
from tests.helpers.evaluation_runs import taxonomy_csv
from tests.helpers.trained_tiny import zero_shot_labels
from tests.helpers.video_factory import write_video

PINNED = ["--precision", "fp32", "--backend", "onnxruntime", "--threads", "0", "--no-progress", "--top-k", "3"]
CONTRIBUTOR = "Jane Doe <jane@example.org>"
FILE_TIME = 1714550400  # 2024-05-01T08:00:00Z: the modification time of the files without EXIF times
# card path -> (photo, EXIF capture time or None, body serial or None)
CARD = {
    "cam01/a1.jpg": ("chelsea", "2024:05:01 10:00:00", None),
    "cam01/a2.jpg": ("chelsea", "2024:05:01 10:00:02", None),
    "cam01/a3.jpg": ("rocket", "2024:05:01 10:30:00", None),
    "cam02/b1.jpg": ("astronaut", "2024:05:02 06:00:00", "SN-77"),
    "cam02/b2.jpg": ("coffee", None, "SN-77"),  # no capture time: its file time
}
DEPLOYMENTS = """deploymentID,folder,cameraID,latitude,longitude,deploymentStart,timezone,locationName,habitat,notes
cam01,cards/cam01,,-1.4061,35.0111,,+03:00,Mara North,grassland,our own note
cam02,,SN-77,-1.45,35.1,2024-05-01T00:00:00+03:00,,,,
cam03,videos/cam03,,-1.5,35.2,,,,,
spare,cards/spare,,-1.6,35.3,,,,,
"""


def _card(root: Path, photo_dir: Path) -> None:
    for name, (photo, when, serial) in CARD.items():
        path = root / "cards" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[0x010F], exif[0x0110] = "RECONYX", "HF2X"
        if when:
            exif.get_ifd(0x8769)[0x9003] = when
        if serial:
            exif.get_ifd(0x8769)[0xA431] = serial
        Image.open(photo_dir / f"{photo}.jpg").convert("RGB").resize((96, 64)).save(path, exif=exif)
        os.utime(path, (FILE_TIME, FILE_TIME))
    (root / "cards" / "cam02" / "broken.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    video = write_video(root / "videos" / "cam03" / "clip.mp4", photo_dir / "chelsea.jpg", seconds=2.0)
    os.utime(video, (FILE_TIME, FILE_TIME))


def _detector_file(path: Path) -> None:
    """Boxes on the card (paths relative to it): animals, a person box, a faint box, an empty image."""
    box = lambda cat, conf, bbox: {"category": cat, "conf": conf, "bbox": bbox}  # noqa: E731
    images = [
        {"file": "cam01/a1.jpg", "detections": [box("1", 0.9, [0.1, 0.2, 0.5, 0.6]), box("1", 0.05, [0.0, 0.0, 0.2, 0.2])]},
        {"file": "cam01/a2.jpg", "detections": [box("1", 0.8, [0.6, 0.5, 0.5, 0.6])]},  # reaches past the frame's edge
        {"file": "cam01/a3.jpg", "detections": []},
        {"file": "cam02/b1.jpg", "detections": [box("2", 0.95, [0.3, 0.1, 0.3, 0.8])]},
        {"file": "cam02/b2.jpg", "detections": [box("1", 0.7, [0.2, 0.2, 0.4, 0.4])]},
    ]
    path.write_text(json.dumps({"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
                                "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"}, "images": images}))


def _classify(*args: object) -> int:
    return main(["classify", *map(str, args), *PINNED])


@pytest.fixture(scope="module")
def study(trained_fp32_bundle, photo_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study")
    _card(root, photo_dir)
    (root / "deployments.csv").write_text(DEPLOYMENTS, encoding="utf-8")
    (root / "labels.txt").write_text("\n".join(zero_shot_labels()) + "\n", encoding="utf-8")
    taxonomy_csv(root / "taxonomy.csv")
    assert main(["labels", "build", str(trained_fp32_bundle), "--from", str(root / "taxonomy.csv"), "--out", str(root / "taxa.npz")]) == 0
    _detector_file(root / "md.json")
    out = root / "runs"
    cards = root / "cards"
    assert _classify(trained_fp32_bundle, cards, "--labels", root / "taxa.npz", "--out", out / "whole.json") == 1  # broken.jpg
    for boxes in ("boxes.csv", "boxes.json"):
        assert _classify(trained_fp32_bundle, cards, "--detections", root / "md.json", "--labels", root / "labels.txt",
                         "--out", out / boxes) == 0
    assert _classify(trained_fp32_bundle, root / "videos", "--labels", root / "labels.txt", "--out", out / "video.jsonl") == 0
    assert _classify(trained_fp32_bundle, cards, "--labels", root / "labels.txt", "--out", out / "seq.parquet",
                     "--relative-paths", "--sequence-gap", "5") == 1
    return root


def package(study: Path, predictions: str, out: Path, *extra: str) -> Path:
    code = main(["camtrap-dp", str(study / "runs" / predictions), "--deployments", str(study / "deployments.csv"),
                 "--project-title", "Mara 2026", "--contributor", CONTRIBUTOR, "--timezone", "Africa/Nairobi",
                 "--out", str(out), *extra])
    assert code == 0
    return out


def table(folder: Path, name: str) -> list[dict[str, str]]:
    with open(folder / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- the four kinds of run -------------------------------------------------------------------------
def test_whole_image_run(study, tmp_path, capsys):
    out = package(study, "whole.json", tmp_path / "dp")
    summary = capsys.readouterr().out
    meta = assert_camtrap_valid(out)
    assert "left out 1 failed file(s)" in summary and "broken.jpg" in summary
    assert "notes" in summary and "spare" in summary  # the unknown column and the deployment with no media
    deployments = {r["deploymentID"]: r for r in table(out, "deployments")}
    assert set(deployments) == {"cam01", "cam02"}
    assert deployments["cam01"]["deploymentStart"] == "2024-05-01T10:00:00+03:00"
    assert deployments["cam01"]["deploymentEnd"] == "2024-05-01T10:30:00+03:00"
    assert (deployments["cam01"]["locationName"], deployments["cam01"]["habitat"]) == ("Mara North", "grassland")
    assert deployments["cam01"]["cameraModel"] == "RECONYX-HF2X" and deployments["cam01"]["timestampIssues"] == "false"
    assert deployments["cam02"]["deploymentStart"] == "2024-05-01T00:00:00+03:00"  # as given; its end from the media
    assert deployments["cam02"]["timestampIssues"] == "true"  # b2.jpg has no capture time
    media = {r["filePath"]: r for r in table(out, "media")}
    assert set(media) == {name for name in CARD}  # relative to the cards' common folder; broken.jpg left out
    assert media["cam01/a1.jpg"]["timestamp"] == "2024-05-01T10:00:00+03:00"
    assert media["cam02/b2.jpg"]["timestamp"] == "2024-05-01T11:00:00+03:00"  # its file time, in cam02's zone
    assert "modification time" in media["cam02/b2.jpg"]["mediaComments"]
    assert media["cam02/b1.jpg"]["deploymentID"] == "cam02" and media["cam01/a1.jpg"]["fileMediatype"] == "image/jpeg"
    assert json.loads(media["cam02/b1.jpg"]["exifData"])["BodySerialNumber"] == "SN-77"
    observations = table(out, "observations")
    assert len(observations) == 5 and {o["observationLevel"] for o in observations} == {"media"}
    assert {o["classificationMethod"] for o in observations} == {"machine"}
    whole = json.loads((study / "runs" / "whole.json").read_text())
    model = whole["info"]["classifier_metadata"]["model"]
    assert all(model in o["classifiedBy"] and "fp32" in o["classifiedBy"] for o in observations)
    by_media = {o["mediaID"]: o for o in observations}
    a1 = by_media[media["cam01/a1.jpg"]["mediaID"]]
    top = next(im for im in whole["images"] if im["file"].endswith("a1.jpg"))["detections"][0]["classifications"][0]
    assert float(a1["classificationProbability"]) == pytest.approx(top[1], abs=1e-4)
    names = {o["scientificName"] for o in observations if o["observationType"] == "animal"}
    assert names and all(" " in n and n[0].isupper() for n in names)  # binomials from the taxonomy descriptions
    assert {t["scientificName"] for t in meta["taxonomic"]} == names
    assert all(t["taxonRank"] == "species" and t["genus"] for t in meta["taxonomic"])
    assert meta["spatial"]["type"] == "Polygon" and meta["spatial"]["bbox"] == [35.0111, -1.45, 35.1, -1.4061]
    assert meta["temporal"] == {"start": "2024-05-01", "end": "2024-05-02"}
    assert meta["project"]["observationLevel"] == ["media"] and meta["contributors"][0]["role"] == "contact"


@pytest.mark.parametrize("boxes", ["boxes.csv", "boxes.json"])
def test_detections_run(study, tmp_path, boxes):
    out = package(study, boxes, tmp_path / "dp", "--image-root", str(study / "cards"), "--labels", str(study / "taxa.npz"))
    meta = assert_camtrap_valid(out)
    media = {r["mediaID"]: r["filePath"] for r in table(out, "media")}
    rows: dict[str, list[dict[str, str]]] = {}
    for o in table(out, "observations"):
        rows.setdefault(media[o["mediaID"]], []).append(o)
    assert len(rows["cam01/a1.jpg"]) == 1  # the 0.05 box is below the detection threshold
    a1 = rows["cam01/a1.jpg"][0]
    assert (a1["bboxX"], a1["bboxY"], a1["bboxWidth"], a1["bboxHeight"], a1["count"]) == ("0.1", "0.2", "0.5", "0.6", "1")
    assert a1["scientificName"] and not a1["classifiedBy"].startswith("MegaDetector")
    assert rows["cam01/a2.jpg"][0]["bboxWidth"] == "0.4"  # clamped to the frame
    assert [(o["observationType"], o["bboxX"]) for o in rows["cam01/a3.jpg"]] == [("blank", "")]
    person = rows["cam02/b1.jpg"][0]
    assert (person["observationType"], person["classificationProbability"]) == ("human", "0.95")
    assert person["classifiedBy"] == ("MegaDetector (md_v5a.0.0.pt)" if boxes.endswith(".json") else "MegaDetector")
    assert rows["cam02/b2.jpg"][0]["bboxWidth"] == "0.4"
    assert {t["scientificName"] for t in meta["taxonomic"]} == {o["scientificName"] for r in rows.values() for o in r
                                                                 if o["observationType"] == "animal"}


def test_video_run(study, tmp_path):
    out = package(study, "video.jsonl", tmp_path / "dp")
    meta = assert_camtrap_valid(out)
    [media] = table(out, "media")
    assert media["fileMediatype"] == "video/mp4" and media["filePath"] == "clip.mp4"
    assert media["timestamp"] == "2024-05-01T11:00:00+03:00"  # the file time in --timezone Africa/Nairobi
    [obs] = table(out, "observations")
    assert obs["observationLevel"] == "media" and obs["eventEnd"] > obs["eventStart"]  # the sampled frames' span
    [deployment] = table(out, "deployments")
    assert deployment["deploymentID"] == "cam03" and deployment["timestampIssues"] == "true"
    assert meta["spatial"] == {"type": "Point", "coordinates": [35.2, -1.5]}


def test_sequence_run(study, tmp_path):
    out = package(study, "seq.parquet", tmp_path / "dp", "--image-root", str(study / "cards"))
    meta = assert_camtrap_valid(out)
    observations = table(out, "observations")
    assert {o["observationLevel"] for o in observations} == {"event"} and meta["project"]["observationLevel"] == ["event"]
    assert len(observations) == 4  # a1+a2 (2 s apart), a3 (30 min later), b1, b2 (no time: a sequence of its own)
    burst = next(o for o in observations if o["eventStart"] == "2024-05-01T10:00:00+03:00")
    assert burst["eventEnd"] == "2024-05-01T10:00:02+03:00" and burst["mediaID"] == "" and burst["eventID"] == burst["observationID"]
    assert burst["eventID"].startswith("seq-") and burst["deploymentID"] == "cam01"
    assert len(table(out, "media")) == 5


def test_sequences_read_back_from_every_format(study, tmp_path):
    """The sequence each file was written in, read from CSV, JSON Lines and MegaDetector outputs as from Parquet."""
    from bioclip_edge.runtime.camtrap.source import read_source
    from bioclip_edge.runtime.jobs.sequences import SequenceOptions, apply_sequences
    from bioclip_edge.runtime.jobs.writers import write_results

    parquet = read_source(study / "runs" / "seq.parquet")
    records = apply_sequences(parquet.records, SequenceOptions(5.0), 3)
    expected = {path: (seq_id, [label for label, _ in top]) for path, (seq_id, top) in parquet.sequences.items()}
    assert len(set(seq_id for seq_id, _ in expected.values())) == 5  # 6 files, a1 and a2 in one burst, broken.jpg alone
    for fmt, name in (("csv", "s.csv"), ("jsonl", "s.jsonl"), ("megadetector", "s.json")):
        write_results(tmp_path / name, records, fmt, {"top_k": 3}, zero_shot_labels())
        got = read_source(tmp_path / name).sequences
        assert {path: (seq_id, [label for label, _ in top]) for path, (seq_id, top) in got.items()} == expected, fmt


# --- what a user can get wrong --------------------------------------------------------------------
def nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def absolute_folders(study: Path, text: str, path: Path) -> Path:
    """A deployments CSV elsewhere, its folders absolute (relative ones start from the CSV's own folder)."""
    path.write_text(text.replace(",cards/", f",{study}/cards/").replace(",videos/", f",{study}/videos/"))
    return path


def _run(study: Path, out: Path, *args: str, deployments: Path | None = None) -> int:
    return main(["camtrap-dp", str(study / "runs" / "whole.json"), "--deployments", str(deployments or study / "deployments.csv"),
                 "--out", str(out), *args])


@pytest.mark.parametrize("given, named", [(("--contributor", CONTRIBUTOR), "--project-title"),
                                          (("--project-title", "Mara 2026"), "--contributor")])
def test_missing_metadata_names_the_option(study, tmp_path, capsys, given, named):
    assert _run(study, tmp_path / "dp", *given, "--timezone", "+03:00") == 2
    assert f"{named} is missing" in capsys.readouterr().err
    assert nothing_written(tmp_path / "dp")


def test_files_in_no_deployment(study, tmp_path, capsys):
    only = absolute_folders(study, "\n".join(DEPLOYMENTS.splitlines()[:2]) + "\n", tmp_path / "only-cam01.csv")
    meta = ("--project-title", "Mara 2026", "--contributor", CONTRIBUTOR)
    assert _run(study, tmp_path / "dp", *meta, deployments=only) == 2
    err = capsys.readouterr().err
    assert "2 file(s)" in err and "b1.jpg" in err and "--skip-unmatched" in err
    assert nothing_written(tmp_path / "dp")
    assert _run(study, tmp_path / "dp", *meta, "--skip-unmatched", deployments=only) == 0
    assert "left out 2 file(s) no deployment claims" in capsys.readouterr().out
    assert len(table(tmp_path / "dp", "media")) == 3
    assert_camtrap_valid(tmp_path / "dp")


def test_deployment_without_a_time_zone(study, tmp_path, capsys):
    code = main(["camtrap-dp", str(study / "runs" / "video.jsonl"), "--deployments", str(study / "deployments.csv"),
                 "--project-title", "Mara 2026", "--contributor", CONTRIBUTOR, "--out", str(tmp_path / "dp")])
    assert code == 2 and "deployment cam03: no time zone" in capsys.readouterr().err


@pytest.mark.parametrize("text, message", [
    ("deploymentID,folder,longitude\ncam01,cards/cam01,35\n", "no latitude column"),
    ("deploymentID,folder,latitude,longitude\ncam01,cards/cam01,north,35\n", "latitude 'north' is not a number"),
    ("deploymentID,latitude,longitude\ncam01,1,35\n", "no folder or cameraID column"),
    ("deploymentID,folder,latitude,longitude\ncam01,a,1,35\ncam01,b,1,35\n", "'cam01' is on two rows"),
    ("deploymentID,folder,latitude,longitude,timezone\ncam01,a,1,35,Mars/Olympus\n", "not a time zone"),
])
def test_bad_deployments_csv(study, tmp_path, capsys, text, message):
    bad = tmp_path / "deployments.csv"
    bad.write_text(text)
    assert _run(study, tmp_path / "dp", "--project-title", "T", "--contributor", CONTRIBUTOR, deployments=bad) == 2
    assert message in capsys.readouterr().err


def test_a_package_that_would_not_validate_is_not_written(study, tmp_path, capsys):
    bad = absolute_folders(study, DEPLOYMENTS.replace("habitat,notes", "featureType,notes").replace("grassland", "swamp"),
                           tmp_path / "deployments.csv")
    assert _run(study, tmp_path / "dp", "--project-title", "T", "--contributor", CONTRIBUTOR) == 0  # the good one
    assert _run(study, tmp_path / "bad", "--project-title", "T", "--contributor", CONTRIBUTOR, deployments=bad) == 2
    err = capsys.readouterr().err
    assert "would not validate" in err and "featureType" in err and "'swamp'" in err
    assert nothing_written(tmp_path / "bad")


def test_existing_package_needs_overwrite(study, tmp_path, capsys):
    args = ("--project-title", "Mara 2026", "--contributor", CONTRIBUTOR)
    assert _run(study, tmp_path / "dp", *args) == 0
    assert _run(study, tmp_path / "dp", *args) == 2
    assert "already exists" in capsys.readouterr().err
    assert _run(study, tmp_path / "dp", *args, "--contributor", "Ann Lee (principalInvestigator)", "--license", "CC-BY-4.0",
                "--overwrite") == 0
    meta = assert_camtrap_valid(tmp_path / "dp")
    assert meta["contributors"][1] == {"title": "Ann Lee", "role": "principalInvestigator"}
    assert meta["licenses"] == [{"name": "CC-BY-4.0", "scope": "data"}, {"name": "CC-BY-4.0", "scope": "media"}]


def test_not_a_classify_output(study, tmp_path, capsys):
    code = main(["camtrap-dp", str(study / "deployments.csv"), "--deployments", str(study / "deployments.csv"),
                 "--project-title", "T", "--contributor", CONTRIBUTOR, "--out", str(tmp_path / "dp")])
    assert code == 2 and "not a bioclip-edge or MegaDetector output" in capsys.readouterr().err


def test_python_api_and_media_url(study, tmp_path):
    request = CamtrapRequest(study / "runs" / "whole.json", study / "deployments.csv", tmp_path / "dp", project_title="Mara 2026",
                             contributors=(CONTRIBUTOR,), media_base_url="https://example.org/mara/")
    result = write_camtrap_dp(request)
    assert (result.deployments, result.media, result.observations, result.levels) == (2, 5, 5, ["media"])
    assert [path for path, _ in result.failed] == [str(study / "cards" / "cam02" / "broken.jpg")]
    media = table(tmp_path / "dp", "media")
    assert {m["filePublic"] for m in media} == {"true"}
    assert "https://example.org/mara/cam01/a1.jpg" in {m["filePath"] for m in media}
    assert_camtrap_valid(tmp_path / "dp")


# --- the rules themselves ---------------------------------------------------------------------------
def test_columns_are_the_official_ones():
    from bioclip_edge.runtime.camtrap.columns import TABLES

    for name, columns in TABLES.items():
        official = spec_json(f"{name}-table-schema.json")["fields"]
        assert [c.name for c in columns] == [f["name"] for f in official]
        for column, field in zip(columns, official):
            constraints = field.get("constraints", {})
            assert column.required == constraints.get("required", False), column.name
            assert list(column.enum) == constraints.get("enum", []), column.name
            assert column.minimum == constraints.get("minimum") and column.maximum == constraints.get("maximum"), column.name
            assert column.pattern == constraints.get("pattern"), column.name
            assert column.type == field["type"], column.name


def test_observation_types():
    from bioclip_edge.runtime.camtrap.observations import observation_type
    from bioclip_edge.runtime.camtrap.request import DEFAULT_BLANK_LABELS
    from bioclip_edge.runtime.camtrap.taxa import Taxon

    plain = Taxon("x", None)
    kinds = {label: observation_type(label, plain, DEFAULT_BLANK_LABELS)
             for label in ("Empty", "empty savanna", "blank", "a person", "car", "Panthera leo")}
    assert kinds == {"Empty": "blank", "empty savanna": "blank", "blank": "blank", "a person": "human", "car": "vehicle",
                     "Panthera leo": "animal"}
    assert observation_type("an astronaut", Taxon("Homo sapiens", "species", {"genus": "Homo"}), DEFAULT_BLANK_LABELS) == "human"

"""Videos next to stills: discovery, sampling (keyframe-only where it can), the
MegaDetector video convention checked by MegaDetector's own validator, CSV and JSON Lines rows,
every broken case as a failure row, ``--detections`` on a MegaDetector video file, ``embed`` and
``--resume``. Videos are made here with PyAV's own encoders from real photos (``video_factory``),
64x48 and three seconds long, so each test takes seconds."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from bioclip_edge.cli import main  # noqa: E402
from bioclip_edge.runtime.images.decode import ImageDecodeError  # noqa: E402
from bioclip_edge.runtime.images.discover import discover  # noqa: E402
from bioclip_edge.runtime.images.video import VIDEO_EXTRA, VideoReader, VideoSampling  # noqa: E402
from tests.helpers.md_validation import assert_md_valid  # noqa: E402
from tests.helpers.video_factory import truncate, unknown_codec, write_video  # noqa: E402

LABELS = "cat,coffee cup,rocket,astronaut"
GOOD = {"clip.mp4": ("chelsea", "h264"), "trail.avi": ("coffee", "mjpeg"), "pan.mkv": ("rocket", "mpeg4"),
        "UPPER.MOV": ("astronaut", "h264"), "vidéo 鹿/ciervo ñ.mp4": ("chelsea", "h264")}
BROKEN = ("cut.avi", "cut.mp4", "empty.mp4", "notes.avi", "codec.avi", "zero.avi")


def classify(*args) -> int:
    return main(["classify", *map(str, args), "--no-progress"])


@pytest.fixture(scope="module")
def video_card(photo_dir, tmp_path_factory) -> Path:
    """Two stills, five good videos (three codecs, four containers, an upper-case suffix, a
    non-ASCII folder and name) and every broken case."""
    card = tmp_path_factory.mktemp("video-card")
    for name in ("chelsea.jpg", "coffee.jpg"):
        shutil.copy(photo_dir / name, card / name)
    for name, (photo, codec) in GOOD.items():
        write_video(card / name, photo_dir / f"{photo}.jpg", codec, gop=10 if codec == "h264" else None)
    truncate(write_video(card / "cut.avi", photo_dir / "coffee.jpg", "mjpeg"), 0.75)  # frames 0, 10 survive
    truncate(write_video(card / "cut.mp4", photo_dir / "coffee.jpg", "h264"), 0.5)  # no index (moov) left
    (card / "empty.mp4").write_bytes(b"")
    (card / "notes.avi").write_text("field notes, not a video\n")
    unknown_codec(card / "codec.avi", photo_dir / "coffee.jpg")
    _zero_frame_avi(card / "zero.avi")
    return card


def _zero_frame_avi(path: Path) -> None:
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        container.start_encoding()


# --- discovery and sampling -----------------------------------------------------------------------
def test_folders_and_lists_take_videos_in_any_case(video_card, tmp_path):
    names = {item.filepath for item in discover([video_card], relative=True)}
    assert set(GOOD) <= names and set(BROKEN) <= names and "chelsea.jpg" in names
    listing = tmp_path / "list.txt"
    listing.write_text(f"{video_card / 'UPPER.MOV'}\n{video_card / 'pan.mkv'}\n")
    assert [i.path.name for i in discover([listing])] == ["UPPER.MOV", "pan.mkv"]


def test_sampling_interval_cap_and_keyframe_only_decoding(photo_dir, tmp_path):
    keyed = write_video(tmp_path / "keyed.mp4", photo_dir / "chelsea.jpg", gop=10)  # a keyframe every second
    sparse = write_video(tmp_path / "sparse.mp4", photo_dir / "chelsea.jpg", gop=30)  # one keyframe in 3 s
    for path, keyframes in ((keyed, True), (sparse, False)):
        with VideoReader(path) as reader:
            decoded = _count_decoded(reader)
            numbers = [f.number for f in reader.sampled(VideoSampling(1.0, 100))]
            assert numbers == [0, 10, 20] and reader.info.frame_rate == 10.0
            assert reader.info.keyframes_only is keyframes
            assert decoded() == (3 if keyframes else 30)  # keyframe-only decodes 3 frames, not 30
    with VideoReader(sparse) as reader:
        assert [f.number for f in reader.sampled(VideoSampling(0.5, 4))] == [0, 5, 10, 15]  # capped at 4


def _count_decoded(reader: VideoReader):
    count = [0]
    inner = reader._decoded

    def counting():
        for frame in inner():
            count[0] += 1
            yield frame

    reader._decoded = counting
    return lambda: count[0]


@pytest.mark.parametrize("name, reason", [("cut.mp4", "not a video FFmpeg can read"), ("empty.mp4", "empty file"),
                                          ("notes.avi", "not a video FFmpeg can read"), ("codec.avi", "unsupported video codec"),
                                          ("zero.avi", "no video frame could be decoded")])
def test_broken_videos_say_why(video_card, name, reason):
    with pytest.raises(ImageDecodeError) as err:
        with VideoReader(video_card / name) as reader:
            list(reader.sampled(VideoSampling()))
    assert reason in err.value.reason


def test_a_truncated_video_keeps_the_frames_it_had(video_card):
    with VideoReader(video_card / "cut.avi") as reader:
        numbers = [f.number for f in reader.sampled(VideoSampling())]
    assert numbers == [0, 10] and "truncated or damaged" in reader.info.note


# --- classify: the three formats ------------------------------------------------------------------
def test_megadetector_video_output_passes_the_validator(tiny_bundle, video_card, tmp_path):
    out = tmp_path / "videos.json"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out, "--relative-paths") == 1
    doc = assert_md_valid(out)
    entries = {im["file"]: im for im in doc["images"]}
    assert set(entries) == set(GOOD) | set(BROKEN) | {"chelsea.jpg", "coffee.jpg"}
    for name in GOOD:
        im = entries[name]
        assert im["frame_rate"] == 10.0 and im["frames_processed"] in ([0, 10, 20], [0, 12, 24])
        assert [d["frame_number"] for d in im["detections"]] == im["frames_processed"]
        assert all(d["bbox"] == [0.0, 0.0, 1.0, 1.0] and d["classifications"] for d in im["detections"])
        assert len(im["video_classifications"]) == 4 and _mean_rule_holds(im)
    assert entries["cut.avi"]["frames_processed"] == [0, 10] and "truncated" in entries["cut.avi"]["note"]
    for name in set(BROKEN) - {"cut.avi"}:
        im = entries[name]
        assert im["failure"] and im["detections"] is None and im["frame_rate"] == -1.0 and im["frames_processed"] == []
    meta = doc["info"]["classifier_metadata"]
    assert "one frame every 1 s" in meta["video_sampling"] and "mean over frames" in meta["video_rollup"]
    assert "frame_rate" not in entries["chelsea.jpg"] and len(entries["chelsea.jpg"]["detections"]) == 1


def _mean_rule_holds(im: dict) -> bool:
    """The roll-up is the mean over frames of each label's score (0 where a frame does not list it)."""
    n = len(im["detections"])
    for category, score in im["video_classifications"]:
        total = sum(s for d in im["detections"] for c, s in d["classifications"] if c == category)
        if abs(total / n - score) > 2e-4 * n:
            return False
    return True


def test_csv_has_one_row_per_video_and_jsonl_the_frames(tiny_bundle, video_card, tmp_path):
    out_csv, out_jsonl = tmp_path / "v.csv", tmp_path / "v.jsonl"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out_csv, "--relative-paths") == 1
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    by_name = {r["filepath"]: r for r in rows}
    assert len(rows) == len(by_name) == len(GOOD) + len(BROKEN) + 2
    assert by_name["clip.mp4"]["frames_processed"] == "0;10;20" and by_name["clip.mp4"]["label_1"]
    assert by_name["notes.avi"]["failure"] and by_name["notes.avi"]["frame_rate"] == "-1.0"
    assert by_name["chelsea.jpg"]["frame_rate"] == "" and by_name["chelsea.jpg"]["label_1"]
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out_jsonl, "--relative-paths") == 1
    lines = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    frames = [r for r in lines if "frame_number" in r and r["filepath"] == "vidéo 鹿/ciervo ñ.mp4"]
    video = next(r for r in lines if r["filepath"] == "vidéo 鹿/ciervo ñ.mp4" and "frame_number" not in r)
    assert [r["frame_number"] for r in frames] == video["frames_processed"] == [0, 10, 20]
    assert all(len(r["predictions"]) == 4 for r in frames) and video["predictions"][0]["label"] == by_name["vidéo 鹿/ciervo ñ.mp4"]["label_1"]


def test_frame_interval_and_cap_reach_the_outputs(tiny_bundle, video_card, tmp_path):
    out = tmp_path / "dense.json"
    assert classify(tiny_bundle, video_card / "clip.mp4", "--labels", LABELS, "--out", out,
                    "--frame-interval", "0.5", "--max-frames", "3") == 0
    doc = assert_md_valid(out)
    assert doc["images"][0]["frames_processed"] == [0, 5, 10]
    assert doc["info"]["classifier_metadata"]["run_fingerprint"]["video_sampling"] == {"interval": 0.5, "max_frames": 3}


def test_a_video_without_pyav_is_a_failure_naming_the_extra(tiny_bundle, video_card, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    out = tmp_path / "nopyav.csv"
    assert classify(tiny_bundle, video_card / "clip.mp4", video_card / "chelsea.jpg", "--labels", LABELS, "--out", out) == 1
    rows = {Path(r["filepath"]).name: r for r in csv.DictReader(out.open())}
    assert VIDEO_EXTRA in rows["clip.mp4"]["failure"] and rows["chelsea.jpg"]["failure"] == ""


# --- resume ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_resume_keeps_finished_videos_byte_for_byte(tiny_bundle, video_card, tmp_path, capsys, fmt):
    out = tmp_path / f"v.{fmt}"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out, "--relative-paths") == 1
    before = out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out, "--relative-paths", "--resume") == 1
    summary = capsys.readouterr().out
    assert f"kept {len(GOOD) + 3} done before" in summary  # good videos, the truncated one, two stills
    if fmt == "json":
        drop = lambda doc: [im for im in doc["images"]]  # noqa: E731  (the info block holds the time)
        assert drop(json.loads(out.read_text())) == drop(json.loads(before))
    else:
        assert out.read_text(encoding="utf-8") == before


def test_resume_redoes_a_video_missing_a_frame(tiny_bundle, video_card, tmp_path, capsys):
    out = tmp_path / "v.jsonl"
    assert classify(tiny_bundle, video_card / "clip.mp4", video_card / "pan.mkv", "--labels", LABELS, "--out", out) == 0
    lines = out.read_text().splitlines()
    torn = [line for line in lines if not ('"frame_number": 20' in line and "clip.mp4" in line)]
    assert len(torn) == len(lines) - 1
    out.write_text("\n".join(torn) + "\n")
    capsys.readouterr()
    assert classify(tiny_bundle, video_card / "clip.mp4", video_card / "pan.mkv", "--labels", LABELS, "--out", out, "--resume") == 0
    assert "1 done again" in capsys.readouterr().out and out.read_text().splitlines() == lines


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("first, then", [((), ("--frame-interval", "2")), (("--max-frames", "2"), ())])
def test_resume_refuses_other_video_sampling(tiny_bundle, video_card, tmp_path, capsys, fmt, first, then):
    """Either way round: sampling recorded then and not now (the default), or now and not then."""
    out = tmp_path / f"v.{fmt}"
    assert classify(tiny_bundle, video_card / "clip.mp4", "--labels", LABELS, "--out", out, *first) == 0
    capsys.readouterr()
    assert classify(tiny_bundle, video_card / "clip.mp4", "--labels", LABELS, "--out", out, "--resume", *then) == 2
    assert "video sampling" in capsys.readouterr().err


# --- --detections on a MegaDetector video file, and embed -----------------------------------------
def test_detections_on_video_frames(tiny_bundle, video_card, tmp_path):
    md = {"info": {"format_version": "1.5", "detector": "md_v5a.0.0.pt"},
          "detection_categories": {"1": "animal", "2": "person"},
          "images": [{"file": "clip.mp4", "frame_rate": 10.0, "frames_processed": [0, 10, 20], "detections": [
              {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5], "frame_number": 10},
              {"category": "1", "conf": 0.8, "bbox": [0.4, 0.2, 0.5, 0.6], "frame_number": 20},
              {"category": "2", "conf": 0.9, "bbox": [0.0, 0.0, 0.3, 0.3], "frame_number": 0}]},
              {"file": "notes.avi", "frame_rate": -1.0, "frames_processed": [], "failure": "Failure processing video", "detections": None},
              {"file": "pan.mkv", "frame_rate": 10.0, "frames_processed": [0, 500], "detections": [
                  {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5], "frame_number": 500}]}]}  # past its end
    md_path = tmp_path / "md_video.json"
    md_path.write_text(json.dumps(md))
    out = tmp_path / "species.json"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--detections", md_path, "--out", out) == 1
    doc = assert_md_valid(out)
    clip = doc["images"][0]
    assert clip["frame_rate"] == 10.0 and clip["frames_processed"] == [0, 10, 20]
    assert [("classifications" in d, d["frame_number"]) for d in clip["detections"]] == [(True, 10), (True, 20), (False, 0)]
    assert doc["images"][1]["failure"] == "Failure processing video" and doc["images"][1]["frame_rate"] == -1.0
    assert "could be decoded" in doc["images"][2]["classification_failure"] and doc["images"][2]["detections"][0]["frame_number"] == 500
    out_csv = tmp_path / "species.csv"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--detections", md_path, "--out", out_csv) == 1
    rows = [r for r in csv.DictReader(out_csv.open()) if r["filepath"] == "clip.mp4"]
    assert [r["frame_number"] for r in rows] == ["10", "20", "0"] and rows[0]["label_1"] and not rows[2]["label_1"]


def test_embed_has_one_row_per_sampled_frame(tiny_bundle, video_card, tmp_path):
    out = tmp_path / "e.npy"
    assert main(["embed", str(tiny_bundle), str(video_card / "clip.mp4"), str(video_card / "pan.mkv"),
                 str(video_card / "chelsea.jpg"), str(video_card / "notes.avi"), "--out", str(out), "--no-progress",
                 "--relative-paths"]) == 1
    index = json.loads(out.with_suffix(".json").read_text())
    rows = [(im["filepath"], im.get("frame_number")) for im in index["images"]]
    assert rows == [("clip.mp4", 0), ("clip.mp4", 10), ("clip.mp4", 20), ("pan.mkv", 0), ("pan.mkv", 12), ("pan.mkv", 24),
                    ("chelsea.jpg", None)]
    assert np.load(out).shape == (7, 32) and [f["filepath"] for f in index["failures"]] == ["notes.avi"]

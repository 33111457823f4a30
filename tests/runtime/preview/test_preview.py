"""``bioclip-edge preview`` and ``classify --preview`` on real classify outputs (MegaDetector JSON,
CSV, JSON Lines, ``--detections``), a synthetic video output, paging, reruns and bad inputs."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from bioclip_edge.cli import main
from tests.helpers.preview_runs import LABELS, classify, make_runs, make_video, refs, target, video_detector_output


@pytest.fixture(scope="module")
def runs(tiny_bundle, photo_dir, tmp_path_factory):
    return make_runs(tiny_bundle, photo_dir, tmp_path_factory.mktemp("preview-runs"))


def preview(*args: object) -> int:
    return main(["preview", *map(str, args), "--no-progress"])


def pages(site: Path) -> list[Path]:
    return sorted(site.glob("*.html"))


def assert_links_resolve(site: Path) -> None:
    """Every picture of every page is a file inside the site; every link is relative and resolves
    (pages to pages, thumbnails to originals that exist)."""
    for page in pages(site):
        found = refs(page)
        for src in found.srcs:
            assert not src.startswith(("/", "file:", "http")), src
            assert target(page, src).is_file() and target(page, src).is_relative_to(site.resolve()), (page, src)
        for link in found.hrefs:
            assert not link.startswith(("/", "file:", "http")), link
            if link.endswith(".html"):
                assert target(page, link).is_file(), (page, link)


def test_megadetector_output_site(runs, tmp_path):
    site = tmp_path / "site"
    assert preview(runs.md, "--out", site) == 0  # relative paths: the default image root is the output's folder ...
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "image not found" not in index and "RANDOM WEIGHTS" in index and 'class="banner"' in index
    for fact in ("local-dir:", "vision.fp32", "CPUExecutionProvider", "<svg", 'class="bars"'):
        assert fact in index
    assert '<a href="failures.html">1</a>' in index
    labels = [p for p in pages(site) if p.name.startswith("label-")]
    assert labels and all("RANDOM WEIGHTS" in p.read_text(encoding="utf-8") for p in labels)
    shown = "".join(p.read_text(encoding="utf-8") for p in labels)
    assert shown.count('<figure class="card">') == 5  # six files, one failed
    assert "léopard café #1.jpg" in shown and "<ol class=\"top\">" in shown
    assert "broken.jpg" in (site / "failures.html").read_text(encoding="utf-8")
    # ... which is not where the photos are: every thumbnail is a placeholder until --image-root says where
    assert all(src.endswith("_missing.png") for p in labels for src in refs(p).srcs)
    assert preview(runs.md, "--out", site, "--image-root", runs.card) == 0
    srcs = [src for p in pages(site) for src in refs(p).srcs]
    assert len(srcs) == 5 and all(src.endswith(".jpg") for src in srcs)
    assert_links_resolve(site)
    thumb = target(labels[0], refs(labels[0]).srcs[0])
    with Image.open(thumb) as im:
        assert im.format == "JPEG" and max(im.size) <= 256


def test_csv_jsonl_and_parquet_sites(runs, tmp_path):
    for output in (runs.csv, runs.jsonl):
        site = tmp_path / output.suffix.lstrip(".")
        assert preview(output, "--out", site) == 0  # absolute paths: no image root needed
        index = (site / "index.html").read_text(encoding="utf-8")
        assert "not recorded in this output" in index  # CSV and JSON Lines hold no model or backend
        assert ("RANDOM WEIGHTS" in index) == (output == runs.jsonl)  # the CSV run's bundle is not flagged
        srcs = [src for p in pages(site) for src in refs(p).srcs]
        assert len(srcs) == 5 and all(src.endswith(".jpg") for src in srcs)
        assert_links_resolve(site)
    if importlib.util.find_spec("pyarrow") is None:
        return
    parquet = tmp_path / "p.parquet"  # Parquet keeps the run's metadata whole
    assert classify(runs.random_bundle, runs.card, "--labels", LABELS, "--out", parquet) == 1
    assert preview(parquet, "--out", tmp_path / "parquet") == 0
    index = (tmp_path / "parquet" / "index.html").read_text(encoding="utf-8")
    assert "RANDOM WEIGHTS" in index and "CPUExecutionProvider" in index and "not recorded" not in index
    assert len([src for p in pages(tmp_path / "parquet") for src in refs(p).srcs if src.endswith(".jpg")]) == 5


def test_detections_draw_boxes(runs, tmp_path):
    site = tmp_path / "site"
    assert preview(runs.detections, "--out", site, "--image-root", runs.card) == 0
    shown = "".join(p.read_text(encoding="utf-8") for p in pages(site) if p.name.startswith("label-"))
    assert 'style="left:10.00%;top:20.00%;width:50.00%;height:60.00%"' in shown  # the cat's box
    assert 'style="left:25.00%;top:25.00%;width:50.00%;height:50.00%"' in shown  # the odd name's box
    assert ">person 0.80<" in shown  # a box of another category is drawn, not classified
    assert "(no classified box)" in shown  # coffee.jpg: no box
    failures = (site / "failures.html").read_text(encoding="utf-8")
    assert "gone.jpg" in failures and "Failure image access" in failures
    assert_links_resolve(site)


@pytest.fixture(scope="module")
def video_card(photo_dir, tmp_path_factory) -> Path:
    pytest.importorskip("av")
    card = tmp_path_factory.mktemp("video card")
    make_video(card / "trap 07 ünïcode.mp4")  # 12 frames at 6 fps
    shutil.copy(photo_dir / "chelsea.jpg", card / "chelsea.jpg")
    return card


@pytest.mark.parametrize("suffix", [".json", ".csv", ".jsonl"])
def test_video_frame_strip_of_a_real_run(tiny_bundle, video_card, tmp_path, suffix):
    """classify on a video (every 0.5 s: frames 0, 3, 6, 9) then preview: a strip of those frames."""
    out = tmp_path / f"p{suffix}"
    assert classify(tiny_bundle, video_card, "--labels", LABELS, "--out", out, "--frame-interval", "0.5") == 0
    site = tmp_path / "site"
    assert preview(out, "--out", site) == 0
    html = "".join(p.read_text(encoding="utf-8") for p in pages(site) if p.name.startswith("label-"))
    assert html.count('<figure class="card video">') == 1 and html.count('<figure class="card">') == 1
    assert html.count('<div class="frame">') == 4 and "frame 9: " in html
    if suffix != ".csv":  # CSV keeps the video's roll-up, not each frame's labels
        assert "no label" not in html
    srcs = {src for p in pages(site) for src in refs(p).srcs}
    assert len(srcs) == 5 and all(s.endswith(".jpg") for s in srcs)  # four frames and the photo
    assert_links_resolve(site)


def test_detector_video_file_with_boxes(video_card, tmp_path):
    """MegaDetector's own video output: boxes per frame drawn on that frame; a failed video listed."""
    output = video_card / "md video.json"
    output.write_text(json.dumps(video_detector_output("trap 07 ünïcode.mp4")), encoding="utf-8")
    try:
        site = tmp_path / "site"
        assert preview(output, "--out", site) == 0
    finally:
        output.unlink()
    page = next(p for p in pages(site) if p.name.startswith("label-"))
    html = page.read_text(encoding="utf-8")
    assert '<figure class="card video">' in html and html.count('<div class="frame">') == 3
    assert html.count('class="box"') == 4 and 'style="left:50.00%;top:20.00%;width:30.00%;height:40.00%"' in html
    thumbs = [target(page, src) for src in refs(page).srcs]
    assert len(set(thumbs)) == 3 and all(t.suffix == ".jpg" for t in thumbs)
    assert "Failure reading video" in (site / "failures.html").read_text(encoding="utf-8")


def test_paging_and_missing_images(tmp_path):
    """A label with 250 files gets three pages of at most 100; missing images get a placeholder."""
    records = [{"filepath": f"gone/{i:03d}.jpg", "predictions": [{"label": "lion", "score": i / 250, "index": 0}],
                "failures": []} for i in range(250)]
    output = tmp_path / "many.jsonl"
    output.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    site = tmp_path / "site"
    assert preview(output, "--out", site) == 0
    lion = sorted(p for p in pages(site) if p.name.startswith("label-"))
    assert [p.name for p in lion] == ["label-0001-lion-2.html", "label-0001-lion-3.html", "label-0001-lion.html"]
    counts = [p.read_text(encoding="utf-8").count('<figure class="card">') for p in lion]
    assert sorted(counts) == [50, 100, 100]
    first = (site / "label-0001-lion.html").read_text(encoding="utf-8")
    assert first.index("gone/249.jpg") < first.index("gone/248.jpg")  # best score first
    assert 'href="label-0001-lion-2.html"' in first and 'href="label-0001-lion-3.html"' in first
    assert {src for p in lion for src in refs(p).srcs} == {"thumbs/_missing.png"}
    assert_links_resolve(site)
    output.write_text("".join(json.dumps(r) + "\n" for r in records[:10]), encoding="utf-8")
    assert preview(output, "--out", site) == 0  # fewer files: the pages no longer needed are gone
    assert [p.name for p in pages(site) if p.name.startswith("label-")] == ["label-0001-lion.html"]


def test_rerun_reuses_thumbnails(runs, tmp_path):
    site = tmp_path / "site"
    assert preview(runs.csv, "--out", site) == 0
    thumbs = {p: p.stat().st_mtime_ns for p in (site / "thumbs").glob("*.jpg")}
    assert len(thumbs) == 5
    time.sleep(0.05)
    assert preview(runs.csv, "--out", site) == 0
    assert {p: p.stat().st_mtime_ns for p in (site / "thumbs").glob("*.jpg")} == thumbs  # nothing made again
    later = time.time() + 5
    os.utime(runs.card / "rocket.jpg", (later, later))  # a changed source is thumbnailed again
    assert preview(runs.csv, "--out", site) == 0
    changed = [p for p in thumbs if p.stat().st_mtime_ns != thumbs[p]]
    assert len(changed) == 1
    assert preview(runs.csv, "--out", site, "--thumb-size", "128") == 0  # other settings: other files
    assert len(list((site / "thumbs").glob("*.jpg"))) == 10


def test_classify_with_preview(tiny_bundle, runs, tmp_path, capsys):
    site = tmp_path / "site"
    out = tmp_path / "p.csv"
    assert classify(tiny_bundle, runs.card, "--labels", LABELS, "--out", out, "--relative-paths", "--preview", site) == 1
    assert "preview of 6 file(s)" in capsys.readouterr().out
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "CPUExecutionProvider" in index and "not recorded" not in index  # the classifier said what ran
    assert len([src for p in pages(site) for src in refs(p).srcs if src.endswith(".jpg")]) == 5  # relative to the card
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    assert classify(tiny_bundle, runs.card, "--labels", LABELS, "--out", tmp_path / "q.csv", "--preview", blocker) == 2
    assert not (tmp_path / "q.csv").exists()  # refused before any image was read
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("content, expected", [
    (None, "no such file"),
    ("just some notes\n", "not a bioclip-edge or MegaDetector output"),
    ('{"results": []}', "not a MegaDetector output"),
    ("name,label\na.jpg,lion\n", "not a bioclip-edge or MegaDetector output"),
    ('{"filepath": "a.jpg"}\nnot json\n', "line 2 is not a result record"),
])
def test_bad_predictions_files(tmp_path, capsys, content, expected):
    path = tmp_path / "preds file.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert preview(path, "--out", tmp_path / "site") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and expected in err, err
    assert "--overwrite" not in err and "classify --out" in err  # says what to give instead
    assert not (tmp_path / "site").exists()


def test_bad_out_folders(runs, tmp_path, capsys):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    assert preview(runs.csv, "--out", afile) == 2
    assert "is a file" in capsys.readouterr().err
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "keep.jpg").write_bytes(b"x")
    assert preview(runs.csv, "--out", photos) == 2
    assert "holds other files" in capsys.readouterr().err
    assert preview(runs.csv, "--out", tmp_path / "site", "--image-root", tmp_path / "nowhere") == 2
    assert "--image-root" in capsys.readouterr().err


def test_detector_only_file(runs, tmp_path):
    """MegaDetector's own output (boxes, no classifications) is previewed too."""
    from tests.helpers.preview_runs import detector_output

    output = runs.card / "md only.json"
    output.write_text(json.dumps(detector_output()), encoding="utf-8")
    try:
        site = tmp_path / "site"
        assert preview(output, "--out", site) == 0
        index = (site / "index.html").read_text(encoding="utf-8")
        assert "md_v5a.0.0.pt" in index and "RANDOM WEIGHTS" not in index
        assert_links_resolve(site)
    finally:
        output.unlink()


def test_text_is_escaped_and_links_quoted(tmp_path):
    """Labels and paths are text, never markup; odd file names are URL-quoted links."""
    folder = tmp_path / "a & b"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "x?y #1 é.jpg")
    records = [{"filepath": "a & b/x?y #1 é.jpg", "failures": [],
                "predictions": [{"label": '<script>alert("x")</script>', "score": 0.9, "index": 0}]},
               {"filepath": "<img src=x onerror=alert(1)>.jpg", "failures": ["<b>bad</b> & worse"]}]
    output = tmp_path / "p.jsonl"
    output.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    site = tmp_path / "site"
    assert preview(output, "--out", site) == 0
    text = "".join(p.read_text(encoding="utf-8") for p in pages(site))
    assert "<script" not in text and "<img src=x" not in text and "<b>bad" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text and "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in text
    label = next(p for p in pages(site) if p.name.startswith("label-"))
    assert "a%20%26%20b/x%3Fy%20%231%20%C3%A9.jpg" in label.read_text(encoding="utf-8")  # the link to the original
    assert_links_resolve(site)
    assert all(target(label, link).exists() for link in refs(label).hrefs)

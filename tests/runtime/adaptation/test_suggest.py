"""``labels adapt --suggest N --pool DIR``: bursts told apart by capture time (EXIF, else the file's
time) even inside one folder, one frame per burst before any second, and a preview page of the
chosen frames next to the CSV. Real night-site photos with EXIF times written by Pillow."""

from __future__ import annotations

import csv
import os
import re
import time
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from bioclip_edge.cli import main
from bioclip_edge.errors import UserError
from bioclip_edge.runtime.adaptation.suggest import Suggestion, pick
from tests.helpers.site_photos import site_crops, write_train_folder
from tests.helpers.trained_tiny import zero_shot_labels


def _s(name: str, margin: float, sequence: str, group: str = "cam0") -> Suggestion:
    return Suggestion(name, group, "a", 0.5 + margin / 2, "b", 0.5 - margin / 2, sequence=sequence)


def test_one_burst_gives_one_frame_before_any_gives_two():
    burst = [_s(f"b{i}.jpg", 0.01 * i, "burst") for i in range(5)]  # the five least certain frames
    others = [_s("x.jpg", 0.3, "x"), _s("y.jpg", 0.5, "y"), _s("z.jpg", 0.2, "z", group="cam1")]
    chosen = pick(burst + others, 4)
    assert [s.filepath for s in chosen] == ["b0.jpg", "z.jpg", "x.jpg", "y.jpg"]  # least certain first
    assert [s.filepath for s in pick(burst + others, 5)][:2] == ["b0.jpg", "b1.jpg"]  # then the burst again
    # without sequences, folders still spread the list
    flat = [_s("c0/a.jpg", 0.1, ""), _s("c0/b.jpg", 0.2, ""), _s("c1/c.jpg", 0.9, "", group="c1")]
    assert {s.filepath for s in pick(flat, 2)} == {"c0/a.jpg", "c1/c.jpg"}


def _save(image: Image.Image, path: Path, when: str | None) -> None:
    exif = Image.Exif()
    if when:
        exif[0x010F], exif[0x0110] = "Reconyx", "HyperFire 2"
        exif.get_ifd(0x8769)[0x9003] = when
    image.save(path, "JPEG", quality=90, exif=exif)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A night site's training folder, and a pool: in cam0 a 4-frame EXIF burst plus two lone EXIF
    frames an hour apart; in cam1 three frames without EXIF, two of them 5 s apart by file time."""
    root = tmp_path_factory.mktemp("suggest")
    crops, truth = site_crops(2, "night", seed=1)
    write_train_folder(root / "train", crops, truth, zero_shot_labels())
    pool_crops, _ = site_crops(1, "night", seed=7)
    cam0, cam1 = root / "pool" / "cam0", root / "pool" / "cam1"
    cam0.mkdir(parents=True)
    cam1.mkdir(parents=True)
    for i in range(4):
        _save(pool_crops[0], cam0 / f"burst{i}.jpg", f"2024:03:17 05:42:{10 + 2 * i:02d}")
    _save(pool_crops[1], cam0 / "lone1.jpg", "2024:03:17 06:42:00")
    _save(pool_crops[2], cam0 / "lone2.jpg", "2024:03:17 07:42:00")
    base = time.mktime(datetime(2024, 3, 18, 22, 0, 0).timetuple())
    for i, offset in enumerate((0, 5, 3600)):
        path = cam1 / f"m{i}.jpg"
        _save(pool_crops[3 + i], path, None)
        os.utime(path, (base + offset, base + offset))
    return root


def test_suggest_groups_bursts_by_capture_time_and_writes_a_page(trained_fp32_bundle, site, tmp_path, capsys):
    out = tmp_path / "site.npz"
    assert main(["labels", "adapt", str(trained_fp32_bundle), "--examples", str(site / "train"), "--out", str(out),
                 "--method", "prototype", "--views", "1", "--suggest", "5", "--pool", str(site / "pool")]) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "site.suggest.csv", newline="")))
    assert len(rows) == 5
    sequences = {r["filepath"]: r["sequence"] for r in rows}
    # five picks from five bursts: cam0's 4-frame burst gives one frame, cam1's two mtime frames give one
    assert len(set(sequences.values())) == 5
    assert sum(name.startswith("cam0/burst") for name in sequences) == 1
    assert sum(name in ("cam1/m0.jpg", "cam1/m1.jpg") for name in sequences) == 1
    burst = next(r for r in rows if r["filepath"].startswith("cam0/burst"))
    assert burst["sequence"] == "cam0/burst0.jpg (+3)" and burst["captured"].startswith("2024:03:17 05:42")
    timed_by_file = next(r for r in rows if r["filepath"].startswith("cam1/m"))
    assert timed_by_file["captured"].endswith("(mtime)")
    margins = [float(r["margin"]) for r in rows]
    assert margins == sorted(margins)
    page = tmp_path / "site.suggest.html"
    assert str(page) in printed
    _check_page(page, [r["filepath"] for r in rows])


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        if tag == "a":
            self.links.append(a["href"])


def _check_page(page: Path, filepaths: list[str]) -> None:
    """Every card's thumbnail is a real JPEG beside the page; every link resolves; order as the CSV."""
    from urllib.parse import unquote

    html = page.read_text()
    parser = _Links()
    parser.feed(html)
    assert len(parser.images) == len(filepaths)
    for src in parser.images:
        with Image.open(page.parent / unquote(src)) as thumb:
            assert thumb.format == "JPEG" and max(thumb.size) <= 256
    for link in parser.links:
        assert not os.path.isabs(unquote(link)) and (page.parent / unquote(link)).exists(), link
    shown = re.findall(r'<div class="path">([^<]+)</div>', html)
    assert shown == filepaths


def test_suggest_page_and_list_follow_the_overwrite_rule(trained_fp32_bundle, site, tmp_path):
    out = tmp_path / "site.npz"
    (tmp_path / "site.suggest.html").write_text("mine")
    with pytest.raises(UserError, match="suggest.html"):
        main_args = ["labels", "adapt", str(trained_fp32_bundle), "--examples", str(site / "train"), "--out", str(out),
                     "--method", "prototype", "--views", "1", "--suggest", "2", "--pool", str(site / "pool")]
        from bioclip_edge.runtime.adaptation.site import AdaptRequest, adapt

        adapt(AdaptRequest(trained_fp32_bundle, site / "train", out, method="prototype", views=1, suggest=2,
                           pool=site / "pool"))
    assert (tmp_path / "site.suggest.html").read_text() == "mine" and not out.exists()
    assert main(main_args + ["--overwrite"]) == 0
    assert "Frames to label next (2)" in (tmp_path / "site.suggest.html").read_text()

"""The preview site in a real browser: the system's headless Chromium, driven through Playwright.

Every page of sites made from real outputs (whole images with a failure and random weights,
``--detections`` boxes, a video strip, a folder and file name with spaces, ``#`` and non-ASCII
letters) is opened from a ``file://`` URL, as a user opens a mailed folder: no console error, no
failed request, every ``<img>`` decoded (``naturalWidth > 0``). ``.ci/run`` installs Chromium;
elsewhere the test is skipped when ``/usr/bin/chromium`` is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from bioclip_edge.cli import main
from tests.helpers.preview_runs import make_runs, make_video, video_detector_output

CHROMIUM = Path("/usr/bin/chromium")
# In a closed network Chromium waits on connections it makes by itself unless told not to
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install the chromium package (.ci/run does)")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def sites(tiny_bundle, photo_dir, tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("browser")
    runs = make_runs(tiny_bundle, photo_dir, tmp)
    out = tmp / "sites ünïcode #1"
    made = []
    for name, output in (("whole", runs.md), ("boxes", runs.detections), ("csv", runs.csv)):
        assert main(["preview", str(output), "--out", str(out / name), "--image-root", str(runs.card), "--no-progress",
                     "--per-page", "2"]) == 0
        made.append(out / name)
    if _has_av():
        clip = make_video(tmp / "clips" / "trap 07 ünïcode.mp4")
        assert main(["classify", str(tiny_bundle), str(clip.parent), "--labels", "lion,leopard", "--out",
                     str(tmp / "clips" / "video.jsonl"), "--frame-interval", "0.5", "--no-progress"]) == 0
        (tmp / "clips" / "md.json").write_text(json.dumps(video_detector_output(clip.name)), encoding="utf-8")
        for name in ("video.jsonl", "md.json"):
            assert main(["preview", str(tmp / "clips" / name), "--out", str(out / name), "--no-progress"]) == 0
            made.append(out / name)
    return made


def _has_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def check_page(browser, url: str) -> dict:
    """Open ``url``; what went wrong on it, and its images' decoded widths."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
    try:
        response = page.goto(url, wait_until="load", timeout=20_000)
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        boxes = page.evaluate("document.querySelectorAll('.box').length")
        links = page.evaluate("Array.from(document.querySelectorAll('a[href$=\".html\"]')).map(a => a.href)")
    finally:
        page.close()
    return {"ok": response is not None and response.ok, "problems": problems, "images": images, "boxes": boxes, "links": links}


def test_every_page_loads_with_every_image(browser, sites):
    seen = 0
    for site in sites:
        pages = sorted(site.glob("*.html"))
        assert pages, site
        for path in pages:
            result = check_page(browser, path.as_uri())
            assert result["ok"] and not result["problems"], (path, result["problems"])
            broken = [src for src, complete, width in result["images"] if not complete or width <= 0]
            assert not broken, (path, broken)
            assert all(Path(unquote(urlparse(link).path)).is_file() for link in result["links"]), (path, result["links"])
            seen += 1
        assert (site / "failures.html").exists()
    assert seen >= 10
    boxes = sum(check_page(browser, p.as_uri())["boxes"] for p in sites[1].glob("label-*.html"))
    assert boxes >= 3  # two on the cat, one on the odd name

"""Screenshots of the preview site for the README: ``docs/preview.png`` (the index of a whole-image
run) and ``docs/preview-boxes.jpg`` (a label page of a ``--detections`` run, boxes drawn).

    .venv/bin/python benchmarks/preview_screenshot.py                  # a tiny random-weight model, ~30 s
    .venv/bin/python benchmarks/preview_screenshot.py --bundle bundles/bioclip

What it runs is what a user runs: ``classify`` on scikit-image's sample photos (one of them under
a folder and file name with spaces and non-ASCII letters, plus a truncated JPEG that fails) with
``--preview``, and on a few hand-placed MegaDetector boxes with ``--detections``; then the
system's headless Chromium (``/usr/bin/chromium`` through Playwright) opens the pages from
``file://`` URLs and saves them. Without ``--bundle`` the model is a tiny
ViT exported with random weights (no hub here), so the pages carry the random-weights banner and
their labels mean nothing: the screenshot shows the page, not a model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABELS = "lion,leopard,spotted hyena,african elephant,plains zebra,impala,human,empty savanna"
TINY_VIT = {"embed_dim": 64, "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def tiny_random_bundle(work: Path) -> Path:
    """A tiny ViT with random weights (a config without weights + allow_random), fp32 only."""
    from bioclip_edge.export.build import ExportConfig, export_bundle
    from bioclip_edge.export.sources import ModelRequest

    model = work / "tiny-vit"
    model.mkdir(parents=True, exist_ok=True)
    pre = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
           "interpolation": "bicubic", "resize_mode": "shortest"}
    (model / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_VIT, "preprocess_cfg": pre}))
    out = work / "bundle"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{model}", allow_random=True), out=out,
                               precisions=("fp32",), parity_images=6))
    return out


def camera_card(work: Path) -> Path:
    """The sample photos as a card: one in an awkwardly named folder, one truncated file."""
    from bioclip_edge.export.reference import SKIMAGE_PHOTOS, write_sample_photos

    card = write_sample_photos(work / "card", SKIMAGE_PHOTOS, quality=88)
    odd = card / "Kenya 2024 – Mara"
    odd.mkdir()
    shutil.move(card / "chelsea.jpg", odd / "léopard café.jpg")
    (card / "DSC_0042.JPG").write_bytes((card / "coffee.jpg").read_bytes()[:400])
    return card


def detector_file(work: Path) -> Path:
    """Hand-placed MegaDetector boxes on a few of the card's photos (an animal, a person, a blank)."""
    def box(category: str, conf: float, bbox: list[float]) -> dict:
        return {"category": category, "conf": conf, "bbox": bbox}

    doc = {"info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt"},
           "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
           "images": [{"file": "cat.jpg", "detections": [box("1", 0.93, [0.22, 0.02, 0.62, 0.96])]},
                      {"file": "Kenya 2024 – Mara/léopard café.jpg", "detections": [box("1", 0.88, [0.3, 0.05, 0.55, 0.9])]},
                      {"file": "astronaut.jpg", "detections": [box("2", 0.91, [0.2, 0.02, 0.62, 0.97]),
                                                               box("1", 0.31, [0.62, 0.55, 0.36, 0.4])]},
                      {"file": "coffee.jpg", "detections": [box("1", 0.42, [0.08, 0.12, 0.8, 0.75])]},
                      {"file": "grass.jpg", "detections": []}]}
    path = work / "md.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def screenshot(pages: list[tuple[Path, Path, bool]], width: int) -> None:
    """Each (page, image file, whole page?): the page opened from its file URL and saved (PNG or JPEG by suffix)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            for page_path, shot, full in pages:
                page = browser.new_page(viewport={"width": width, "height": 720})
                page.goto(page_path.as_uri(), wait_until="load")
                shot.parent.mkdir(parents=True, exist_ok=True)
                jpeg = {"type": "jpeg", "quality": 80} if shot.suffix == ".jpg" else {}
                page.screenshot(path=str(shot), full_page=full, **jpeg)
                page.close()
                print(f"wrote {shot}")
        finally:
            browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle to classify with (default: a tiny random one)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)")
    parser.add_argument("--width", type=int, default=1100, help="browser width in pixels (default 1100)")
    args = parser.parse_args()
    from bioclip_edge.cli import main as cli

    with tempfile.TemporaryDirectory(prefix="preview-shot-") as tmp:
        work = Path(tmp)
        bundle = args.bundle or tiny_random_bundle(work)
        card = camera_card(work)
        site = work / "site"
        cli(["classify", str(bundle), str(card), "--labels", LABELS, "--out", str(work / "predictions.json"),
             "--relative-paths", "--preview", str(site), "--no-progress"])
        boxes = work / "site-boxes"
        cli(["classify", str(bundle), str(card), "--detections", str(detector_file(work)), "--labels", LABELS,
             "--out", str(work / "with-species.json"), "--preview", str(boxes), "--no-progress"])
        label_page = sorted(boxes.glob("label-0001*.html"))[0]
        screenshot([(site / "index.html", args.docs / "preview.png", True),
                    (label_page, args.docs / "preview-boxes.jpg", False)], args.width)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

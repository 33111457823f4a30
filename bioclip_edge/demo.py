"""``make demo``: the main job on an embedded default, offline on a fresh machine.

Exports BioCLIP (hf-hub:imageomics/bioclip; when the hub cannot be reached, the same ViT-B/16
architecture with random weights, said plainly), verifies the bundle, prints its parity table and
size per variant, then classifies a few real photos with the torch-free runtime.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bioclip_edge.cli import main as cli

DEMO_MODEL = "hf-hub:imageomics/bioclip"
DEMO_LABELS = "lion,leopard,cheetah,spotted hyena,african elephant,plains zebra,domestic cat,coffee cup,rocket,person"
DEMO_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def write_photos(folder: Path) -> Path:
    """Real sample photos (scikit-image ships them) as JPEGs, like a camera card."""
    from bioclip_edge.export.reference import write_sample_photos

    return write_sample_photos(folder, DEMO_PHOTOS)


def run(out: Path, fresh: bool) -> int:
    bundle = out / "bioclip"
    if fresh or not (bundle / "manifest.json").exists():
        print(f"== export {DEMO_MODEL} -> {bundle}", flush=True)
        code = cli(["export", DEMO_MODEL, "--out", str(bundle), "--allow-random", "--overwrite"])  # the defaults
        if code not in (0, 1):
            return code
    else:
        print(f"== reusing {bundle} (make demo ARGS=--fresh to export again)")
    print(f"\n== verify {bundle}", flush=True)
    verify = cli(["verify", str(bundle)])
    if "classify" not in _commands():
        return verify
    photos = write_photos(out / "photos")
    print(f"\n== classify {photos} (torch-free runtime; --precision auto picks the graph for this machine)", flush=True)
    predictions = out / "predictions.json"
    code = cli(["classify", str(bundle), str(photos), "--labels", DEMO_LABELS,
                "--out", str(predictions), "--format", "megadetector", "--top-k", "3", "--relative-paths",
                "--overwrite"])  # the demo's own file: each run replaces it
    if predictions.exists():
        print_predictions(predictions)
    return verify or code


def print_predictions(path: Path) -> None:
    """The top labels per photo, read back from the MegaDetector-format file Timelapse would load."""
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    names = data.get("classification_categories", {})
    print(f"\n{path} (MegaDetector batch format {data['info'].get('format_version')}):")
    for image in data["images"]:
        if "failure" in image:
            print(f"  {image['file']}: FAILED {image['failure']}")
            continue
        ranked = [c for d in image.get("detections", []) for c in d.get("classifications", [])]
        shown = ", ".join(f"{names.get(cat, cat)} {conf:.2f}" for cat, conf in ranked[:3])
        print(f"  {image['file']}: {shown}")


def _commands() -> set[str]:
    from bioclip_edge.cli import build_parser

    parser = build_parser()
    for action in parser._subparsers._group_actions:  # argparse keeps subcommands here
        return set(action.choices)
    return set()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--fresh", action="store_true", help="export again even if the bundle exists")
    args = p.parse_args(argv)
    return run(args.out, args.fresh)


if __name__ == "__main__":
    sys.exit(main())

"""``make demo``: the main job on an embedded default, offline on a fresh machine.

Two models go through the same steps (export to a bundle, verify, classify with the torch-free
runtime):

1. BioCLIP (hf-hub:imageomics/bioclip). When the hub cannot be reached it is the same ViT-B/16
   architecture with random weights: its bundle, parity table and sizes are real, its labels are
   not, and the demo says so next to them.
2. The small trained CLIP kept in the checkout for the tests (``tests/data/trained-tiny``: a 3.8 MB
   ViT trained on scikit-image's sample photos, with ``training.json`` saying how). It is
   classified on held-out crops of those photos, so the demo can show correct top-1 labels, each
   checked against the subject the crop was cut from. The folder is read as data; nothing is
   imported from ``tests``. On an install without the checkout the step is skipped with a note
   (``--trained-model PATH`` points elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bioclip_edge.cli import main as cli

DEMO_MODEL = "hf-hub:imageomics/bioclip"
DEMO_LABELS = "lion,leopard,cheetah,spotted hyena,african elephant,plains zebra,domestic cat,coffee cup,rocket,person"
DEMO_PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")
TRAINED_MODEL = Path(__file__).resolve().parents[1] / "tests" / "data" / "trained-tiny"
HELD_OUT_PER_PHOTO = 1  # held-out crops per sample photo: 16 images, a few seconds


def write_photos(folder: Path) -> Path:
    """Real sample photos (scikit-image ships them) as JPEGs, like a camera card."""
    from bioclip_edge.export.reference import write_sample_photos

    return write_sample_photos(folder, DEMO_PHOTOS)


def export_once(model: str, bundle: Path, fresh: bool) -> int:
    """Export ``model`` unless a bundle is already there (0 or 1: a bundle was written)."""
    if not fresh and (bundle / "manifest.json").exists():
        print(f"== reusing {bundle} (make demo ARGS=--fresh to export again)")
        return 0
    print(f"== export {model} -> {bundle}", flush=True)
    return cli(["export", model, "--out", str(bundle), "--allow-random", "--overwrite"])  # the defaults


def run_bioclip(out: Path, fresh: bool) -> tuple[int, list[str]]:
    """BioCLIP (or its architecture with random weights): export, verify, classify sample photos."""
    bundle = out / "bioclip"
    code = export_once(DEMO_MODEL, bundle, fresh)
    if code not in (0, 1):
        return code, []
    print(f"\n== verify {bundle}", flush=True)
    verify = cli(["verify", str(bundle)])
    photos = write_photos(out / "photos")
    print(f"\n== classify {photos} (torch-free runtime; --precision auto picks the graph for this machine)", flush=True)
    predictions = out / "predictions.json"
    code = cli(["classify", str(bundle), str(photos), "--labels", DEMO_LABELS,
                "--out", str(predictions), "--format", "megadetector", "--top-k", "3", "--relative-paths",
                "--overwrite", "--no-progress"])  # the demo's own file: each run replaces it
    lines = [f"{name}: {shown}" for name, shown in read_predictions(predictions)] if predictions.exists() else []
    return verify or code, lines


def read_predictions(path: Path) -> list[tuple[str, str]]:
    """(file, its top labels with scores), read back from the MegaDetector-format file Timelapse would load."""
    data = json.loads(path.read_text(encoding="utf-8"))
    names = data.get("classification_categories", {})
    rows = []
    for image in data["images"]:
        if "failure" in image:
            rows.append((image["file"], f"FAILED {image['failure']}"))
            continue
        ranked = [c for d in image.get("detections") or [] for c in d.get("classifications", [])]
        rows.append((image["file"], ", ".join(f"{names.get(cat, cat)} {conf:.2f}" for cat, conf in ranked[:3])))
    return rows


def held_out_photos(recipe: dict, folder: Path) -> dict[str, str]:
    """Crops the trained model never saw (``training.json``'s held-out seed), as JPEGs, and the label
    each one should get: the caption subject of the photo it was cut from."""
    from bioclip_edge.export.reference import SKIMAGE_PHOTOS, photo_crops

    folder.mkdir(parents=True, exist_ok=True)
    n = HELD_OUT_PER_PHOTO * len(SKIMAGE_PHOTOS)
    truth = {}
    for i, crop in enumerate(photo_crops(n, seed=int(recipe["held_out_seed"]))):
        photo = SKIMAGE_PHOTOS[i % len(SKIMAGE_PHOTOS)]
        name = f"{i:02d}-{photo}.jpg"
        crop.save(folder / name, quality=90)
        truth[name] = recipe["zero_shot_template"].format(recipe["classes"][photo])
    return truth


def run_trained(out: Path, model_dir: Path, fresh: bool) -> tuple[int, list[str]]:
    """The small trained model through the same export and classify steps, scored against the truth."""
    recipe_file = model_dir / "training.json"
    if not recipe_file.is_file():
        return 0, [f"(skipped: no trained model at {model_dir}; it ships in the git checkout, tests/data/trained-tiny)"]
    recipe = json.loads(recipe_file.read_text(encoding="utf-8"))
    bundle = out / "trained-tiny"
    code = export_once(f"local-dir:{model_dir}", bundle, fresh)
    if code not in (0, 1):
        return code, []
    truth = held_out_photos(recipe, out / "held-out")
    labels = sorted(set(truth.values()), key=list(truth.values()).index)
    label_file = out / "trained-tiny-labels.txt"  # one label a line, as --labels reads a text file
    label_file.write_text("\n".join(labels) + "\n", encoding="utf-8")
    predictions = out / "trained-tiny-predictions.json"
    print(f"\n== classify {out / 'held-out'} with {bundle} ({len(labels)} labels: {label_file})", flush=True)
    code = cli(["classify", str(bundle), str(out / "held-out"), "--labels", str(label_file), "--out", str(predictions),
                "--format", "megadetector", "--top-k", "1", "--relative-paths", "--overwrite", "--no-progress"])
    rows = read_predictions(predictions) if predictions.exists() else []
    right = 0
    lines = []
    for name, shown in rows:
        ok = shown.rsplit(" ", 1)[0] == truth.get(Path(name).name)
        right += ok
        lines.append(f"{name}: {shown}  [{'right' if ok else 'WRONG, is ' + repr(truth.get(Path(name).name))}]")
    lines.append(f"top-1 right on {right} of {len(rows)} held-out crops (chance {1 / len(labels):.2f})")
    return code, lines


def report(bioclip: list[str], trained: list[str], out: Path) -> None:
    """Both models' answers side by side, each labelled for what it is."""
    source = _weights_source(out / "bioclip")
    print("\n" + "=" * 100)
    if source.get("random_weights"):
        print("1. BioCLIP ViT-B/16 architecture with RANDOM weights (the model hub could not be reached).\n"
              "   The bundle, parity and sizes are real; these labels are NOT predictions:")
    elif source:
        print(f"1. BioCLIP ({source.get('kind')}: {source.get('ref')}), zero-shot on sample photos:")
    else:
        print("1. BioCLIP:")
    print("\n".join("   " + line for line in bioclip))
    print("\n2. The small TRAINED model (tests/data/trained-tiny: a 3.8 MB CLIP trained on scikit-image's sample\n"
          "   photos), same export and classify steps, on held-out crops it never saw; each top-1 label is\n"
          "   checked against the photo the crop was cut from:")
    print("\n".join("   " + line for line in trained))
    print("=" * 100)


def _weights_source(bundle: Path) -> dict:
    try:
        return json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["model"]["source"]
    except (OSError, KeyError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-out"))
    p.add_argument("--fresh", action="store_true", help="export again even if the bundles exist")
    p.add_argument("--trained-model", type=Path, default=TRAINED_MODEL,
                   help="the small trained model's folder (default: the checkout's tests/data/trained-tiny)")
    p.add_argument("--skip-bioclip", action="store_true", help="only the trained model (seconds instead of minutes)")
    args = p.parse_args(argv)
    code_b, bioclip = (0, ["(skipped: --skip-bioclip)"]) if args.skip_bioclip else run_bioclip(args.out, args.fresh)
    code_t, trained = run_trained(args.out, args.trained_model, args.fresh)
    report(bioclip, trained, args.out)
    return code_b or code_t


if __name__ == "__main__":
    sys.exit(main())

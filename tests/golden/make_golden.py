#!/usr/bin/env python
"""Goldens for ``tests/test_output_stability.py``: what ``bioclip-edge classify`` writes today, pinned.

    python tests/golden/make_golden.py             # rewrites tests/golden/*.json|csv|jsonl|txt
    python tests/golden/make_golden.py --out DIR   # writes them elsewhere (to compare by hand)

Everything is made from scratch in a temporary folder, deterministically:

* the photos and the tiny bundle come from the test suite's own fixtures (``photo_dir``,
  ``tiny_model_dir``, ``tiny_bundle`` in ``tests/conftest.py``): their functions are called here
  with a stand-in ``tmp_path_factory``, so the test (which uses those fixtures) and these goldens
  share one recipe;
* a memory card: those photos, a subfolder with a trail-camera JPEG carrying EXIF (orientation 6,
  date, make, model: ``tests/image_factory.py``), a truncated JPEG and an empty file;
* a MegaDetector file with boxes for the card's images (and MegaDetector's own failure, an image
  gone from the card, a box on an unreadable image, boxes below the threshold and of people);
* a label matrix, ``bioclip-edge labels build`` from a taxonomy CSV.

Then every case of ``CASES`` runs through ``bioclip_edge.cli.main`` (the public CLI, nothing
else of the package), with fp32 on onnxruntime, batch size 4, inline decoding and one model
thread pinned, and its output file is normalised (``Normaliser``) and written as
``<case>.<suffix>``; ``runs.txt`` holds each case's exit code and stdout.

Only regenerate from code whose outputs are known good: these were made from the pre-refactor
HEAD 0c830e2 (issue 11: outputs must not change).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent
TESTS_DIR = GOLDEN_DIR.parent

TEXT_LABELS = "lion,leopard,zebra,empty"
SPECIES_CSV = """kingdom,phylum,class,order,family,genus,species,common_name
Animalia,Chordata,Mammalia,Carnivora,Felidae,Panthera,leo,lion
Animalia,Chordata,Mammalia,Carnivora,Felidae,Panthera,pardus,leopard
Animalia,Chordata,Mammalia,Perissodactyla,Equidae,Equus,quagga,plains zebra
Animalia,Chordata,Aves,Struthioniformes,Struthionidae,Struthio,camelus,common ostrich
Animalia,Chordata,Mammalia,Primates,Hominidae,Homo,sapiens,human
"""
# Everything that could make numbers depend on the machine or on a default is pinned.
PINNED = ("--precision", "fp32", "--backend", "onnxruntime", "--batch-size", "4", "--threads", "0",
          "--model-threads", "1", "--providers", "cpu", "--top-k", "3", "--no-progress", "--decode", "exact")

# case -> (output suffix, options after BUNDLE; {card}, {labels}, {matrix}, {md} are filled in)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "whole_text_megadetector": (".json", ("{card}", "--labels", "{labels}", "--format", "megadetector", "--relative-paths")),
    "whole_text_csv": (".csv", ("{card}", "--labels", "{labels}", "--format", "csv", "--relative-paths")),
    "whole_text_jsonl": (".jsonl", ("{card}", "--labels", "{labels}", "--format", "jsonl", "--relative-paths")),
    "whole_matrix_megadetector": (".json", ("{card}", "--labels", "{matrix}", "--format", "megadetector", "--relative-paths")),
    "whole_matrix_csv_abspaths": (".csv", ("{card}", "--labels", "{matrix}", "--format", "csv")),
    "detections_text_megadetector": (".json", ("{card}", "--detections", "{md}", "--labels", "{labels}", "--format", "megadetector")),
    "detections_text_csv": (".csv", ("{card}", "--detections", "{md}", "--labels", "{labels}", "--format", "csv")),
    "detections_matrix_megadetector": (".json", ("{card}", "--detections", "{md}", "--labels", "{matrix}", "--format", "megadetector",
                                                 "--detection-categories", "all", "--detection-threshold", "0.5")),
}
MD_INPUT_TIME = "2024-03-18 10:00:00"  # the detections file's detection_completion_time
RUNS_FILE = "runs.txt"
GOLDEN_SUFFIXES = {".json", ".csv", ".jsonl", ".txt"}  # what the test compares


def _import_from_tests(name: str):
    """``tests.<name>``, importable also when this file runs as a script (the checkout on sys.path)."""
    import importlib

    if str(TESTS_DIR.parent) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR.parent))
    return importlib.import_module(f"tests.{name}")


# --- inputs ---------------------------------------------------------------------------------------
class _TmpPathFactory:
    """What conftest's fixtures use of pytest's ``tmp_path_factory``: ``mktemp(name)``, numbered like pytest's."""

    def __init__(self, root: Path):
        self.root = root

    def mktemp(self, basename: str, numbered: bool = True) -> Path:
        for i in range(1000):
            path = self.root / (f"{basename}{i}" if numbered else basename)
            if not path.exists():
                path.mkdir(parents=True)
                return path
        raise RuntimeError(f"no free folder name for {basename}")


def fixture_inputs(root: Path) -> tuple[Path, Path]:
    """(photo_dir, tiny_bundle) exactly as conftest's session fixtures make them."""
    conftest = _import_from_tests("conftest")
    factory = _TmpPathFactory(root)
    photos = conftest.photo_dir.__wrapped__(factory)
    model_dir = conftest.tiny_model_dir.__wrapped__(factory)
    bundle = conftest.tiny_bundle.__wrapped__(factory, model_dir, photos)
    return photos, bundle


def make_card(photo_dir: Path, card: Path) -> Path:
    """The photos, a trail-camera JPEG with EXIF in a subfolder, and two files no decoder reads."""
    image_factory = _import_from_tests("helpers.image_factory")
    shutil.copytree(photo_dir, card)
    night = card / "DCIM" / "100RECNX"
    night.mkdir(parents=True)
    image_factory.camera_trap_jpeg(night / "IMG_0001.JPG")
    (night / "IMG_0002.JPG").write_bytes((photo_dir / "chelsea.jpg").read_bytes()[:2000])  # truncated
    (card / "empty.jpg").write_bytes(b"")
    return card


def detections_doc() -> dict:
    """A MegaDetector v5 batch output for the card, with every kind of entry a --detections run meets."""
    return {
        "info": {"format_version": "1.4", "detector": "md_v5a.0.0.pt", "detection_completion_time": MD_INPUT_TIME,
                 "detector_metadata": {"megadetector_version": "v5a.0.0", "typical_detection_threshold": 0.2}},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {"file": "chelsea.jpg", "max_detection_conf": 0.93, "detections": [
                {"category": "1", "conf": 0.93, "bbox": [0.1, 0.05, 0.55, 0.9]},
                {"category": "2", "conf": 0.81, "bbox": [0.6, 0.5, 0.4, 0.5]},
                {"category": "1", "conf": 0.12, "bbox": [0.0, 0.0, 0.2, 0.2]}]},
            {"file": "coffee.jpg", "max_detection_conf": 0.0, "detections": []},
            {"file": "astronaut.jpg", "max_detection_conf": 1, "detections": [
                {"category": "2", "conf": 1, "bbox": [0.2, 0.0, 0.6, 1.0]},
                {"category": "1", "conf": 0.45, "bbox": [0.25, 0.3, 0.003, 0.5]}]},
            {"file": "rocket.jpg", "max_detection_conf": 0.66, "detections": [
                {"category": "3", "conf": 0.66, "bbox": [0.3, 0.1, 0.4, 0.85]}]},
            {"file": "DCIM/100RECNX/IMG_0001.JPG", "max_detection_conf": 0.88, "detections": [
                {"category": "1", "conf": 0.88, "bbox": [0.3, 0.4, 0.35, 0.3]},
                {"category": "1", "conf": 0.55, "bbox": [0.0, 0.7, 1.0, 0.3]}]},
            {"file": "DCIM/100RECNX/IMG_0002.JPG", "max_detection_conf": 0.7, "detections": [
                {"category": "1", "conf": 0.7, "bbox": [0.1, 0.1, 0.5, 0.5]}]},
            {"file": "gone.jpg", "max_detection_conf": 0.7, "detections": [{"category": "1", "conf": 0.7, "bbox": [0, 0, 1, 1]}]},
            {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        ],
    }


def make_inputs(photo_dir: Path, bundle: Path, work: Path) -> dict[str, str]:
    """Card, MegaDetector file and label matrix under ``work``; the values CASES' placeholders take."""
    from bioclip_edge.cli import main

    card = make_card(photo_dir, work / "card")
    md = work / "md_v5a.json"
    md.write_text(json.dumps(detections_doc(), indent=1), encoding="utf-8")
    species = work / "species.csv"
    species.write_text(SPECIES_CSV, encoding="utf-8")
    matrix = work / "kenya.npz"
    code = main(["labels", "build", str(bundle), "--from", str(species), "--out", str(matrix),
                 "--threads", "1", "--no-progress"])
    if code != 0:
        raise RuntimeError(f"labels build exited with {code}")
    return {"card": str(card), "labels": TEXT_LABELS, "matrix": str(matrix), "md": str(md)}


# --- running and normalising ----------------------------------------------------------------------
def run_cases(bundle: Path, inputs: dict[str, str], out_dir: Path) -> dict[str, tuple[int, str, Path]]:
    """Runs every case; case -> (exit code, stdout, output file)."""
    from bioclip_edge.cli import main

    out_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for case, (suffix, options) in CASES.items():
        out = out_dir / f"{case}{suffix}"
        argv = ["classify", str(bundle), *(o.format(**inputs) for o in options), "--out", str(out), *PINNED]
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(argv)
        results[case] = (code, stdout.getvalue(), out)
    return results


def _digest(value) -> str:
    """A run-token field's digest (runtime/run_fingerprint.py: the first 6 hex of the sha256 of its JSON)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:6]


_TOKEN = re.compile(r"\b(\d+):((?:[0-9a-f]{6}\.){5,}[0-9a-f]{6})\b")  # CSV/JSONL "run": "2:d4735e.1a2b3c...."
_TIMES = re.compile(r'("\w*completion_time": )"([^"]*)"')
_VERSION = re.compile(r'("bioclip_edge_version": )"[^"]*"')
_DURATION = re.compile(r"in \d+(?:\.\d+)? s \(\d+(?:\.\d+)? images/s\)")


class Normaliser:
    """Replaces what legitimately differs between checkouts, machines and runs, and nothing else:

    * the temporary folders (inputs, outputs, the bundle, the model folder its id names);
    * the sha256 of the bundle's ONNX graphs: torch's exporter records the exporter's source file
      (``.../export/towers.py``, with line numbers) in node metadata, so the same graph has other
      bytes in another checkout;
    * in the CSV/JSONL run tokens, the digests of those two (model id, vision graph sha256);
    * the completion timestamps (but the detections file's own, which must come through), bioclip-edge's
      version, and stdout's duration and rate.
    """

    def __init__(self, bundle: Path, folders: dict[str, Path]):
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        model = manifest["model"]
        literals = [(str(path), f"<{name}>") for name, path in folders.items()]
        literals.append((model["source"]["ref"], "<MODEL_DIR>"))
        self.token_digests = {_digest(model["id"]): "<model-id>"}
        for graph in sorted(bundle.glob("*.onnx")):
            sha = hashlib.sha256(graph.read_bytes()).hexdigest()
            literals.append((sha, f"<sha256 of {graph.name}>"))
            self.token_digests[_digest(sha)] = f"<{graph.name}>"
        self.literals = sorted(literals, key=lambda pair: -len(pair[0]))  # longest first: a folder inside another

    def __call__(self, text: str) -> str:
        for literal, placeholder in self.literals:
            text = text.replace(literal, placeholder)
        text = _TIMES.sub(self._time, text)
        text = _VERSION.sub(r'\1"<VERSION>"', text)
        text = _DURATION.sub("in <SECONDS> s (<RATE> images/s)", text)
        return _TOKEN.sub(self._token, text)

    @staticmethod
    def _time(m: re.Match) -> str:  # the detections file's own time is kept, as it must be
        return m.group(0) if m.group(2) == MD_INPUT_TIME else m.group(1) + '"<TIME>"'

    def _token(self, m: re.Match) -> str:
        return m.group(1) + ":" + ".".join(self.token_digests.get(d, d) for d in m.group(2).split("."))


def golden_texts(photo_dir: Path, bundle: Path, work: Path) -> dict[str, str]:
    """file name -> normalised text, for every golden file."""
    inputs = make_inputs(photo_dir, bundle, work)
    results = run_cases(bundle, inputs, work / "out")
    normalise = Normaliser(bundle, {"CARD": Path(inputs["card"]), "WORK": work, "BUNDLE": bundle, "PHOTOS": photo_dir})
    texts, runs = {}, []
    for case, (code, stdout, out) in results.items():
        texts[out.name] = normalise(out.read_bytes().decode("utf-8"))
        runs.append(f"{case}: exit {code}\n" + "".join(f"  {line}\n" for line in normalise(stdout).splitlines()))
    texts[RUNS_FILE] = "".join(runs)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR, help="where to write the goldens (default: next to this script)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bioclip-edge-golden-") as tmp:
        root = Path(tmp)
        os.environ["BIOCLIP_EDGE_CACHE_DIR"] = str(root / "cache")  # as conftest's _private_cache: nothing from ~/.cache
        photo_dir, bundle = fixture_inputs(root / "fixtures")
        texts = golden_texts(photo_dir, bundle, root / "work")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.out == GOLDEN_DIR:  # a golden whose case is gone would fail the test
        for stale in GOLDEN_DIR.iterdir():
            if stale.suffix in GOLDEN_SUFFIXES and stale.name not in texts:
                stale.unlink()
    for name, text in texts.items():
        (args.out / name).write_text(text, encoding="utf-8", newline="")
    print(f"wrote {len(texts)} files to {args.out} ({sum(len(t.encode()) for t in texts.values())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

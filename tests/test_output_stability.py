"""Output stability (issue 11): ``classify`` writes the same predictions, byte for byte, as before
the runtime's refactor.

``tests/golden/`` holds what ``bioclip-edge classify`` wrote at HEAD 0c830e2 (before the
refactor), made by ``tests/golden/make_golden.py``: whole images in MegaDetector, CSV and JSON
Lines, with a truncated and an empty JPEG among the inputs, ``--relative-paths`` and absolute
paths; ``--detections`` runs in MegaDetector and CSV; text labels and a label matrix from
``labels build`` (taxonomy descriptions); plus each run's exit code and stdout (``runs.txt``).
This test builds the same inputs with the same recipe (conftest's ``photo_dir`` and
``tiny_bundle``, which the generator calls too), runs the same commands through
``bioclip_edge.cli.main`` and compares.

Normalised on both sides (``make_golden.Normaliser``), because they differ between runs or
checkouts without the code doing anything differently:

* temporary folders -> ``<CARD>``, ``<WORK>``, ``<BUNDLE>``, ``<PHOTOS>``, ``<MODEL_DIR>`` (the
  model id is ``local-dir:<its folder>``);
* ``classification_completion_time`` / ``detection_completion_time`` -> ``<TIME>``;
* ``bioclip_edge_version`` -> ``<VERSION>``;
* the sha256 of the bundle's ONNX graphs -> ``<sha256 of vision.fp32.onnx>``: torch's ONNX
  exporter records the source path and line of the exporter's tower wrapper
  (``.../export/towers.py``) in node metadata, so the same graph has other bytes in
  /tmp/fresh and /work/main;
* in the CSV / JSON Lines ``run`` tokens, the 6-hex digests of those two fields (model id, vision
  graph sha256) -> ``<model-id>``, ``<vision.fp32.onnx>``; every other field's digest is kept;
* stdout's duration and rate -> ``<SECONDS>``, ``<RATE>``.

Everything else must be identical, and every decimal number within one unit of its last written
digit (``SCORE_TOLERANCE``): with ``--precision fp32 --backend onnxruntime --model-threads 1
--batch-size 4 --threads 0`` two runs of the same code on one machine give identical bytes, but on
a CPU whose onnxruntime kernels differ (another instruction set) the last rounded digit of a score
moves (seen: 1e-6 in the CSV of a --detections run). A larger difference fails, and the message
says whether only numbers differ and by how much. Regenerate the goldens only from code whose
outputs are known good.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


def _load_recipe():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recipe = _load_recipe()
GOLDEN_NAMES = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in recipe.GOLDEN_SUFFIXES)


@pytest.fixture(scope="session")
def stability_outputs(tmp_path_factory, photo_dir, tiny_bundle) -> dict[str, str]:
    """Every case run once: file name -> normalised text."""
    return recipe.golden_texts(photo_dir, tiny_bundle, tmp_path_factory.mktemp("stability"))


def test_cases_and_goldens_match(stability_outputs):
    assert sorted(stability_outputs) == GOLDEN_NAMES, "cases and golden files differ: run tests/golden/make_golden.py?"


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_output_matches_golden(stability_outputs, name):
    expected = (GOLDEN / name).read_bytes().decode("utf-8")
    actual = stability_outputs.get(name)
    if actual is None:
        pytest.fail(f"{name}: no case writes it any more", pytrace=False)
    if actual != expected and not same_up_to_last_digit(expected, actual):
        pytest.fail(explain(name, expected, actual), pytrace=False)


SCORE_TOLERANCE = 2e-6  # scores are written with 6 decimals: one unit in the last place, from rounding


def same_up_to_last_digit(expected: str, actual: str) -> bool:
    """Equal text, and every decimal number within ``SCORE_TOLERANCE``: the fp32 path gives
    identical bytes on one CPU, but onnxruntime's kernels for another instruction set (AMX, AVX-512,
    AVX2: CI's machine may not be the developer's) move the last rounded digit of a score."""
    if _FLOAT.sub("#", expected) != _FLOAT.sub("#", actual):
        return False
    return all(abs(float(a) - float(b)) <= SCORE_TOLERANCE for a, b in zip(_FLOAT.findall(expected), _FLOAT.findall(actual)))


_FLOAT = re.compile(r"(?<![\w.])-?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])")


def explain(name: str, expected: str, actual: str, max_lines: int = 80) -> str:
    """A unified diff (golden -> now), and whether only decimal numbers differ, and by how much."""
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"golden/{name}", f"now/{name}",
                                     n=2, lineterm=""))
    shown = diff[:max_lines] + ([f"... {len(diff) - max_lines} more diff lines"] if len(diff) > max_lines else [])
    head = f"{name} differs from its golden (after normalisation; see this module's docstring)"
    if _FLOAT.sub("#", expected) == _FLOAT.sub("#", actual):
        worst = max(abs(float(a) - float(b)) for a, b in zip(_FLOAT.findall(expected), _FLOAT.findall(actual)))
        head += f"; only decimal numbers (scores, boxes) differ, by at most {worst:.3g}"
    return head + ":\n" + "\n".join(shown)

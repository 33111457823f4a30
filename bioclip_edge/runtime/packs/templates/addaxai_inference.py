"""AddaxAI classification model made by ``bioclip-edge pack addaxai``: a BioCLIP-family zero-shot
classifier scoring each MegaDetector box against the label matrix in this folder.

AddaxAI's classification worker loads this file and calls ``ModelInference`` (see AddaxAI's
``backend/templates/inference_template.py``). The work is done by bioclip-edge's torch-free
runtime, which must be installed in the AddaxAI environment named by ``env`` in manifest.json:

    <AddaxAI folder>/envs/env-<env>/bin/python -m pip install bioclip-edge        (macOS, Linux)
    <AddaxAI folder>\\envs\\env-<env>\\python.exe -m pip install bioclip-edge     (Windows)

``bioclip-pack.json`` says which bioclip-edge made this folder; the ``bundle/`` folder holds the
vision graphs and ``labels.npz`` the labels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _missing_runtime(exc: ImportError) -> ImportError:
    """Say what to install, and where: the Python running this file is the one AddaxAI chose."""
    try:
        made_by = json.loads((_HERE / "bioclip-pack.json").read_text(encoding="utf-8"))["made_by"]
    except Exception:  # noqa: BLE001  the message is still useful without the version
        made_by = "bioclip-edge"
    version = made_by.split()[-1] if made_by.startswith("bioclip-edge ") else ""
    wanted = f"bioclip-edge>={version}" if version else "bioclip-edge"
    return ImportError(
        f"The AddaxAI model in {_HERE} runs on bioclip-edge, which this Python cannot import ({exc}). "
        f"Install it into the environment AddaxAI runs this model in: \"{sys.executable}\" -m pip install \"{wanted}\", "
        "then start the analysis again. (This folder was made by " + made_by + ".)"
    )


try:
    from bioclip_edge.runtime.packs.addaxai_model import BioclipModelInference
except ImportError as _exc:
    raise _missing_runtime(_exc) from _exc


class ModelInference(BioclipModelInference):
    """check_gpu, load_model, get_crop, get_classification, get_class_names, get_tensor and
    classify_batch, as AddaxAI's template defines them, from ``BioclipModelInference``."""

"""Shared fixtures: tiny open_clip models in the hub layout, and bundles exported from them.

Tiny configs keep the suite fast on two cores while running the real export path (dynamo
export, fp16, int8 dynamic and static, parity, tokenizer files). An export takes 15-30 s, so each
kind of bundle is exported once per session and shared read-only: ``tiny_bundle`` here (every
variant, calibrated on ``photo_dir``), ``default_export`` in tests/export/conftest.py (export's
defaults: NNCF on the built-in photos, the full parity set). Tests that need an export of their
own, for one option, architecture or model, are marked ``export`` and run with ``--run-export``; the
real-size exports are marked ``slow`` (``--run-slow``); ``make test-slow`` runs both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.models import OPENAI_MEAN, OPENAI_STD, TINY_VIT_CFG, write_model_dir  # noqa: F401  (make_golden uses them)

@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Caches (OpenVINO blobs, label embeddings, checksum stamps) go to a temporary folder, never
    the developer's home, and start empty for every test session."""
    import os

    old = os.environ.get("BIOCLIP_EDGE_CACHE_DIR")
    os.environ["BIOCLIP_EDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("BIOCLIP_EDGE_CACHE_DIR", None)
    else:
        os.environ["BIOCLIP_EDGE_CACHE_DIR"] = old


OPT_IN = {"slow": "--run-slow", "export": "--run-export", "typecheck": "--run-typecheck"}  # marker: the option that runs its tests


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow (real-size ViT-B/L/H exports)")
    parser.addoption("--run-export", action="store_true",
                     help="run tests marked export (tiny exports of their own: one option, architecture or model)")
    parser.addoption("--run-typecheck", action="store_true", help="run tests marked typecheck (mypy over the package)")


def pytest_collection_modifyitems(config, items):
    for marker, option in OPT_IN.items():
        if config.getoption(option):
            continue
        also = " (CI runs make typecheck)" if marker == "typecheck" else ""
        skip = pytest.mark.skip(reason=f"{marker}: run with {option} or make test-slow{also}")
        for item in items:
            if item.get_closest_marker(marker):  # not item.keywords: that holds folder names too (tests/export)
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def _pillow_switch_restored():
    """Third-party code (MegaDetector's, AddaxAI's) sets ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` for the
    whole process when imported; a test module that leaves it on makes every later truncated-JPEG
    test pass a broken file. Fails the module that leaves it changed, and puts it back."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    yield
    after, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, before
    assert after == before, "this test module left PIL.ImageFile.LOAD_TRUNCATED_IMAGES changed; restore it where it is set"


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Real photos (scikit-image samples) as JPEG files, for calibration and classification."""
    from bioclip_edge.export.reference import write_sample_photos

    names = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")
    return write_sample_photos(tmp_path_factory.mktemp("photos"), names, quality=92)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("tiny-vit"), TINY_VIT_CFG)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_model_dir, photo_dir) -> Path:
    """A bundle of the tiny ViT with fp32, fp16, int8 (dynamic) and int8-static variants. Read-only."""
    from bioclip_edge.export.build import ExportConfig, export_bundle
    from bioclip_edge.export.sources import ModelRequest

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{tiny_model_dir}"), out=out,
                               calibration=photo_dir, parity_images=6))
    return out


@pytest.fixture
def random_flagged_bundle(tiny_bundle, tmp_path) -> Path:
    """A copy of the tiny bundle whose manifest says its weights are random (what --random exports)."""
    import json
    import shutil

    from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME

    fake = tmp_path / "random"
    shutil.copytree(tiny_bundle, fake)
    manifest = json.loads((fake / MANIFEST_NAME).read_text())
    manifest["model"]["source"]["random_weights"] = True
    (fake / MANIFEST_NAME).write_text(json.dumps(manifest))
    return fake


@pytest.fixture(scope="session")
def trained_fp32_bundle(tmp_path_factory) -> Path:
    """The small *trained* model (tests/data/trained-tiny) as an fp32-only bundle: zero-shot answers
    that mean something, for tests of accuracy (adaptation, evaluation, thresholds). Read-only."""
    from bioclip_edge.export.build import ExportConfig, export_bundle
    from bioclip_edge.export.sources import ModelRequest
    from tests.helpers.trained_tiny import DEFAULT_OUT

    out = tmp_path_factory.mktemp("bundles") / "trained-tiny"
    export_bundle(ExportConfig(request=ModelRequest(f"local-dir:{DEFAULT_OUT}"), out=out, precisions=("fp32",),
                               nncf=False, parity_images=6))
    return out

"""runtime.inference.cache: checksum stamps let a bundle open without re-hashing unchanged files, and any
change to a file (or ``verify``) hashes it again; caches can be moved or switched off."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.inference import bundle as bundle_module
from bioclip_edge.runtime.inference.bundle import BundleError
from bioclip_edge.runtime.inference.cache import CACHE_ENV, cache_dir


@pytest.fixture()
def copy(tiny_bundle: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def _count_hashes(monkeypatch) -> list:
    calls = []
    real = bundle_module.sha256_file
    monkeypatch.setattr(bundle_module, "sha256_file", lambda p: calls.append(Path(p).name) or real(p))
    return calls


def test_unchanged_files_are_hashed_once_per_machine(copy, monkeypatch):
    calls = _count_hashes(monkeypatch)
    Bundle.open(copy)
    first = len(calls)
    assert first >= 4  # every variant file (and data file) was hashed
    Bundle.open(copy)
    assert len(calls) == first  # stamps: nothing re-hashed
    Bundle.open(copy, reuse_verified=False)  # what `verify` does
    assert len(calls) == 2 * first


def test_a_changed_file_is_hashed_again_and_caught(copy, monkeypatch):
    Bundle.open(copy)  # stamps written
    target = copy / Bundle.open(copy).variant("vision", "fp32").file
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # same size, new mtime: the stamp no longer matches
    target.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        Bundle.open(copy)


def test_cache_can_be_switched_off_or_unwritable(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, "off")
    assert cache_dir("labels") is None
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker))
    assert cache_dir("labels") is None  # cannot be created: skipped, no error
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "c"))
    assert cache_dir("labels") == tmp_path / "c" / "labels" and (tmp_path / "c" / "labels").is_dir()


def test_classify_caches_text_labels_by_default(tiny_bundle, photo_dir, tmp_path, monkeypatch):
    from bioclip_edge.cli import main as cli_main

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    args = ["classify", str(tiny_bundle), str(photo_dir), "--labels", "lion,leopard", "--no-progress",
            "--precision", "fp32", "--backend", "onnxruntime"]
    assert cli_main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    cached = list((tmp_path / "cache" / "labels").glob("labels-*.npz"))
    assert len(cached) == 1
    from bioclip_edge.runtime.text import encoder as text

    def no_text_tower(*a, **k):
        raise AssertionError("the text tower ran although the labels were cached")

    monkeypatch.setattr(text.TextEncoder, "__init__", no_text_tower)
    assert cli_main([*args, "--out", str(tmp_path / "b.csv")]) == 0  # served from the cache
    assert (tmp_path / "a.csv").read_text().splitlines()[1:] == (tmp_path / "b.csv").read_text().splitlines()[1:]


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_classify_hashes_only_the_graphs_it_loads(copy, photo_dir, tmp_path, capsys):
    """A damaged graph the run does not use cannot stop it; the one it loads is still caught
    before any image is read (exit 2, the file named)."""
    from bioclip_edge.cli import main as cli_main

    bundle = Bundle.open(copy, verify_checksums=False)
    _corrupt(copy / bundle.variant("vision", "fp16").file)
    args = ["classify", str(copy), str(photo_dir), "--labels", "lion,leopard", "--no-progress",
            "--precision", "fp32", "--backend", "onnxruntime"]
    assert cli_main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    vision = copy / bundle.variant("vision", "fp32").file
    _corrupt(vision)
    capsys.readouterr()
    assert cli_main([*args, "--out", str(tmp_path / "b.csv")]) == 2
    assert str(vision) in capsys.readouterr().err and not (tmp_path / "b.csv").exists()
    with pytest.raises(BundleError, match="sha256"):
        Bundle.open(copy)  # the default still hashes everything


def test_openvino_cache_keeps_compile_settings_apart(tiny_bundle, tmp_path, monkeypatch):
    """OpenVINO 2026.4 names a cached blob by the model alone: an exact-f32 blob reloaded for the
    default (bf16) settings gave NaNs. One cache folder per setting keeps them apart."""
    import numpy as np

    from bioclip_edge.runtime.inference.backends import OpenVinoSession, openvino_capabilities

    if not openvino_capabilities():
        pytest.skip("OpenVINO is not installed")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    path = Bundle.open(tiny_bundle).model_path(Bundle.open(tiny_bundle).variant("vision", "fp32"))
    x = {"pixels": np.random.default_rng(0).random((2, 3, 224, 224), dtype=np.float32)}
    exact = OpenVinoSession(path, exact_fp32=True).run(None, x)[0]
    default = OpenVinoSession(path).run(None, x)[0]
    cached = OpenVinoSession(path).run(None, x)[0]  # served from the cache
    assert np.isfinite(default).all() and np.isfinite(cached).all()
    assert (exact * cached).sum(1).min() > 0.999 and np.allclose(default, cached)
    assert len(list((tmp_path / "cache" / "openvino").iterdir())) == 2

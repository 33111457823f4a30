"""Opening a bundle checks it: every broken bundle gets an error naming the file and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bioclip_edge.runtime.inference.bundle import Bundle, BundleError
from bioclip_edge.runtime.inference.manifest import SCHEMA_VERSION, Manifest


@pytest.fixture()
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dst)
    return dst


def _edit_manifest(folder: Path, edit) -> None:
    data = json.loads((folder / "manifest.json").read_text())
    edit(data)
    (folder / "manifest.json").write_text(json.dumps(data))


def test_manifest_round_trips(tiny_bundle: Path):
    m = Manifest.read(tiny_bundle / "manifest.json")
    again = Manifest.from_dict(json.loads(m.to_json()))
    assert again == m and again.schema_version == SCHEMA_VERSION


def test_missing_file_is_named(bundle_copy: Path):
    (bundle_copy / "text.int8.onnx").unlink()
    with pytest.raises(BundleError, match=r"text\.int8\.onnx.*missing"):
        Bundle.open(bundle_copy)


def test_checksum_mismatch_is_named(bundle_copy: Path):
    path = bundle_copy / "vision.fp32.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"vision\.fp32\.onnx: sha256 .* does not match"):
        Bundle.open(bundle_copy)
    Bundle.open(bundle_copy, verify_checksums=False)  # sizes still match: opening without hashing works


def test_truncated_file_is_named(bundle_copy: Path):
    path = bundle_copy / "vision.fp16.onnx"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"vision\.fp16\.onnx: variant vision\.fp16 is 100 bytes but the manifest says"):
        Bundle.open(bundle_copy, verify_checksums=False)


def test_unknown_schema_version(bundle_copy: Path):
    _edit_manifest(bundle_copy, lambda d: d.update(schema_version=99))
    with pytest.raises(BundleError, match="schema_version 99 is not supported"):
        Bundle.open(bundle_copy)


@pytest.mark.parametrize("bad", ["../outside.onnx", "/etc/passwd", "sub/../../x.onnx"])
def test_paths_that_leave_the_folder_are_refused(bundle_copy: Path, bad: str):
    _edit_manifest(bundle_copy, lambda d: d["variants"][0].update(file=bad))
    with pytest.raises(BundleError, match="relative to the bundle|leaves the bundle folder"):
        Bundle.open(bundle_copy)


def test_not_a_bundle(tmp_path: Path):
    with pytest.raises(BundleError, match="no such bundle folder"):
        Bundle.open(tmp_path / "nope")
    (tmp_path / "file.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="a bundle is a folder"):
        Bundle.open(tmp_path / "file.onnx")
    with pytest.raises(BundleError, match="no manifest here"):
        Bundle.open(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.open(tmp_path)


def test_missing_and_unknown_fields(bundle_copy: Path):
    _edit_manifest(bundle_copy, lambda d: d["variants"][0].pop("sha256"))
    with pytest.raises(BundleError, match=r"variants\[0\] is missing field\(s\) \['sha256'\]"):
        Bundle.open(bundle_copy)
    _edit_manifest(bundle_copy, lambda d: d["variants"][0].update(sha256="0" * 64, surprise=1))
    with pytest.raises(BundleError, match="unknown field"):
        Bundle.open(bundle_copy)


def test_unknown_variant_lists_what_the_bundle_has(tiny_bundle: Path):
    with pytest.raises(BundleError, match=r"no variant 'vision\.bf16'.*vision\.fp32"):
        Bundle.open(tiny_bundle, verify_checksums=False).variant("vision", "bf16")

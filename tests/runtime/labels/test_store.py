"""The label file: memory-mapped open, round trips, clear errors for corrupt or mismatched files."""

from __future__ import annotations

import dataclasses
import tracemalloc
import zipfile

import numpy as np
import pytest

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.labels.store import LabelFileError, read_label_file
from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError, bundle_info
from tests.helpers.labels import INFO, synthetic_taxonomy, unit


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    rng = np.random.default_rng(3)
    labels = unit(rng.standard_normal((200_000, 64)))
    info = dict(INFO, embed_dim=64)
    path = tmp_path_factory.mktemp("labels") / "big.npz"
    LabelMatrix.from_embeddings(labels, [f"sp {i}" for i in range(len(labels))], info, "plain").save(path, dtype="fp16")
    return path, labels


def test_open_is_memory_mapped(big_file):
    path, labels = big_file
    tracemalloc.start()
    m = LabelMatrix.load(path)
    _, peak_open = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    idx, _ = m.topk(labels[:4], k=3, block_rows=4096)
    _, peak_score = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(m.matrix, np.memmap) and m.matrix.offset % 64 == 0
    assert m.matrix.nbytes == 200_000 * 64 * 2
    assert peak_open < 1_000_000, peak_open  # 25 MB matrix: opening reads a few KB
    assert peak_score < 6_000_000, peak_score  # one fp32 block of 4096 rows (1 MB) plus temporaries
    assert idx[:, 0].tolist() == [0, 1, 2, 3]
    assert m.names[199_999] == "sp 199999" and m.label(5)["name"] == "sp 5"


def test_numpy_reads_the_file_too(big_file):
    path, labels = big_file
    with np.load(path) as z:
        assert z["matrix"].shape == labels.shape and z["matrix"].dtype == np.float16


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "int8"])
def test_round_trip_keeps_everything(tmp_path, dtype):
    rng = np.random.default_rng(1)
    labels = unit(rng.standard_normal((500, 32)))
    tax = synthetic_taxonomy(500, rng)
    tax["common_name"][3] = "Grévy’s zebra 斑马"
    m = LabelMatrix.from_embeddings(labels, tax["species"], INFO, "tol", columns=tax, dtype=dtype)
    back = LabelMatrix.load(m.save(tmp_path / "x.npz"))
    assert (back.n, back.dim, back.dtype, back.recipe, back.has_taxonomy) == (500, 32, dtype, "tol", True)
    assert back.column("common_name") == tax["common_name"] and back.names == tax["species"]
    assert back.bundle_info == INFO
    rows = np.concatenate(list(back.iter_float_rows()))
    np.testing.assert_allclose(rows, labels, atol={"fp32": 0, "fp16": 1e-3, "int8": 1e-2}[dtype])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # no temporary file left behind


def test_save_streams_a_row_subset_and_converts(tmp_path, big_file):
    path, labels = big_file
    m = LabelMatrix.load(path)
    rows = m.select(["name=sp 10,sp 20,sp 199990"])
    out = LabelMatrix.load(m.save(tmp_path / "sub.npz", dtype="int8", rows=rows, note="three"))
    assert out.names == ["sp 10", "sp 20", "sp 199990"] and out.dtype == "int8" and "three" in out.meta["note"]
    np.testing.assert_allclose(np.concatenate(list(out.iter_float_rows())), labels[[10, 20, 199990]], atol=1e-2)


def _write_copy(src, dst, mutate):
    data = bytearray(src.read_bytes())
    dst.write_bytes(mutate(data))
    return dst


def test_corrupt_files_give_clear_errors(tmp_path, big_file):
    path, _ = big_file
    cases = {
        "truncated.npz": lambda d: bytes(d[: len(d) // 2]),
        "garbage.npz": lambda d: b"this is not a zip file" * 10,
        "empty.npz": lambda d: b"",
    }
    for name, mutate in cases.items():
        bad = _write_copy(path, tmp_path / name, mutate)
        with pytest.raises(LabelFileError, match=name) as err:
            LabelMatrix.load(bad)
        assert isinstance(err.value, UserError)
    with pytest.raises(LabelFileError, match="no such label-matrix file"):
        LabelMatrix.load(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, matrix=np.zeros((3, 4)))
    with pytest.raises(LabelFileError, match="not a bioclip-edge label matrix"):
        LabelMatrix.load(other)


def test_compressed_or_wrong_version_is_refused(tmp_path, big_file):
    path, _ = big_file
    small = LabelMatrix.load(path).save(tmp_path / "small.npz", rows=np.arange(10))
    squeezed = tmp_path / "squeezed.npz"
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(squeezed, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.namelist():
            dst.writestr(item, src.read(item))
    with pytest.raises(LabelFileError, match="compressed"):
        read_label_file(squeezed)
    future = tmp_path / "future.npz"
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(future, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, data.replace(b'"version": 1', b'"version": 99') if item == "meta.json" else data)
    with pytest.raises(LabelFileError, match="version 99"):
        read_label_file(future)


def test_check_bundle_refuses_other_models(tiny_bundle):
    bundle = Bundle.open(tiny_bundle)
    dim = bundle.manifest.model.embed_dim
    good = LabelMatrix.from_embeddings(unit(np.ones((2, dim))), ["a", "b"], bundle_info(bundle), "plain")
    good.check_bundle(bundle)
    wrong_dim = LabelMatrix.from_embeddings(unit(np.ones((2, 64))), ["a", "b"], dict(INFO, embed_dim=64), "plain")
    with pytest.raises(LabelMatrixError, match="dim 64.*embeds images in 32"):
        wrong_dim.check_bundle(bundle)
    other = dict(bundle_info(bundle), model_id="hf-hub:imageomics/bioclip", architecture="ViT-B-16", text_tower_sha256s=[])
    with pytest.raises(LabelMatrixError, match="ViT-B-16"):
        LabelMatrix.from_embeddings(unit(np.ones((2, dim))), ["a", "b"], other, "plain").check_bundle(bundle)
    same_arch = dict(bundle_info(bundle), model_id="hf-hub:someone/else", text_tower_sha256s=["0" * 64])
    with pytest.raises(LabelMatrixError, match="someone/else"):
        LabelMatrix.from_embeddings(unit(np.ones((2, dim))), ["a", "b"], same_arch, "plain").check_bundle(bundle)
    reseeded = dataclasses.replace(bundle.manifest, model=dataclasses.replace(
        bundle.manifest.model, source=dataclasses.replace(bundle.manifest.model.source, random_weights=True, seed=5)))
    other_weights = Bundle(root=bundle.root, manifest=dataclasses.replace(
        reseeded, variants=tuple(dataclasses.replace(v, sha256="f" * 64) for v in reseeded.variants)))
    with pytest.raises(LabelMatrixError, match="different"):
        good.check_bundle(other_weights)

"""Label files as files: recognised by content whatever their name, never replaced silently,
and described in output files the way MegaDetector's and SpeciesNet's tools read taxonomy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclip_edge.cli import main
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.labels.build import LabelTable, build_label_matrix, read_label_source
from bioclip_edge.runtime.labels.spec import LabelSpecError, resolve_labels
from bioclip_edge.runtime.labels.store import LabelFileError, is_label_file
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.common.target import OutputTargetError
from bioclip_edge.runtime.labels.taxonomy import taxonomy_description
from tests.helpers.labels import SPECIES_CSV, write_official


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return Bundle.open(tiny_bundle)


@pytest.fixture()
def official(tmp_path):
    npy, names, _ = write_official(tmp_path, 32, 40, zero_tail=0)
    return npy, names


# --- recognised by content -----------------------------------------------------------------------
def test_import_writes_the_name_given_and_classify_reads_it(tmp_path, tiny_bundle, photo_dir, official, capsys):
    out = tmp_path / "tol-labels"
    assert main(["labels", "import", str(tiny_bundle), *map(str, official), "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.is_file() and not out.with_suffix(".npz").exists() and is_label_file(out)
    predictions = tmp_path / "p.jsonl"
    code = main(["classify", str(tiny_bundle), str(photo_dir), "--labels", str(out), "--out", str(predictions),
                 "--top-k", "2", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert rows and all(len(r["predictions"]) == 2 for r in rows)


def test_resolve_labels_by_content_not_name(tmp_path, bundle):
    matrix = LabelMatrix.from_texts(bundle, ["lion", "leopard", "hyena"])
    for name in ("kenya", "kenya.labels", "kenya.txt"):  # even a .txt name: the bytes decide
        path = matrix.save(tmp_path / name)
        assert resolve_labels(bundle, str(path)).names == ["lion", "leopard", "hyena"]
    (tmp_path / "notes").write_text("lion\nleopard\n", encoding="utf-8")
    assert resolve_labels(bundle, str(tmp_path / "notes")).names == ["lion", "leopard"]


def test_an_inline_list_longer_than_a_file_name_is_a_list(bundle):
    names = [f"a species with a long common name number {i}" for i in range(12)]  # ~530 characters
    assert len(",".join(names)) > 255
    assert resolve_labels(bundle, ",".join(names)).names == names


def test_files_that_are_neither_say_what_to_give(tmp_path, bundle):
    binary = tmp_path / "weights.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text, not a zip")
    with pytest.raises(LabelSpecError, match=r"weights\.bin.*labels build.*UTF-8 text"):
        resolve_labels(bundle, str(binary))
    fake = tmp_path / "fake.npz"
    fake.write_text("lion\nleopard\n", encoding="utf-8")  # a .npz name is a matrix or an error, never a list
    with pytest.raises(LabelFileError, match="fake.npz"):
        resolve_labels(bundle, str(fake))
    assert not is_label_file(tmp_path) and not is_label_file(tmp_path / "missing")


# --- never replaced silently ---------------------------------------------------------------------
def _refused(capsys, target) -> str:
    err = capsys.readouterr().err
    assert str(target) in err and "--overwrite" in err, err
    return err


def test_build_refuses_an_existing_file_before_embedding(tmp_path, tiny_bundle, capsys):
    src = tmp_path / "species.csv"
    src.write_text(SPECIES_CSV, encoding="utf-8")
    out = tmp_path / "kenya.npz"
    out.write_bytes(b"yesterday's labels")
    command = ["labels", "build", str(tiny_bundle), "--from", str(src), "--out", str(out), "--no-progress"]
    assert main(command) == 2
    _refused(capsys, out)
    assert out.read_bytes() == b"yesterday's labels" and not out.with_name("kenya.npz.parts").exists()
    assert main([*command, "--overwrite"]) == 0
    assert LabelMatrix.load(out).n == 5


def test_import_and_subset_refuse_unless_overwrite(tmp_path, tiny_bundle, official, capsys):
    tol = tmp_path / "tol.npz"
    assert main(["labels", "import", str(tiny_bundle), *map(str, official), "--out", str(tol)]) == 0
    before = tol.read_bytes()
    assert main(["labels", "import", str(tiny_bundle), *map(str, official), "--out", str(tol), "--dtype", "int8"]) == 2
    _refused(capsys, tol)
    assert tol.read_bytes() == before
    assert main(["labels", "import", str(tiny_bundle), *map(str, official), "--out", str(tol), "--dtype", "int8", "--overwrite"]) == 0
    assert LabelMatrix.load(tol).dtype == "int8"

    birds = tmp_path / "birds"
    birds.write_text("keep")
    subset = ["labels", "subset", str(tol), "--where", "class=Aves", "--out", str(birds)]
    assert main(subset) == 2
    _refused(capsys, birds)
    assert birds.read_text() == "keep"
    assert main([*subset, "--overwrite"]) == 0
    assert set(LabelMatrix.load(birds).column("class")) == {"Aves"}
    assert main(["labels", "subset", str(tol), "--where", "class=Aves", "--out", str(tol), "--overwrite"]) == 2
    assert "must differ" in capsys.readouterr().err


def test_a_folder_is_not_a_label_file(tmp_path, tiny_bundle, official, capsys):
    assert main(["labels", "import", str(tiny_bundle), *map(str, official), "--out", str(tmp_path), "--overwrite"]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_library_checks_the_target_before_the_text_tower_loads(tmp_path, bundle, monkeypatch):
    from bioclip_edge.runtime.text import encoder as text

    def no_tower(*args, **kwargs):
        raise AssertionError("the text tower was loaded for a build that must be refused")

    monkeypatch.setattr(text, "TextEncoder", no_tower)
    out = tmp_path / "x.npz"
    out.write_bytes(b"keep")
    with pytest.raises(OutputTargetError, match="x.npz"):
        build_label_matrix(bundle, LabelTable(["lion", "leopard"], {}), out, progress=False)
    assert out.read_bytes() == b"keep"


# --- descriptions for output files ---------------------------------------------------------------
def test_taxonomy_description_is_the_wildlife_insights_string():
    lion = {"kingdom": "Animalia", "phylum": "Chordata", "class": "Mammalia", "order": "Carnivora",
            "family": "Felidae", "genus": "Panthera", "species": "Panthera leo"}
    assert taxonomy_description(lion) == "mammalia;carnivora;felidae;panthera;leo"
    assert taxonomy_description({**lion, "species": ""}) == "mammalia;carnivora;felidae;panthera;"
    assert taxonomy_description({**lion, "species": "Panthera leo melanochaita"}).endswith(";panthera;leo melanochaita")
    assert taxonomy_description({"species": "Felis catus"}) == ";;;felis;catus"
    assert taxonomy_description({"class": "Aves;x", "genus": "Corvus|y"}) == "aves x;;;corvus y;"
    assert taxonomy_description({"kingdom": "", "species": ""}) == ""


def test_matrix_descriptions_taxonomy_or_text(tmp_path, bundle):
    src = tmp_path / "species.csv"
    src.write_text(SPECIES_CSV + ",,,,,,,empty\n", encoding="utf-8")
    table = read_label_source(src)
    built = LabelMatrix.load(build_label_matrix(bundle, table, tmp_path / "k.npz", progress=False))
    described = built.category_descriptions()
    assert len(described) == 6
    assert described[0] == "mammalia;carnivora;felidae;panthera;leo"
    assert described[3] == "aves;passeriformes;corvidae;corvus;corax"
    assert described[5] == "empty"  # a label without any rank: its text
    text = LabelMatrix.from_texts(bundle, ["Lion", "spotted hyena"])
    assert [text.category_descriptions()[i] for i in range(2)] == ["Lion", "spotted hyena"]
    assert np.asarray(built.matrix).shape[0] == 6

"""``bioclip-edge labels build | import | subset | info`` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

from bioclip_edge.cli import main
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from tests.helpers.labels import SPECIES_CSV, write_official


def test_build_info_subset(tmp_path, tiny_bundle, capsys):
    src = tmp_path / "species.csv"
    src.write_text(SPECIES_CSV, encoding="utf-8")
    out = tmp_path / "kenya.npz"
    assert main(["labels", "build", str(tiny_bundle), "--from", str(src), "--recipe", "photo", "--out", str(out), "--no-progress"]) == 0
    assert "5 labels, recipe photo, fp16" in capsys.readouterr().out
    assert main(["labels", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["labels"], info["dtype"], info["recipe"], info["taxonomy"]) == (5, "fp16", "photo", True)
    assert info["first_labels"][0]["common_name"] == "lion"
    birds = tmp_path / "birds.npz"
    assert main(["labels", "subset", str(out), "--where", "class=Aves", "--out", str(birds), "--dtype", "int8"]) == 0
    assert "2 of 5 labels" in capsys.readouterr().out
    sub = LabelMatrix.load(birds)
    assert sub.names == ["Corvus corax", "Struthio camelus"] and sub.dtype == "int8" and sub.recipe == "photo"
    assert main(["labels", "info", str(birds)]) == 0
    assert "2 labels x 32 dims, int8" in capsys.readouterr().out


def test_import_and_errors(tmp_path, tiny_bundle, capsys):
    npy, names, emb = write_official(tmp_path, 32, 300, zero_tail=12)
    out = tmp_path / "tol.npz"
    assert main(["labels", "import", str(tiny_bundle), str(npy), str(names), "--out", str(out)]) == 0
    assert "dropped 12 all-zero columns" in capsys.readouterr().out
    assert LabelMatrix.load(out).n == 288
    assert main(["labels", "subset", str(out), "--where", "order=nope", "--out", str(tmp_path / "y.npz")]) == 2
    assert "matches no labels" in capsys.readouterr().err
    (tmp_path / "broken.npz").write_bytes(out.read_bytes()[:5000])
    assert main(["labels", "info", str(tmp_path / "broken.npz")]) == 2
    assert "broken.npz" in capsys.readouterr().err
    assert main(["labels", "build", str(tmp_path), "--from", str(names), "--out", str(tmp_path / "z.npz")]) == 2


def test_help_imports_no_heavy_modules():
    code = ("import sys; from bioclip_edge.runtime.cli import labels as cli_labels; import argparse; "
            "cli_labels.add_arguments(argparse.ArgumentParser()); "
            "print([m for m in ('numpy', 'onnxruntime', 'torch', 'tokenizers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_runtime_label_modules_are_torch_free():
    mods = ["text.tokenizer", "text.encoder", "labels.matrix", "labels.store", "labels.build", "labels.importer", "labels.scoring", "labels.taxonomy", "text.recipes"]
    code = ("import sys; " + "; ".join(f"import bioclip_edge.runtime.{m}" for m in mods) + "; "
            "print([m for m in ('torch', 'open_clip', 'torchvision', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""An export that stops half-way never leaves a folder that looks like a finished bundle.

The export writes into ``<out>.partial`` and renames it when every file, and last the manifest,
is written. A disk that fills half-way removes the working folder and ends with exit code 3 and
one line naming the file; a folder left by a killed export (``.partial``) is refused by every
command that loads a bundle, with a message that says it is an unfinished export.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.runtime.inference.bundle import Bundle, BundleError
from bioclip_edge.runtime.inference.manifest import MANIFEST_NAME
from tests.helpers.full_disk import small_tmpfs


@pytest.mark.parametrize("with_manifest", [False, True])
def test_a_killed_exports_folder_is_not_a_bundle(tiny_bundle, photo_dir, tmp_path, capsys, with_manifest):
    """A kill before the manifest (or between the manifest and the rename) leaves ``<out>.partial``."""
    out = tmp_path / "bundles" / "tiny"
    partial = out.with_name("tiny.partial")
    shutil.copytree(tiny_bundle, partial)
    if not with_manifest:
        (partial / MANIFEST_NAME).unlink()
    for given in (out, partial):
        with pytest.raises(BundleError, match="an unfinished export") as caught:
            Bundle.open(given)
        assert str(partial) in str(caught.value) and f"--out {out}" in str(caught.value)
    code = cli_main(["classify", str(out), str(photo_dir), "--labels", "a,b", "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "an unfinished export" in err and "Traceback" not in err


def test_a_finished_bundle_beside_a_stale_partial_still_opens(tiny_bundle, tmp_path):
    out = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, out)
    (tmp_path / "tiny.partial").mkdir()  # a later export of the same name, interrupted
    assert Bundle.open(out, verify_checksums=False).manifest.variants


def _export(model_dir: Path, out: Path, *extra: str) -> int:
    return cli_main(["export", f"local-dir:{model_dir}", "--out", str(out), "--precision", "fp32", "--no-nncf",
                     "--parity-images", "6", *extra])


@pytest.mark.export
def test_export_on_a_full_disk(tiny_model_dir, tmp_path, capsys):
    """A real small tmpfs fills while the PyTorch stage (a child process) writes the fp32 graphs."""
    with small_tmpfs(tmp_path / "disk", 2 << 20) as disk:
        out = disk / "bundles" / "tiny"
        assert _export(tiny_model_dir, out) == 3
        err = capsys.readouterr().err
        assert "Traceback" not in err
        line = err.strip().splitlines()[-1]
        assert line.startswith(f"bioclip-edge export: error: cannot write {disk}/bundles/tiny.partial")
        assert "no space left on the disk" in line and "the unfinished export was removed" in line
        assert not out.exists() and not out.with_name("tiny.partial").exists()
        assert list(disk.iterdir()) == [disk / "bundles"]
        assert list((disk / "bundles").iterdir()) == []


@pytest.mark.export
def test_export_failing_at_its_last_write_keeps_the_old_bundle(tiny_model_dir, tiny_bundle, tmp_path, capsys, monkeypatch):
    """``--overwrite`` over a finished bundle, the disk full at the manifest (the last file written):
    the old bundle is still there, whole, and no ``.partial`` folder is left."""
    from bioclip_edge.runtime.inference import manifest as manifest_module

    out = tmp_path / "tiny"
    shutil.copytree(tiny_bundle, out)
    before = sorted(p.name for p in out.iterdir())

    def full(self, folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest_module.Manifest, "write", full)
    assert _export(tiny_model_dir, out, "--overwrite") == 3
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"cannot write {out}.partial: no space left" in line and "the unfinished export was removed" in line
    assert sorted(p.name for p in out.iterdir()) == before
    assert Bundle.open(out).manifest.variants
    assert not out.with_name("tiny.partial").exists()

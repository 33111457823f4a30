"""The export's PyTorch stage runs in a child process (export/torch_process.py): what it sends
back, how its failures reach the user, and that the exporting process itself stays torch-free."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bioclip_edge.export.build import ExportConfig, export_bundle
from bioclip_edge.export.sources import ModelRequest, SourceError
from bioclip_edge.export.torch_process import TorchStageDied, _relay
from bioclip_edge.runtime.inference.bundle import Bundle


def test_progress_and_log_records_of_the_child_reach_the_parent(default_export):
    """``default_export`` ran ``export`` in this process; the PyTorch stage ran in its child."""
    said = [line[2:] for line in default_export.printed.splitlines() if line.startswith("- ")]
    loading = next(i for i, s in enumerate(said) if s.startswith("loading local-dir:"))
    assert any("exporting vision tower" in s for s in said[loading:])  # the child's progress, in order
    child = [r for r in default_export.records if r.processName == "bioclip-edge-torch-stage"]
    assert any(r.name.startswith("bioclip_edge.export") for r in child)  # the child's log records
    res = Bundle.open(default_export.path).manifest.export_resources
    assert res is not None and res.peak_rss_bytes > 100e6  # the child's peak is counted, not the idle parent's


def test_an_error_in_the_child_arrives_as_itself(tmp_path: Path):
    """A model that cannot be loaded fails in the child; the user sees the same error and message.
    Here the hub is unreachable (no network in the tests), which says what to do: --allow-random."""
    with pytest.raises(SourceError) as err:  # its own class (a UserError: ``export`` exits 2), not the child's traceback
        export_bundle(ExportConfig(request=ModelRequest("hf-hub:imageomics/bioclip"), out=tmp_path / "b"))
    assert "--allow-random" in str(err.value) and "imageomics/bioclip" in str(err.value)
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_a_child_that_dies_without_a_result_is_reported():
    ctx = multiprocessing.get_context("spawn")
    channel = ctx.Queue()
    child = ctx.Process(target=os._exit, args=(3,))
    child.start()
    child.join()
    with pytest.raises(TorchStageDied, match="exit code 3.*nothing was written"):
        _relay(channel, child, print, 0)


def test_the_exporting_process_does_not_import_torch_before_quantizing():
    """What keeps the parent small while the child holds the model: the export's peak stays under 4x the fp32 weights."""
    code = ("import sys\n"
            "from bioclip_edge.export import build, cli_export\n"
            "from bioclip_edge.export.calibration import builtin_calibration\n"
            "assert build.prec.nncf_available() in (True, False)\n"
            "builtin_calibration(4)\n"
            "print(sorted(m for m in ('torch', 'open_clip', 'nncf') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

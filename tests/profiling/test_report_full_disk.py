"""``profile report`` on a disk that fills half-way: the report folder is written into
``<out>.partial`` and renamed, so a full disk removes the unfinished folder, leaves an earlier
report as it was, and says so in a ``WriteFailure`` naming the file."""

from __future__ import annotations

import errno

import pytest

from bioclip_edge.errors import WriteFailure
from bioclip_edge.profiling.measure import ProfileRun
from bioclip_edge.profiling.report import write_report
from tests.helpers.full_disk import disk_of_kind


def small_run() -> ProfileRun:
    """A run with no measured rows: the report is its Markdown, JSON and CSV (no plots)."""
    model = {"id": "tiny", "architecture": "ViT-T", "random_weights": True, "params_vision": 1e6, "params_text": 1e6,
             "image_size": [224, 224], "embed_dim": 32}
    return ProfileRun(bundle="tiny", model=model, machine={"cpu_model": "test cpu"}, peaks=[], flops=[], rows=[],
                      settings={"tower": "vision"})


@pytest.mark.parametrize("kind", ["best", "injected"])
def test_report_on_a_full_disk(tmp_path, monkeypatch, kind):
    with disk_of_kind(kind, tmp_path / "disk", monkeypatch) as disk:
        out = disk.folder / "report"
        write_report(small_run(), out)
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        disk.leave(0)
        with pytest.raises(WriteFailure) as caught:
            write_report(small_run(), out)
        assert caught.value.errno == errno.ENOSPC and str(disk.folder) in caught.value.filename
        assert "the unfinished report was removed" in str(caught.value)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert not out.with_name("report.partial").exists() and disk.leftovers() == []
        disk.make_room()
        assert write_report(small_run(), out) == out

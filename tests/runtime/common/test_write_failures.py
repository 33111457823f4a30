"""A write the disk refuses is a message, not a crash: the common writers (``write_atomic``,
``atomic_writer``, ``write_errors``) raise a ``WriteFailure`` naming the real target with the space
needed and free, leave no temporary file and keep the old file; the command line prints it as one
line with exit code 3 (the traceback only with -v), for a ``WriteFailure`` and for a raw full-disk
``OSError`` that escaped. Full disks are real small tmpfs mounts where this machine allows them,
else a fault-injecting file layer (tests/helpers/full_disk.py)."""

from __future__ import annotations

import errno
import pickle
import shutil

import numpy as np
import pytest

from bioclip_edge.cli import main as cli_main
from bioclip_edge.errors import WRITE_FAILURE_EXIT, UserError, WriteFailure
from bioclip_edge.runtime.common.files import atomic_writer, write_atomic, write_errors
from tests.helpers.full_disk import disk_of_kind, fill, remount_read_only, small_tmpfs

KINDS = ["tmpfs", "injected"]


@pytest.fixture(params=KINDS)
def disk(request, tmp_path, monkeypatch):
    with disk_of_kind(request.param, tmp_path / "disk", monkeypatch, size=64 << 10) as d:
        yield d


def test_full_disk_keeps_the_old_file_and_names_the_target(disk):
    target = disk.folder / "predictions.csv"
    write_atomic(target, "old,results\n")
    disk.leave(1)
    with pytest.raises(WriteFailure) as caught:
        write_atomic(target, "x" * 20_000)
    exc = caught.value
    assert exc.errno == errno.ENOSPC and exc.filename == str(target) and isinstance(exc, (OSError, UserError))
    text = str(exc)
    assert text.startswith(f"cannot write {target}: no space left on the disk") and "needs about 20.0 kB" in text
    assert "free" in text and "run the same command again" in text
    assert target.read_text() == "old,results\n"  # the last good file is untouched
    assert disk.leftovers() == []
    disk.make_room()
    write_atomic(target, "x" * 20_000)
    assert target.stat().st_size == 20_000


@pytest.mark.parametrize("writer", ["npy", "parquet", "zip"])
def test_streaming_writers_on_a_full_disk(disk, writer):
    """numpy (whose short write into a real file has no errno), pyarrow and zipfile through ``atomic_writer``."""
    target = disk.folder / f"out.{writer}"
    disk.leave(2)
    with pytest.raises(WriteFailure) as caught:
        with atomic_writer(target) as fh:
            _write_big(writer, fh)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert "needs more than" in str(caught.value)
    assert not target.exists() and disk.leftovers() == []


def _write_big(writer: str, fh) -> None:
    data = np.random.default_rng(0).random(40_000)
    if writer == "npy":
        np.save(fh, data)
    elif writer == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"x": data}), fh, compression="none")
    else:
        import zipfile

        with zipfile.ZipFile(fh, "w") as zf:
            zf.writestr("data.bin", data.tobytes())


def test_a_read_only_card(tmp_path):
    with small_tmpfs(tmp_path / "card", 64 << 10) as card:
        (card / "out").mkdir()
        remount_read_only(card)
        with pytest.raises(WriteFailure) as caught:
            write_atomic(card / "out" / "p.json", "{}")
    exc = caught.value
    assert exc.errno == errno.EROFS and exc.filename == str(card / "out" / "p.json")
    assert "read-only" in str(exc) and str(card) in str(exc)


def test_injected_read_only(tmp_path, monkeypatch):
    with disk_of_kind("injected", tmp_path / "card", monkeypatch) as disk:
        disk.injected.errno, disk.injected.capacity = errno.EROFS, 0
        with pytest.raises(WriteFailure, match="read-only"):
            write_atomic(disk.folder / "p.json", "{}")


def test_other_errors_inside_a_writer_pass_through(tmp_path):
    """A missing input read inside the block is not a write failure: it keeps its type and message."""
    with pytest.raises(FileNotFoundError):
        with atomic_writer(tmp_path / "out.bin") as fh:
            fh.write((tmp_path / "missing-input.txt").read_bytes())
    with pytest.raises(PermissionError) as caught:  # EACCES on a file that is not the target: someone else's problem
        with atomic_writer(tmp_path / "out.bin"):
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "elsewhere" / "input.jpg"))
    assert not isinstance(caught.value, WriteFailure)
    assert list(tmp_path.iterdir()) == []


def test_write_errors_names_the_file_or_the_folder(tmp_path):
    with pytest.raises(WriteFailure) as caught:
        with write_errors(tmp_path / "bundle.partial", note="the unfinished export was removed"):
            raise OSError(errno.ENOSPC, "No space left on device")  # as onnx.save's write raises it: no file name
    assert caught.value.filename == str(tmp_path / "bundle.partial")
    assert "the unfinished export was removed; free space there" in str(caught.value)
    with pytest.raises(WriteFailure) as caught:
        with write_errors(tmp_path):
            raise OSError(errno.EIO, "Input/output error", str(tmp_path / "vision.onnx"))
    assert caught.value.filename == str(tmp_path / "vision.onnx") and "input/output error" in str(caught.value)
    with pytest.raises(ValueError):
        with write_errors(tmp_path):
            raise ValueError("not about the disk")


@pytest.mark.parametrize("code, words", [(errno.EDQUOT, "quota"), (errno.EFBIG, "FAT32"), (errno.EIO, "failing"),
                                         (errno.EACCES, "permission denied")])
def test_each_cause_says_what_to_do(tmp_path, code, words):
    exc = WriteFailure(code, "x", str(tmp_path / "p.csv"), free=10, mount=str(tmp_path))
    assert words in str(exc) and str(tmp_path / "p.csv") in str(exc)
    assert exc.text("--resume").endswith("then run the same command again with --resume")


def test_a_write_failure_crosses_processes():
    """The export's PyTorch stage runs in a child process and sends its exception back pickled."""
    exc = WriteFailure(errno.ENOSPC, "No space left on device", "/card/x.onnx", needed=5_000_000, free=12, mount="/card")
    back = pickle.loads(pickle.dumps(exc))
    assert isinstance(back, WriteFailure) and str(back) == str(exc) and back.errno == errno.ENOSPC


# --- the command line: one line, exit code 3, the traceback only with -v --------------------------
@pytest.fixture
def info_raises(monkeypatch):
    """``info`` (any command) raising what a writer raised."""
    from bioclip_edge.runtime.cli import info

    def raise_it(exc):
        def run(args):
            raise exc
        monkeypatch.setattr(info, "run", run)
    return raise_it


@pytest.mark.parametrize("raw", [True, False])
def test_cli_exit_code_and_one_line(info_raises, tmp_path, capsys, raw):
    target = tmp_path / "p.csv"
    exc = OSError(errno.ENOSPC, "No space left on device", str(target)) if raw else \
        WriteFailure(errno.ENOSPC, "No space left on device", str(target), needed=2_000_000, free=1000)
    info_raises(exc)
    assert cli_main(["info", str(tmp_path)]) == WRITE_FAILURE_EXIT == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"bioclip-edge info: error: cannot write {target}: no space left on the disk")
    assert "then run the same command again" in err
    assert cli_main(["-v", "info", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("bioclip-edge info: error: cannot write")


def test_cli_other_os_errors_stay_bugs(info_raises):
    info_raises(OSError(errno.ENOENT, "No such file or directory", "x"))
    with pytest.raises(FileNotFoundError):
        cli_main(["info", "x"])


def test_main_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    out = capsys.readouterr().out
    for code in ("0 ", "1 ", "2 ", "3 ", "130 "):
        assert f"\n  {code}" in out
    assert "disk full" in out


def test_the_test_disk_fills_as_asked(tmp_path):
    with small_tmpfs(tmp_path / "disk", 256 << 10) as disk:
        fill(disk, 8192)
        assert shutil.disk_usage(disk).free == 8192

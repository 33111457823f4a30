"""``bioclip-edge sort`` when things go wrong: kills at every step (a real SIGKILL of a real ``sort`` process),
resuming, undoing, files the sort did not make, other file systems, and every refused input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bioclip_edge.cli import main
from bioclip_edge.runtime.sorting import SortRequest, sort_files, undo_sort
from bioclip_edge.runtime.sorting.journal import CRASH_ENV, MANIFEST
from bioclip_edge.runtime.sorting.request import SortFolderError
from tests.helpers.sort_runs import copy_card, files_under, hashes, snapshot


def sort_command(runs, card: Path, into: Path, *extra: str, fmt: str = "jsonl") -> list[str]:
    return ["sort", str(runs.outputs[fmt]), "--into", str(into), "--image-root", str(card), *extra]


def killed(args: list[str], at: str) -> subprocess.CompletedProcess:
    """``bioclip-edge ARGS`` in its own process, which SIGKILLs itself at the step ``at`` (``STEP:N``)."""
    env = {**os.environ, CRASH_ENV: at}
    done = subprocess.run([sys.executable, "-m", "bioclip_edge.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -9, (done.returncode, done.stderr[-2000:])
    return done


def killed_sort(runs, card: Path, into: Path, at: str, mode: str = "move", fmt: str = "jsonl") -> None:
    """``sort_files`` in its own process, 4 placements a batch (so a kill finds whole batches done and one
    in flight), SIGKILLed at the step ``at``."""
    code = ("import sys; from pathlib import Path; from bioclip_edge.runtime.sorting import SortRequest, sort_files; "
            "sort_files(SortRequest(Path(sys.argv[1]), Path(sys.argv[2]), mode=sys.argv[3], image_root=Path(sys.argv[4]), "
            "batch=4))")
    env = {**os.environ, CRASH_ENV: at}
    done = subprocess.run([sys.executable, "-c", code, str(runs.outputs[fmt]), str(into), mode, str(card)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, (done.returncode, done.stderr[-2000:])


def journal_lines(into: Path) -> list[dict]:
    return [json.loads(line) for line in (into / MANIFEST).read_text(encoding="utf-8").splitlines()]


def check_nothing_twice(into: Path, sources: int) -> None:
    """One begin per file, one placed per begin, one removal per move: no step was repeated."""
    lines = journal_lines(into)
    begins = [e for e in lines if e["op"] == "begin"]
    assert len(begins) == len({e["source"] for e in begins}) == sources
    for op in ("placed", "removed"):
        ids = [e["id"] for e in lines if e["op"] == op]
        assert len(ids) == len(set(ids))
    assert len({e["path"] for e in lines if e["op"] == "mkdir"}) == sum(e["op"] == "mkdir" for e in lines)


@pytest.mark.parametrize("step", ["begun:6", "in-place:6", "placed:6", "source-removed:6"])
def test_a_move_killed_at_any_step_resumes_then_undoes_exactly(sort_runs, tmp_path, step):
    card = copy_card(sort_runs.card, tmp_path / "card")
    before, listing = snapshot(card), files_under(card)
    into = tmp_path / "sorted"
    killed_sort(sort_runs, card, into, step)
    assert 0 < len(files_under(card)) < len(listing)  # stopped in the middle
    half, lines = snapshot(card), (into / MANIFEST).read_bytes()
    dry = sort_files(SortRequest(sort_runs.outputs["jsonl"], into, mode="move", image_root=card, dry_run=True))
    assert dry.done_before == 4 and snapshot(card) == half and (into / MANIFEST).read_bytes() == lines  # one batch done
    assert hashes(card) + hashes(into, skip=(MANIFEST,)) != []
    # the same command again: resumes
    assert main(sort_command(sort_runs, card, into, "--mode", "move")) == 0
    assert files_under(card) == []
    assert hashes(into, skip=(MANIFEST,)) == sorted(sha for sha, _ in before.values())  # each file once, intact
    check_nothing_twice(into, len(listing))
    assert main(["sort", "--undo", str(into)]) == 0
    assert snapshot(card) == before and files_under(card) == listing and not into.exists()


@pytest.mark.parametrize("step", ["copied:4", "begun:1"])
def test_a_copy_killed_mid_file_leaves_no_half_copy(sort_runs, tmp_path, step):
    card = copy_card(sort_runs.card, tmp_path / "card")
    before = snapshot(card)
    into = tmp_path / "sorted"
    killed_sort(sort_runs, card, into, step, mode="copy", fmt="csv")
    result = sort_files(SortRequest(sort_runs.outputs["csv"], into, mode="copy", image_root=card))
    assert result.done_before + result.done_now == len(result.placements) == len(before)
    assert not [p for p in into.rglob("*.bioclip-sort-tmp")]  # the cut-short copy was cleared, never named
    assert hashes(into, skip=(MANIFEST,)) == hashes(card)
    check_nothing_twice(into, len(before))


def test_an_undo_killed_midway_resumes(sort_runs, tmp_path):
    card = copy_card(sort_runs.card, tmp_path / "card")
    before = snapshot(card)
    into = tmp_path / "sorted"
    assert main(sort_command(sort_runs, card, into, "--mode", "move")) == 0
    killed(["sort", "--undo", str(into)], "restored:5")
    assert 0 < len(files_under(card)) < len(before)
    result = undo_sort(into)
    # the 5th file was back in place when the kill came: its sorted name is only removed now
    assert result.finished and result.undone_before == 4
    assert (result.restored, result.removed) == (len(before) - 5, 1)
    assert snapshot(card) == before and not into.exists()


def test_the_same_sort_again_does_nothing_twice(sort_runs, tmp_path, capsys):
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"
    first = sort_files(SortRequest(sort_runs.outputs["csv"], into, mode="copy", image_root=card))
    lines = (into / MANIFEST).read_text()
    again = sort_files(SortRequest(sort_runs.outputs["csv"], into, mode="copy", image_root=card))
    assert again.done_now == 0 and again.done_before == len(first.placements) == len(again.placements)
    assert [p.dest for p in again.placements] == [p.dest for p in first.placements]
    assert (into / MANIFEST).read_text() == lines
    assert main(sort_command(sort_runs, card, into, "--mode", "copy", "--dry-run", fmt="csv")) == 0
    out = capsys.readouterr().out
    assert "would copy 0 file(s)" in out and "already placed by an earlier run" in out
    assert not [line for line in out.splitlines() if line.startswith("copy ")]  # nothing left to list


def test_a_torn_last_journal_line_is_dropped(sort_runs, tmp_path):
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"
    killed_sort(sort_runs, card, into, "placed:3")
    with open(into / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write('{"op": "begin", "id": 3, "sour')  # a kill while the line was being written
    assert main(sort_command(sort_runs, card, into, "--mode", "move")) == 0
    assert files_under(card) == []
    check_nothing_twice(into, len(files_under(into)) - 1)


def test_undo_leaves_what_the_sort_did_not_make(sort_runs, tmp_path, capsys):
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"
    result = sort_files(SortRequest(sort_runs.outputs["csv"], into, mode="copy", image_root=card, threshold=0.0))
    folder = into / result.placements[0].folder
    (folder / "my notes.txt").write_text("mine")
    edited = into / result.placements[1].dest
    edited.write_bytes(edited.read_bytes() + b"edited")
    assert main(["sort", "--undo", str(into)]) == 1
    out = capsys.readouterr().out
    assert f"kept {edited}" in out and "changed since it was sorted" in out
    assert (folder / "my notes.txt").read_text() == "mine" and edited.exists()
    assert sorted(files_under(into)) == sorted([MANIFEST, os.path.relpath(edited, into), os.path.relpath(folder / "my notes.txt", into)])
    edited.unlink()  # put right by the user: the next undo finishes
    assert undo_sort(into).finished
    assert files_under(into) == ["/".join([folder.name, "my notes.txt"])]  # the user's file and its folder stay
    assert len(files_under(card)) == len(result.placements)


def test_a_hard_link_whose_original_is_gone_is_kept(sort_runs, tmp_path):
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"
    result = sort_files(SortRequest(sort_runs.outputs["csv"], into, image_root=card))
    gone = result.placements[0]
    Path(gone.source).unlink()
    undone = undo_sort(into)
    assert not undone.finished and [path for path, _ in undone.kept] == [str(into / gone.dest)]
    assert "only copy" in undone.kept[0][1] and (into / gone.dest).is_file()


def other_file_system(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm)")
    return shm


def test_across_file_systems_links_become_symlinks_and_moves_copies(sort_runs, tmp_path, capsys):
    import tempfile

    with tempfile.TemporaryDirectory(dir=other_file_system(tmp_path)) as far:
        card = copy_card(sort_runs.card, Path(far) / "card")
        before = snapshot(card)
        linked = tmp_path / "linked"
        assert main(sort_command(sort_runs, card, linked)) == 0
        assert "symbolically linked" in capsys.readouterr().out
        assert all(p.is_symlink() for p in linked.rglob("*") if p.is_file() and p.name != MANIFEST)
        assert hashes(linked, skip=(MANIFEST,)) == hashes(card)
        assert undo_sort(linked).finished and not linked.exists() and snapshot(card) == before
        moved = tmp_path / "moved"
        assert main(sort_command(sort_runs, card, moved, "--mode", "move")) == 0
        assert files_under(card) == [] and hashes(moved, skip=(MANIFEST,)) == sorted(sha for sha, _ in before.values())
        assert {e.get("how") for e in journal_lines(moved) if e["op"] == "placed"} == {"copy"}
        assert main(["sort", "--undo", str(moved)]) == 0
        assert snapshot(card) == before  # bytes and modification times


def test_refused_inputs_say_what_to_do(sort_runs, tmp_path, capsys):
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"

    def refused(*args: str) -> str:
        assert main(["sort", *args]) == 2
        return capsys.readouterr().err

    # relative paths without --image-root start from the predictions file's folder: not there
    assert "pass --image-root" in refused(str(sort_runs.outputs["csv"]), "--into", str(into))
    assert not into.exists()
    assert "holds no classifications" in refused(str(sort_runs.detector), "--into", str(into), "--image-root", str(card))
    notes = tmp_path / "notes.txt"
    notes.write_text("lion,3\n")
    assert "not a bioclip-edge or MegaDetector output" in refused(str(notes), "--into", str(into))
    assert main(sort_command(sort_runs, card, into, fmt="csv")) == 0
    capsys.readouterr()
    assert "holds the sort of another predictions file" in refused(*sort_command(sort_runs, card, into, fmt="jsonl")[1:])
    assert "was sorted with --mode link" in refused(*sort_command(sort_runs, card, into, "--mode", "copy", fmt="csv")[1:])
    full = tmp_path / "full"
    full.mkdir()
    (full / "photo.jpg").write_bytes(b"x")
    assert "holds other files and no sort manifest" in refused(*sort_command(sort_runs, card, full, fmt="csv")[1:])
    assert "is a file" in refused(*sort_command(sort_runs, card, full / "photo.jpg", fmt="csv")[1:])
    assert "holds no sort manifest" in refused("--undo", str(full))
    assert "takes no PREDICTIONS" in refused(str(sort_runs.outputs["csv"]), "--undo", str(into))
    assert "give PREDICTIONS and --into" in refused(str(sort_runs.outputs["csv"]))
    assert "add --rank" in refused(*sort_command(sort_runs, card, tmp_path / "t", "--labels", str(sort_runs.matrix), fmt="csv")[1:])
    assert "--threshold 1.5" in refused(*sort_command(sort_runs, card, tmp_path / "t", "--threshold", "1.5", fmt="csv")[1:])


def test_a_second_sort_in_the_same_folder_waits_its_turn(sort_runs, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    card = copy_card(sort_runs.card, tmp_path / "card")
    into = tmp_path / "sorted"
    killed_sort(sort_runs, card, into, "placed:2", mode="link", fmt="csv")
    with open(into / MANIFEST, "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(SortFolderError, match="another 'bioclip-edge sort' is working"):
            sort_files(SortRequest(sort_runs.outputs["csv"], into, image_root=card))
    assert sort_files(SortRequest(sort_runs.outputs["csv"], into, image_root=card)).done_before == 4  # one batch

"""``bioclip-edge sort`` throughput: files per second to sort and to undo, per mode, on this disk.

A card of N files (random bytes of a camera JPEG's size: sorting never decodes them) and a JSON
Lines output classifying them, sorted into a folder on the same file system with ``link``,
``copy`` and ``move``, then undone; each round trip is checked (every file back, byte for byte).
``link`` is also run journaling every placement on its own (``batch=1``) to show what batching
the journal's fsyncs buys, as a ratio within the run (shared machines drift between runs).

    python benchmarks/bench_sort.py --out bench-out/sort --files 1000 --size-mb 2     # sort.json, sort.md
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bioclip_edge.runtime.sorting import SortRequest, sort_files, undo_sort

LABELS = ("Panthera leo", "Panthera pardus", "Crocuta crocuta", "empty")


def make_card(root: Path, files: int, size: int) -> tuple[Path, Path, dict[str, str]]:
    card = root / "card"
    card.mkdir()
    predictions = root / "predictions.jsonl"
    hashes = {}
    with open(predictions, "w", encoding="utf-8") as fh:
        for i in range(files):
            name = f"DCIM/100CAM{i % 4}/IMG_{i // 4:05d}.JPG"  # four camera folders: names clash across them
            data = os.urandom(size)
            (card / name).parent.mkdir(parents=True, exist_ok=True)
            (card / name).write_bytes(data)
            hashes[name] = hashlib.sha256(data).hexdigest()
            score = 0.3 + 0.6 * (i % 7) / 6
            fh.write(json.dumps({"filepath": name, "predictions": [{"label": LABELS[i % 4], "score": score}]}) + "\n")
    return card, predictions, hashes


def round_trip(card: Path, predictions: Path, into: Path, mode: str, batch: int, hashes: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    result = sort_files(SortRequest(predictions, into, mode=mode, image_root=card, batch=batch))
    t1 = time.perf_counter()
    undone = undo_sort(into)
    t2 = time.perf_counter()
    back = {p.relative_to(card).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in card.rglob("*") if p.is_file()}
    ok = undone.finished and back == hashes and not into.exists() and len(result.placements) == len(hashes)
    n = len(hashes)
    return {"mode": mode, "batch": batch, "files": n, "sort_s": round(t1 - t0, 3), "undo_s": round(t2 - t1, 3),
            "sort_files_per_s": round(n / (t1 - t0), 1), "undo_files_per_s": round(n / (t2 - t1), 1), "round_trip_exact": ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/sort"), help="folder for sort.json and sort.md")
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--size-mb", type=float, default=2.0, help="bytes per file, in MB (a camera-trap JPEG: 1-5)")
    p.add_argument("--where", type=Path, default=None, help="folder on the disk to measure (default: the temp folder)")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.where) as tmp:
        card, predictions, hashes = make_card(Path(tmp), args.files, int(args.size_mb * 1e6))
        for mode, batch in (("link", 128), ("link", 1), ("copy", 128), ("move", 128)):
            rows.append(round_trip(card, predictions, Path(tmp) / f"sorted-{mode}-{batch}", mode, batch, hashes))
            print(json.dumps(rows[-1]))
        shutil.rmtree(card)
    fast, slow = rows[0], rows[1]
    summary = {"size_mb": args.size_mb, "rows": rows,
               "link_batch_speedup": round(fast["sort_files_per_s"] / slow["sort_files_per_s"], 1),
               "all_round_trips_exact": all(r["round_trip_exact"] for r in rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sort.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    lines = ["| mode | batch | files | sort files/s | undo files/s | round trip exact |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['mode']} | {r['batch']} | {r['files']} | {r['sort_files_per_s']} | {r['undo_files_per_s']} | "
              f"{r['round_trip_exact']} |" for r in rows]
    (args.out / "sort.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0 if summary["all_round_trips_exact"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

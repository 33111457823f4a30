"""Million-image runs: 1,000,000 synthetic records through the classify job into each output format.

The engine is synthetic (records without a model: realistic top-5 labels and scores from a
1,000-label set, EXIF fields, sizes), everything else is what ``bioclip-edge classify`` runs: the
same ``ClassifySpec``, ``run_job`` (append-only checkpoint journal, result store), streaming
writers. Each format runs in a fresh child process, so its peak resident set (``ru_maxrss``) is its
own. Reported per format: wall time, records per second, peak RSS (and the RSS of the process with
its 1M inputs listed, before the run), checkpoint seconds (encoding, appending and fsync'ing the
journal) and their share of the run, output size. Targets: peak RSS < 1 GB, checkpoint share < 3%.

Usage: python benchmarks/bench_million.py --out bench-out/million [--records 1000000] [--formats csv,jsonl]
Takes a few minutes per format on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

FORMATS = ("megadetector", "csv", "jsonl", "parquet")
SUFFIX = {"megadetector": "json", "csv": "csv", "jsonl": "jsonl", "parquet": "parquet"}
TARGET_RSS_MB = 1000
TARGET_CHECKPOINT_SHARE = 0.03
N_LABELS = 1000
TOP_K = 5


def fake_classifier() -> Any:
    """What ``ClassifySpec`` reads of a ``Classifier``, without a model."""
    from bioclip_edge.runtime.images.video import VideoSampling

    names = [f"Genus{i // 10} species{i}" for i in range(N_LABELS)]
    description = SimpleNamespace(to_dict=lambda: {"model": "synthetic", "variant": "none", "backend": "synthetic",
                                                  "labels": N_LABELS, "top_k": TOP_K, "random_weights": False})
    return SimpleNamespace(
        names=names, top_k=TOP_K, draft_size=None, sampling=VideoSampling(), labels_sha256="0" * 64,
        labels=SimpleNamespace(recipe="synthetic"), description=description,
        bundle=SimpleNamespace(manifest=SimpleNamespace(model=SimpleNamespace(id="synthetic"))),
        embedder=SimpleNamespace(variant=SimpleNamespace(name="none", sha256="0" * 64), provider="synthetic"),
        category_descriptions=lambda: names)


class SyntheticEngine:
    """Records as the local engine yields them, made up: top-5 of a peaked softmax, EXIF, size."""

    name = "synthetic"

    def classify(self, clf: Any, items: Any) -> Iterator[dict[str, Any]]:
        from bioclip_edge.runtime.jobs.records import image_record

        rng = random.Random(0)
        for n, item in enumerate(items):
            first = rng.randrange(N_LABELS)
            scores = sorted((rng.random() for _ in range(TOP_K)), reverse=True)
            total = sum(scores) * 1.3
            top = [{"label": clf.names[(first + j * 7) % N_LABELS], "score": round(s / total, 6),
                    "index": (first + j * 7) % N_LABELS} for j, s in enumerate(scores)]
            info = {"datetime": f"2024:03:{1 + n // 86400 % 28:02d} {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}",
                    "make": "Reconyx", "model": "HyperFire 2", "width": 1920, "height": 1080}
            yield image_record(item.filepath, info, top)

    def describe(self) -> dict[str, Any]:
        return {"engine": "synthetic"}

    def close(self) -> None:
        pass


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def one_format(fmt: str, records: int, folder: Path) -> dict[str, Any]:
    """Run in a child process: the classify job over ``records`` synthetic inputs into ``fmt``."""
    from bioclip_edge.runtime.images.discover import ImageItem
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, ClassifySpec
    from bioclip_edge.runtime.jobs.runner import run_job

    items = [ImageItem(Path(f"/cards/card{i // 10000:03d}/DCIM/IMG_{i:07d}.JPG"), f"card{i // 10000:03d}/DCIM/IMG_{i:07d}.JPG")
             for i in range(records)]
    before = current_rss_mb()
    out = folder / f"predictions.{SUFFIX[fmt]}"
    job = ClassifyJob(out=out, fmt=fmt, relative_paths=True, progress=False)
    start = time.perf_counter()
    summary = run_job(ClassifySpec(fake_classifier(), job, items, SyntheticEngine()), job.config).summary
    seconds = time.perf_counter() - start
    return {"format": fmt, "records": summary.total, "seconds": round(seconds, 1), "records_per_s": round(records / seconds),
            "peak_rss_mb": round(rss_mb(), 1), "rss_with_inputs_listed_mb": round(before, 1),
            "checkpoint_seconds": round(summary.checkpoint_seconds, 2),
            "checkpoint_share": round(summary.checkpoint_seconds / seconds, 4),
            "encode_seconds": round(summary.encode_seconds, 2), "encode_share": round(summary.encode_seconds / seconds, 4),
            "output_mb": round(out.stat().st_size / 2**20, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/million"))
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--work", type=Path, default=None, help="where outputs are written (default: a temporary folder)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(one_format(args.child, args.records, args.work)))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for fmt in args.formats.split(","):
            print(f"== {fmt}: {args.records} records", flush=True)
            folder = Path(work) / fmt
            folder.mkdir()
            proc = subprocess.run([sys.executable, __file__, "--child", fmt, "--records", str(args.records), "--work", str(folder)],
                                  capture_output=True, text=True)
            row = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else {
                "format": fmt, "error": proc.stderr.strip().splitlines()[-1:]}
            row["meets_targets"] = bool(row.get("peak_rss_mb", 1e9) < TARGET_RSS_MB and row.get("checkpoint_share", 1) < TARGET_CHECKPOINT_SHARE)
            print(json.dumps(row), flush=True)
            rows.append(row)
            for path in folder.iterdir():
                path.unlink()
    write_results(args.out, rows, args.records)
    return 0 if all(r.get("meets_targets") for r in rows) else 1


def write_results(out: Path, rows: list[dict[str, Any]], records: int) -> None:
    from bioclip_edge.profiling.machine import machine_info

    result = {"benchmark": "million", "records": records, "targets": {"peak_rss_mb": TARGET_RSS_MB,
              "checkpoint_share": TARGET_CHECKPOINT_SHARE}, "machine": machine_info().to_dict(), "formats": rows}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {records:,} synthetic records through the classify job", "",
             "| format | seconds | records/s | peak RSS (MB) | RSS with inputs listed (MB) | checkpoint s | checkpoint share "
             "| encode share | output MB | targets met |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['format']} | failed: {r['error']} | | | | | | | | no |")
            continue
        lines.append(f"| {r['format']} | {r['seconds']} | {r['records_per_s']} | {r['peak_rss_mb']} | {r['rss_with_inputs_listed_mb']} | "
                     f"{r['checkpoint_seconds']} | {100 * r['checkpoint_share']:.2f}% | {100 * r['encode_share']:.1f}% | {r['output_mb']} | "
                     f"{'yes' if r['meets_targets'] else 'no'} |")
    machine = machine_info().to_dict()
    lines += ["", f"Targets: peak RSS < {TARGET_RSS_MB} MB, checkpoint share < {100 * TARGET_CHECKPOINT_SHARE:.0f}% "
              "(appending, flushing and fsync'ing the journal). Encode share: turning each result into its journal "
              "line, which the output is written from at the end (counted apart).",
              f"Machine: {machine.get('logical_cores')}-core {machine.get('cpu_model')} ({', '.join(machine.get('isa') or [])}), "
              f"{machine.get('memory_total_gb')} GB, Python {machine.get('python')}.", ""]
    (out / "results.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())

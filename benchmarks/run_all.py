"""``make bench``: run every benchmark script and collect their results in one folder.

Each benchmark is a script that takes ``--out PATH`` and writes JSON (and Markdown where it has a
table). Speed targets live here, measured side by side in one run, never in unit tests: timings on
shared machines drift 2-3x between runs, so every figure that matters is a ratio within one run.
A failing benchmark is recorded as a failure row, not dropped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    ("profile", "bench_profile.py"),  # FLOPs, throughput per target, ViT-B/16 sizing report
    ("labels", "bench_labels.py"),  # trimmed-context label build vs open_clip, 867k x 768 fp16 scoring
    ("speed", "bench_speed.py"),  # every CPU configuration side by side, end to end, CLI start-up
    ("defaults", "bench_defaults.py"),  # export + classify defaults vs the targets (ViT-B/L/H), export memory
    ("video", "bench_video.py"),  # seconds of 1080p30 H.264 per wall second at 1 frame/s, vs stills
    ("ray", "bench_ray.py"),  # the Ray engine vs the local engine on 960 1080p JPEGs, many-machines estimate
    ("adapt", "bench_adapt.py"),  # labels adapt vs zero-shot, SimpleShot, prototypes, a linear probe (trained tiny model)
    ("sort", "bench_sort.py"),  # sort + undo files/s per mode on this disk; batched vs per-file journal fsyncs
    ("million", "bench_million.py"),  # 1,000,000 synthetic records through classify into each format: peak RSS, checkpoint share
    ("memory", "bench_memory.py"),  # classify peak RSS next to images/s, defaults vs each batch size, per backend (1080p)
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("bench-out"))
    p.add_argument("--only", nargs="*", help="run only these benchmarks (names: %s)" % ", ".join(n for n, _ in BENCHMARKS))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name, script in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        path = HERE / script
        if not path.exists():
            summary[name] = {"status": "missing", "script": script}
            continue
        started = time.perf_counter()
        print(f"== {name}: {script}", flush=True)
        proc = subprocess.run([sys.executable, str(path), "--out", str(args.out / name)])
        summary[name] = {"status": "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})",
                         "seconds": round(time.perf_counter() - started, 1), "results": str(args.out / name)}
        write_provenance(args.out / name, name, script, summary[name])
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if all(v["status"] == "ok" for v in summary.values()) else 1


def write_provenance(folder: Path, name: str, script: str, outcome: dict) -> None:
    """``run.json`` beside a benchmark's results: when, on what machine, with which library versions
    and from which commit they were measured. The docs' performance page shows it with every table."""
    from datetime import datetime, timezone

    from bioclip_edge.profiling.machine import machine_info

    def git(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=HERE, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    record = {"benchmark": name, "script": f"benchmarks/{script}", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(status) if status is not None else None,
              "machine": machine_info().to_dict(), **outcome}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())

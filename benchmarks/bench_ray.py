"""Ray benchmark: the Ray engine against the local engine on one machine, in one run.

960 1920x1080 JPEGs (the sample photos resized) are classified with the runtime's defaults
(``--precision auto --backend auto``, exact decoding) by the local engine and by ``--engine ray``
on a local Ray started once (as a cluster is: ``ray start --head``), alternating local, ray,
local, ray, ... so machine drift hits both alike. Each run is timed whole, from the job's start
to its written output, Ray's actor start-up included. The ratio of medians is the Ray engine's
efficiency; with the local rate it gives the "many machines" estimate (``profiling.scale_out``).

    python benchmarks/bench_ray.py --out bench-out/ray [--bundle BUNDLE] [--images 960] [--rounds 2]

Without ``--bundle`` it reuses ``make bench``'s random-weight ViT-B/16 bundle (bench-out/speed)
or exports one (a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
LABELS = ["lion", "leopard", "cheetah", "spotted hyena", "zebra", "empty savanna"]
TARGET = 0.9  # the Ray engine's throughput over the local engine's on this machine


def one_run(clf, engine, photos: list[Path], out: Path) -> float:
    from bioclip_edge.runtime.jobs.classify_job import ClassifyJob, run_classify

    start = time.perf_counter()
    summary = run_classify(clf, ClassifyJob(out=out, overwrite=True, progress=False), photos, engine=engine)
    seconds = time.perf_counter() - start
    assert summary.total == len(photos) and summary.failed == 0, summary.line()
    return seconds


def measure(clf, photos: list[Path], rounds: int, out: Path) -> dict:
    from bioclip_edge.runtime.cluster.engine import RayEngine
    from bioclip_edge.runtime.cluster.options import RayOptions
    from bioclip_edge.runtime.jobs.engines import LocalEngine

    ray_engine = RayEngine(RayOptions())
    cluster = ray_engine.start().describe()
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for r in range(rounds):
        for name, engine in (("local", LocalEngine()), ("ray", ray_engine)):
            seconds = one_run(clf, engine, photos, out / f"{name}.jsonl")
            times[name].append(seconds)
            print(f"  round {r + 1} {name}: {len(photos) / seconds:.1f} images/s", flush=True)
    same = (out / "local.jsonl").read_text().splitlines() == (out / "ray.jsonl").read_text().splitlines()
    ray_engine.close()
    rates = {k: len(photos) / statistics.median(v) for k, v in times.items()}
    return {"cluster": cluster, "seconds": times, "images_per_second": rates,
            "ray_over_local": rates["ray"] / rates["local"], "identical_outputs": same}


def markdown(result: dict) -> str:
    from bioclip_edge.profiling.scale_out import ScaleOutEstimate, ScaleOutRow

    rates = result["images_per_second"]
    est = result["scale_out"]
    estimate = ScaleOutEstimate(est["node_rate"], est["ray_efficiency"], tuple(ScaleOutRow(**r) for r in est["rows"]),
                                tuple(est["assumptions"]))
    ok = "met" if result["ray_over_local"] >= TARGET else "NOT met"
    lines = [f"# Ray engine vs local engine ({result['images']} 1080p JPEGs, {result['model']}, {result['variant']})", "",
             f"Machine: {result['machine']}; {result['cluster']}; weights random: {result['random_weights']}", "",
             "| engine | images/s (median of rounds) |", "|---|---|",
             f"| local | {rates['local']:.1f} |", f"| ray (local Ray, 1 actor) | {rates['ray']:.1f} |", "",
             f"Ray / local: **{result['ray_over_local']:.2f}x** (target >= {TARGET}: {ok}); "
             f"outputs identical: {result['identical_outputs']}.", "", "## Many machines", "", *estimate.markdown(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bench_video import bundle_path, write_stills

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("bench-out/ray"))
    p.add_argument("--bundle", default=None)
    p.add_argument("--images", type=int, default=960)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from bioclip_edge.profiling.scale_out import scale_out
    from bioclip_edge.runtime.jobs.classifier import Classifier

    bundle = bundle_path(args)
    photos = write_stills(args.out.parent / "stills-1080p", args.images)
    clf = Classifier(bundle, LABELS)
    meta = clf.description.to_dict()
    print(f"ray bench: {meta['variant']} on {meta['backend']}, {len(photos)} images", flush=True)
    result = {"images": len(photos), "model": meta["model"], "variant": meta["variant"], "backend": meta["backend"],
              "random_weights": meta["random_weights"], "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs", **measure(clf, photos, args.rounds, args.out)}
    result["scale_out"] = scale_out(result["images_per_second"]["local"], result["ray_over_local"]).to_dict()
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "result.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Memory benchmark: `classify` peak resident memory (RSS) next to images/s, defaults vs each batch size, per backend.

Each configuration is one `bioclip-edge classify` process on the same 1920x1080 JPEGs with a label
matrix (as a field run has one), measured from outside: the child's peak RSS from `os.wait4`, its
images/s from the closing summary (the job only: the model load is not in it), and the batch and
decode window the memory budget chose from its console line. Configurations alternate round by
round (each round starting at the next one, so none always runs first), and images/s is compared as a ratio to the best configuration of the same backend in the
same run: on a shared machine absolute rates drift, ratios much less.

Backends: onnxruntime dynamic int8 (`--backend onnxruntime`: what the torch-free install runs by
default, OpenVINO never imported), onnxruntime fp32, and, where OpenVINO is installed, OpenVINO on
the bundle's NNCF int8 graph and OpenVINO on the fp32 graph (bf16 where the CPU has it).

Target (the torch-free install's defaults, ViT-B/16): peak RSS < 350 MB and images/s within 5% of
the best batch size of that backend.

    python benchmarks/bench_memory.py --out bench-out/memory [--bundle DIR] [--frames 40] [--rounds 2]

Without --bundle, a random-weight ViT-B/16 bundle is exported once into OUT/bundle-b16 (speed and
memory do not depend on the weights' values).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BACKENDS = {
    "onnxruntime int8": ["--backend", "onnxruntime"],
    "onnxruntime fp32": ["--backend", "onnxruntime", "--precision", "fp32"],
    "openvino int8": ["--backend", "openvino"],
    "openvino fp32 graph": ["--backend", "openvino", "--precision", "fp32"],
}
PLANS = {name: (args[3] if len(args) > 3 else "auto", args[1]) for name, args in BACKENDS.items()}  # (precision, backend)
BATCHES = ("default", "1", "2", "4", "8", "16", "32")
TARGET_RSS_MB = 350
TARGET_SPEED = 0.95
LABELS = ["lion", "leopard", "cheetah", "spotted hyena", "plains zebra", "empty savanna"]
_RATE = re.compile(r"in ([\d.]+) s \(([\d.]+) images/s\)")
_CHOICE = re.compile(r"^memory: batch (\d+), (\d+) images decoded ahead, estimated peak ([\d,]+) MB", re.MULTILINE)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "bioclip_edge.cli", *args]


def prepare(out: Path, bundle: Path | None, frames: int) -> tuple[Path, Path, Path]:
    """The bundle (exported once when not given), the frames and the label matrix."""
    if bundle is None:
        bundle = out / "bundle-b16"
        if not (bundle / "manifest.json").is_file():
            print(f"  exporting a random-weight ViT-B/16 into {bundle} (once)", flush=True)
            subprocess.run(cli("export", "ViT-B-16", "--random", "--out", str(bundle), "--precision", "fp32,int8",
                               "--parity-images", "12", "--calibration-images", "16", "--overwrite"), check=True,
                           stdout=subprocess.DEVNULL)
    folder = out / "frames"
    if len(list(folder.glob("*.jpg"))) != frames:
        write_frames(folder, frames)
    labels = out / "labels.npz"
    if not labels.is_file():
        text = out / "labels.txt"
        text.write_text("\n".join(LABELS) + "\n", encoding="utf-8")
        subprocess.run(cli("labels", "build", str(bundle), "--from", str(text), "--out", str(labels), "--overwrite",
                           "--no-progress"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return bundle, folder, labels


def write_frames(folder: Path, n: int) -> None:
    """``n`` 1920x1080 JPEGs: real photos (scikit-image samples) upscaled, as a trail camera writes them."""
    from PIL import Image

    from bioclip_edge.export.reference import sample_photo

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jpg"):
        old.unlink()
    names = ("astronaut", "chelsea", "coffee", "rocket")
    for i in range(n):
        picture = sample_photo(names[i % len(names)]).convert("RGB").resize((1920, 1080), Image.Resampling.BICUBIC)
        picture.save(folder / f"frame{i:03d}.jpg", "JPEG", quality=90)


def measured(bundle: Path, frames: Path, labels: Path, work: Path, backend_args: list[str], batch: str) -> dict:
    cmd = cli("classify", str(bundle), str(frames), "--labels", str(labels), "--out", str(work / "out.csv"),
              "--overwrite", "--no-progress", *backend_args, *([] if batch == "default" else ["--batch-size", batch]))
    with open(work / "stdout.txt", "w+") as out, open(work / "stderr.txt", "w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    rate, choice = _RATE.search(stdout), _CHOICE.search(stderr)
    images = len(list(frames.glob("*.jpg")))
    seconds = float(rate.group(1)) if rate else None  # the summary's 0.1 s: images/s from it has 3 digits, not 2
    row = {"rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": proc.returncode,
           "images_per_s": round(images / seconds, 3) if seconds else None, "seconds": seconds,
           "batch": int(choice.group(1)) if choice else None, "window": int(choice.group(2)) if choice else None,
           "estimate_mb": int(choice.group(3).replace(",", "")) if choice else None}
    if proc.returncode not in (0,):
        row["error"] = stderr.strip().splitlines()[-1:] if stderr.strip() else ["no output"]
    return row


def calibrate(bundle: Path, backends: list[str], rounds: int) -> dict:
    """Inference-only speed by batch size, per backend, relative to batch 1: what
    ``runtime.inference.memory.PROFILES`` records. Batch sizes alternate call by call and the best
    (shortest) time per image of each is kept. ``relative`` counts the process's CPU time per image,
    ``relative_wall`` wall time: on a shared, oversubscribed machine wall time favours big batches
    (fewer thread barriers to be descheduled at) whatever the backend does on a machine of its own,
    while CPU time counts the work each batch size costs."""
    import numpy as np

    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.images.request import ImageRequest
    from bioclip_edge.runtime.inference.plan import SessionOptions

    sizes = [int(b) for b in BATCHES if b != "default"]
    table = {}
    for backend in backends:
        precision, name = PLANS[backend]
        embedder = ImageEmbedder(str(bundle), ImageRequest(precision=precision, batch_size=max(sizes),
                                                           session=SessionOptions(backend=name)))
        pixels = np.random.default_rng(0).standard_normal((max(sizes), 3, *embedder.image_size)).astype(np.float32)
        embedder.embed(pixels[:2])  # warm-up
        wall = {b: float("inf") for b in sizes}
        cpu = dict(wall)
        for _ in range(rounds):
            for b in sizes:
                started, started_cpu = time.perf_counter(), time.process_time()
                embedder.embed(pixels[:b])
                wall[b] = min(wall[b], (time.perf_counter() - started) / b)
                cpu[b] = min(cpu[b], (time.process_time() - started_cpu) / b)
        table[backend] = {"provider": embedder.provider, "images_per_s": {b: round(1 / t, 2) for b, t in wall.items()},
                          "relative_wall": {b: round(wall[1] / t, 3) for b, t in wall.items()},
                          "relative": {b: round(cpu[1] / t, 3) for b, t in cpu.items()}}
        print(f"  {backend} ({embedder.provider}): CPU time " + ", ".join(f"{b}: {r:.2f}x" for b, r in table[backend]["relative"].items())
              + "; wall " + ", ".join(f"{b}: {r:.2f}x" for b, r in table[backend]["relative_wall"].items()), flush=True)
        del embedder
    return table


def in_process(bundle: Path, frames: Path, labels: Path, backend: str, rounds: int) -> dict:
    """End-to-end images/s (decode, embed, score) by batch size in one process: one classifier,
    its flow swapped between runs over the same frames, batch sizes alternating round by round.
    Process start-up and model load are out of it, so it resolves smaller differences than
    separate processes; the flows keep the budget's window rule (``preferred_window``)."""
    import dataclasses

    from bioclip_edge.runtime.images.discover import discover
    from bioclip_edge.runtime.inference.memory import preferred_window
    from bioclip_edge.runtime.inference.plan import SessionOptions
    from bioclip_edge.runtime.jobs.classifier import Classifier

    precision, name = PLANS[backend]
    clf = Classifier(str(bundle), str(labels), precision=precision, session=SessionOptions(backend=name))
    items, base = list(discover([str(frames)])), clf.embedder.flow
    sizes = [int(b) for b in BATCHES if b != "default"]
    rates: dict[int, list[float]] = {b: [] for b in sizes}
    for round_ in range(rounds):
        for b in sizes[round_ % len(sizes):] + sizes[:round_ % len(sizes)]:
            clf.embedder.flow = dataclasses.replace(base, batch_size=b, window=preferred_window(b, base.decode_threads))
            started = time.perf_counter()
            done = sum(1 for _ in clf.iter_items(items))
            rates[b].append(done / (time.perf_counter() - started))
    best = max(statistics.median(v) for v in rates.values())
    return {"default_batch": base.batch_size, "images_per_s": {b: round(statistics.median(v), 3) for b, v in rates.items()},
            "vs_best": {b: round(statistics.median(v) / best, 3) for b, v in rates.items()}, "rounds": rounds}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    versions = {}
    for name in ("onnxruntime", "openvino", "numpy", "PIL"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions,
            "load_average": os.getloadavg()}


def summarise(rows: dict[str, dict[str, list[dict]]]) -> dict:
    """Medians per configuration, images/s as a ratio to the backend's best configuration."""
    table: dict[str, dict] = {}
    for backend, by_batch in rows.items():
        cells = {}
        for batch, runs in by_batch.items():
            ok = [r for r in runs if r["exit"] == 0 and r["images_per_s"]]
            cells[batch] = {"rss_mb": statistics.median(r["rss_mb"] for r in ok) if ok else None,
                            "images_per_s": statistics.median(r["images_per_s"] for r in ok) if ok else None,
                            "best_images_per_s": max(r["images_per_s"] for r in ok) if ok else None,
                            "batch": ok[0]["batch"] if ok else None, "window": ok[0]["window"] if ok else None,
                            "estimate_mb": ok[0]["estimate_mb"] if ok else None, "runs": len(ok),
                            "errors": [r.get("error") for r in runs if r["exit"] != 0]}
        best = max((c["images_per_s"] for c in cells.values() if c["images_per_s"]), default=None)
        fastest = max((c["best_images_per_s"] for c in cells.values() if c["best_images_per_s"]), default=None)
        for c in cells.values():
            c["speed_vs_best"] = round(c["images_per_s"] / best, 3) if best and c["images_per_s"] else None
            c["best_vs_best"] = round(c["best_images_per_s"] / fastest, 3) if fastest and c["best_images_per_s"] else None
        table[backend] = cells
    return table


def verdict(table: dict) -> dict:
    default = table.get("onnxruntime int8", {}).get("default", {})
    rss, speed, peak = default.get("rss_mb"), default.get("speed_vs_best"), default.get("best_vs_best")
    return {"target": f"onnxruntime int8 defaults: peak RSS < {TARGET_RSS_MB} MB and >= {TARGET_SPEED:.0%} of the best batch's images/s",
            "rss_mb": rss, "speed_vs_best": speed, "best_vs_best": peak,
            "rss_met": rss is not None and rss < TARGET_RSS_MB, "speed_met": speed is not None and speed >= TARGET_SPEED,
            "best_met": peak is not None and peak >= TARGET_SPEED}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [f"# classify peak RSS and images/s by batch size ({result['frames']} 1920x1080 JPEGs, ViT-B/16)", "",
             f"Machine: {m['cpu']}, {m['cores']} cores; load average {m['load_average'][0]:.1f} at start, "
             f"{result['load_average_end'][0]:.1f} at the end (shared machine); medians of {result['rounds']} alternating round(s).",
             f"Versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items() if v)}.", "",
             "| backend | --batch-size | batch run | window | peak RSS (MB) | estimate (MB) | images/s (median) | vs best | "
             "images/s (best round) | vs best |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, cells in result["table"].items():
        for batch, c in cells.items():
            if c["rss_mb"] is None:
                lines.append(f"| {backend} | {batch} | failed: {c['errors'][:1]} | | | | | |")
                continue
            lines.append(f"| {backend} | {batch} | {c['batch']} | {c['window']} | {c['rss_mb']:.0f} | {c['estimate_mb']} | "
                         f"{c['images_per_s']:.2f} | {c['speed_vs_best']:.2f} | {c['best_images_per_s']:.2f} | {c['best_vs_best']:.2f} |")
    v = result["verdict"]
    lines += ["", f"Target: {v['target']}: peak RSS {v['rss_mb']} MB ({'met' if v['rss_met'] else 'MISSED'}); "
                  f"images/s {v['speed_vs_best']} of the best by medians ({'met' if v['speed_met'] else 'MISSED'}), "
                  f"{v['best_vs_best']} by best rounds ({'met' if v['best_met'] else 'MISSED'}). On a shared machine the "
                  "same configuration's rounds differ by more than 5%: compare 'default' with the batch it ran."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("bench-out/memory"))
    p.add_argument("--bundle", type=Path, default=None, help="a ViT-B/16 bundle (default: export a random one into OUT)")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma list of: " + ", ".join(BACKENDS))
    p.add_argument("--batches", default=",".join(BATCHES))
    p.add_argument("--calibrate", type=int, default=0, metavar="ROUNDS",
                   help="also measure inference-only speed by batch size (the profiles' speed tables), best of ROUNDS")
    p.add_argument("--in-process", type=int, default=0, metavar="ROUNDS",
                   help="also measure end-to-end images/s by batch size in one process (median of ROUNDS)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    bundle, frames, labels = prepare(args.out, args.bundle, args.frames)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not _has_openvino():
        backends = [b for b in backends if not b.startswith("openvino")]
    if args.in_process:
        found = {b: in_process(bundle, frames, labels, b, args.in_process) for b in backends}
        (args.out / "in_process.json").write_text(json.dumps({"machine": machine(), "table": found}, indent=2) + "\n")
        for b, row in found.items():
            print(f"  {b} (default batch {row['default_batch']}), median of {row['rounds']}: "
                  + ", ".join(f"{k}: {v:.2f} img/s ({row['vs_best'][k]:.2f})" for k, v in row["images_per_s"].items()), flush=True)
    if args.calibrate:
        speed = {"machine": machine(), "rounds": args.calibrate, "table": calibrate(bundle, backends, args.calibrate)}
        (args.out / "speed_by_batch.json").write_text(json.dumps(speed, indent=2) + "\n")
    batches = [b.strip() for b in args.batches.split(",") if b.strip()]
    if not batches:  # --batches "": only the in-process or calibration tables
        return 0
    started = machine()
    rows: dict[str, dict[str, list[dict]]] = {b: {n: [] for n in batches} for b in backends}
    for round_ in range(args.rounds):
        for backend in backends:
            for batch in batches[round_ % len(batches):] + batches[:round_ % len(batches)]:  # each round starts elsewhere
                row = measured(bundle, frames, labels, args.out, BACKENDS[backend], batch)
                rows[backend][batch].append(row)
                print(f"  round {round_ + 1} {backend} --batch-size {batch}: {json.dumps(row)}", flush=True)
    table = summarise(rows)
    result = {"machine": started, "load_average_end": os.getloadavg(), "frames": args.frames, "rounds": args.rounds,
              "bundle": str(bundle), "table": table, "runs": rows, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["verdict"] = verdict(table)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def _has_openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

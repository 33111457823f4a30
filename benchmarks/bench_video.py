"""Video benchmark: seconds of 1080p 30 fps H.264 video classified per wall second at one
sampled frame per second, next to the still-image rate (1920x1080 JPEGs), in one run.

Two clips are encoded once with PyAV's libx264 (a slow pan across a sample photo): one with a
keyframe every second (GOP 30, as many trail cameras write: the sampler decodes keyframes only)
and one with a keyframe every 4 s (GOP 120: every frame is decoded, only sampled ones are
converted to RGB). Each round classifies both clips and the stills with the runtime's defaults
(``--precision auto --backend auto``), alternating so machine drift hits all alike; figures are
medians over rounds. Also reported: decode-only rates (sampling without the model) and the
sampled-frame rate against the still rate (a sampled frame costs one 1080p decode + transform +
one model input, like a still, plus the video decoding between samples).

    python benchmarks/bench_video.py --out bench-out/video [--bundle BUNDLE] [--seconds 20] [--rounds 3]

Without ``--bundle`` it reuses ``make bench``'s random-weight ViT-B/16 bundle
(``bench-out/speed/bioclip-b16``) or exports one (a few minutes).
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
LABELS = ["lion", "leopard", "cheetah", "spotted hyena", "zebra", "empty savanna"]


def encode_clip(path: Path, seconds: float, fps: int, size: tuple[int, int], gop: int, preset: str) -> Path:
    """An H.264 MP4 panning across a sample photo, ``gop`` frames between keyframes (no scene cuts)."""
    import av
    import numpy as np
    from PIL import Image

    from bioclip_edge.export.reference import sample_photo

    if path.exists():
        return path
    width, height = size
    source = np.asarray(sample_photo("chelsea").convert("RGB").resize((width * 5 // 4, height), Image.BICUBIC))
    frames = int(seconds * fps)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"preset": preset, "sc_threshold": "0", "keyint_min": str(gop)}
        for i in range(frames):
            left = int(i * (source.shape[1] - width) / max(frames - 1, 1))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(source[:, left:left + width]), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_stills(folder: Path, count: int) -> list[Path]:
    """``count`` 1920x1080 JPEGs of the sample photos (what a still-image card holds)."""
    from PIL import Image

    from bioclip_edge.export.reference import sample_photo

    folder.mkdir(parents=True, exist_ok=True)
    names = ("astronaut", "chelsea", "coffee", "rocket")
    paths = []
    for i in range(count):
        path = folder / f"still-{i}.jpg"
        if not path.exists():
            sample_photo(names[i % len(names)]).convert("RGB").resize((1920, 1080), Image.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def bundle_path(args: argparse.Namespace) -> Path:
    if args.bundle:
        return Path(args.bundle)
    shared = args.out.parent / "speed" / "bioclip-b16"
    if (shared / "manifest.json").is_file():
        return shared
    from bioclip_edge.profiling.workflow import ensure_bundle

    return ensure_bundle(args.out / "bioclip-b16", "bioclip", ("fp32", "int8"), random=False,
                         progress=lambda m: print(f"  {m}", flush=True))


def measure(clf, clips: dict[str, Path], stills: list[Path], rounds: int, seconds: float, copies: int) -> dict:
    """Rounds alternating clips, decode-only sampling and stills; medians of wall times. Each clip is
    classified ``copies`` times in one run, as a card of clips is: the next clip decodes while the
    model runs on the previous one (one clip alone could not overlap the two)."""
    from bioclip_edge.runtime.images.discover import ImageItem
    from bioclip_edge.runtime.images.video import VideoReader

    times: dict[str, list[float]] = {}
    info: dict[str, dict] = {}
    for round_ in range(rounds + 1):  # round 0 warms up every path
        for name, clip in clips.items():
            t = time.perf_counter()
            records = list(clf.iter_items([ImageItem(clip, f"{i}-{clip.name}") for i in range(copies)]))
            times.setdefault(name, []).append(time.perf_counter() - t)
            t = time.perf_counter()
            with VideoReader(clip) as reader:
                sampled = sum(1 for _ in reader.sampled(clf.sampling))
                info[name] = {"sampled_frames": sampled, "keyframes_only": reader.info.keyframes_only,
                              "frames_processed": records[0].get("frames_processed"), "failures": records[0]["failures"]}
            times.setdefault(name + " decode only", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        done = list(clf.iter_items([ImageItem(p, p.name) for p in stills]))
        times.setdefault("stills", []).append(time.perf_counter() - t)
        assert not any(r["failures"] for r in done)
    median = {k: statistics.median(v[1:]) for k, v in times.items()}
    still_rate = len(stills) / median["stills"]
    out = {"stills": {"images": len(stills), "images_per_s": still_rate}, "clips": {}}
    for name in clips:
        frames = info[name]["sampled_frames"]
        out["clips"][name] = {**info[name], "video_seconds": seconds, "copies_per_run": copies,
                              "video_seconds_per_wall_second": seconds * copies / median[name],
                              "sampled_frames_per_s": frames * copies / median[name],
                              "sampled_frame_rate_vs_still_rate": frames * copies / median[name] / still_rate,
                              "decode_only_video_seconds_per_wall_second": seconds / median[name + " decode only"]}
    return out


def markdown(result: dict) -> str:
    lines = [f"Video benchmark ({result['machine']}; {result['variant']} on {result['provider']}; "
             f"{result['size']} {result['fps']} fps H.264, {result['seconds']} s clips x {result['copies']} per run, one frame every "
             f"{result['interval']:g} s; median of {result['rounds']} rounds)", "",
             "| input | keyframes only | video s per wall s | sampled frames/s | vs still images/s | decode only: video s per wall s |",
             "|---|---|---|---|---|---|"]
    for name, c in result["clips"].items():
        lines.append(f"| {name} | {c['keyframes_only']} | {c['video_seconds_per_wall_second']:.2f} | {c['sampled_frames_per_s']:.2f} | "
                     f"{c['sampled_frame_rate_vs_still_rate']:.2f} | {c['decode_only_video_seconds_per_wall_second']:.2f} |")
    lines.append(f"| 1080p JPEG stills | | | {result['stills']['images_per_s']:.2f} images/s | 1.00 | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/video"))
    p.add_argument("--bundle", default=None, help="bundle to run (default: make bench's ViT-B/16, exported once)")
    p.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20 s)")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--interval", type=float, default=1.0, help="--frame-interval (default 1.0)")
    p.add_argument("--stills", type=int, default=20, help="1080p JPEG stills for the still rate (default 20)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--copies", type=int, default=4, help="clips per classify run (default 4: a card of clips)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--preset", default="veryfast", help="libx264 preset of the test clips (default veryfast)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from bioclip_edge.runtime.jobs.classifier import Classifier, ClassifyRequest

    size = tuple(int(v) for v in args.size.lower().split("x"))
    clips = {f"H.264, keyframe every {gop // args.fps if gop % args.fps == 0 else gop / args.fps:g} s (GOP {gop})":
             encode_clip(args.out / "clips" / f"clip-{args.size}-{args.fps}fps-{args.seconds:g}s-gop{gop}.mp4",
                         args.seconds, args.fps, size, gop, args.preset) for gop in (args.fps, 4 * args.fps)}
    stills = write_stills(args.out / "stills-1080p", args.stills)
    clf = Classifier(bundle_path(args), LABELS, ClassifyRequest(batch_size=args.batch, frame_interval=args.interval))
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", "size": args.size,
              "fps": args.fps, "seconds": args.seconds, "copies": args.copies, "interval": args.interval, "rounds": args.rounds,
              "variant": clf.embedder.variant.name, "provider": clf.embedder.provider, "decode_threads": clf.embedder.flow.decode_threads,
              **measure(clf, clips, stills, args.rounds, args.seconds, args.copies)}
    (args.out / "video.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "video.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Argument blocks shared by ``classify`` and ``embed``, and the one place that turns parsed
arguments into the request (``ImageRequest`` / ``ClassifyRequest``) passed down unchanged.

Standard library only at module level: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bioclip_edge.runtime.cli.inference_options import add_memory_arguments, add_session_arguments, session_options_from
from bioclip_edge.runtime.images.decode_mode import DECODE_MODES

if TYPE_CHECKING:
    from bioclip_edge.runtime.images.request import ImageRequest
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

DECODE_HELP = ("JPEG decoding: draft decodes at reduced scale (1/2, 1/4 or 1/8, kept at least twice the model's input "
               "size) before the resize, 3-6x less decoding on large frames, not bit-identical to open_clip's preprocessing; "
               "exact decodes full size; auto (default) drafts when the bundle's decode check (measured at export) passed, "
               "else exact. Other formats always decode exactly")
FAST_DECODE_NOTE = "note: --fast-decode is deprecated; use --decode draft (the same thing)"


def add_input_arguments(parser: argparse.ArgumentParser, inputs_help: str) -> None:
    """BUNDLE and INPUTS, the first two positionals of every image command."""
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder written by 'bioclip-edge export'")
    parser.add_argument("inputs", metavar="INPUTS", nargs="+", help=inputs_help)


def add_image_arguments(parser: argparse.ArgumentParser, decode_note: str = "") -> None:
    """Batching, decoding and inference (the session block): the fields of ``ImageRequest``."""
    add_memory_arguments(parser)
    parser.add_argument("--decode-threads", dest="decode_threads", type=int, default=None,
                        help="image-decoding threads working alongside the model (default: min(4, CPUs); 0: decode inline)")
    # The short spelling, unlisted: the bare word does not say which threads (--model-threads are the model's).
    parser.add_argument("--threads", dest="decode_threads", type=int, default=None, help=argparse.SUPPRESS)
    add_session_arguments(parser)
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="refuse images with more pixels (decompression-bomb guard; default 100 MP)")
    parser.add_argument("--decode", choices=DECODE_MODES, default="auto", help=DECODE_HELP + decode_note)
    parser.add_argument("--fast-decode", action="store_true", help="deprecated: --decode draft")
    parser.add_argument("--frame-interval", type=float, default=1.0, metavar="SECONDS",
                        help="videos: classify one frame every SECONDS (default 1.0; keyframes only where they fall that often)")
    parser.add_argument("--max-frames", type=int, default=100, metavar="N", help="videos: at most N sampled frames each (default 100)")


def add_output_arguments(parser: argparse.ArgumentParser, resume_help: str, overwrite_help: str) -> None:
    """How an existing output is treated, paths in it, and the progress bar: the fields of the jobs."""
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    parser.add_argument("--relative-paths", action="store_true", help="write paths relative to the input folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def image_request_fields(args: argparse.Namespace) -> dict[str, Any]:
    """``ImageRequest``'s fields, from the arguments ``add_image_arguments`` added (``--fast-decode``, the
    deprecated spelling of ``--decode draft``, says so once on stderr)."""
    if args.fast_decode:
        print(FAST_DECODE_NOTE, file=sys.stderr)
    return {"precision": args.precision, "batch_size": args.batch_size, "max_memory": args.max_memory, "decode_threads": args.decode_threads, "max_pixels": args.max_pixels,
            "decode": args.decode, "fast_decode": bool(args.fast_decode), "session": session_options_from(args),
            "frame_interval": args.frame_interval, "max_frames": args.max_frames}


def image_request(args: argparse.Namespace) -> ImageRequest:
    from bioclip_edge.runtime.images.request import ImageRequest

    return ImageRequest(**image_request_fields(args))


def classify_request(args: argparse.Namespace, label_cache_dir: str | None) -> ClassifyRequest:
    from bioclip_edge.runtime.jobs.classifier import ClassifyRequest

    return ClassifyRequest(**image_request_fields(args), top_k=args.top_k, recipe=args.recipe, label_cache_dir=label_cache_dir)


ENGINE_HELP = ("where images are classified: local (this process) or ray (a Ray cluster: $RAY_ADDRESS, else a local Ray "
               "on this machine; pip install \"bioclip-edge[ray]\"). With ray, bundles, label files and images must be on "
               "paths every node sees")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine`` and the Ray pool: the fields of ``runtime.cluster.options.RayOptions``."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local", help=ENGINE_HELP + " (default local)")
    parser.add_argument("--ray-actors", type=int, default=None, metavar="N",
                        help="with --engine ray: model copies (default: as many as the cluster's CPUs hold)")
    parser.add_argument("--ray-cpus-per-actor", type=float, default=None, metavar="N",
                        help="with --engine ray: CPUs each model copy uses (default: a whole node's; one actor per node)")


def engine(args: argparse.Namespace) -> Any:
    """The engine ``--engine`` names, started (a cluster joined and checked) before any image is read."""
    if args.engine != "ray":
        if args.ray_actors is not None or args.ray_cpus_per_actor is not None:
            from bioclip_edge.errors import OptionError

            raise OptionError("--ray-actors and --ray-cpus-per-actor need --engine ray")
        from bioclip_edge.runtime.jobs.engines import LocalEngine

        return LocalEngine()
    from bioclip_edge.runtime.cluster.engine import RayEngine
    from bioclip_edge.runtime.cluster.options import RayOptions

    ray_engine = RayEngine(RayOptions(actors=args.ray_actors, cpus_per_actor=args.ray_cpus_per_actor))
    where = ray_engine.describe()  # joins or starts Ray: a ClusterError (exit 2) here means no work was done
    print(f"engine: ray, {where['cluster']}; {where['actors']} actor(s) x {where['cpus_per_actor']:g} CPUs", file=sys.stderr)
    return ray_engine


def progress(args: argparse.Namespace) -> bool | None:
    """--no-progress: never; otherwise a bar when stderr is a terminal (None)."""
    return False if args.no_progress else None

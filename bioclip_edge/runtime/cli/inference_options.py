"""The inference options every image command takes, and the ``SessionOptions`` they make.

Imports only ``runtime.inference.plan`` (plain data), so that building the command line, and so
``bioclip-edge --help``, does not load the bundle, manifest, hashing and selection modules a run
needs (their imports cost ~40 ms of a 0.1 s ``--help``). Export's and profiling's command lines
may use it too.
"""

from __future__ import annotations

import argparse

from bioclip_edge.runtime.inference.plan import BACKEND_CHOICES, PRECISION_CHOICES, SessionOptions

MODEL_THREADS_HELP = "inference intra-op threads (default: all cores)"


def add_model_threads_argument(parser: argparse.ArgumentParser, help_text: str = MODEL_THREADS_HELP, **kwargs) -> None:
    """``--model-threads`` for commands without the full session block (``labels build``, ``profile``).

    ``--threads`` is accepted there too but not listed: the bare word does not say which threads
    (``classify --threads`` counts decode threads), and scripts that pass it keep working.
    """
    parser.add_argument("--model-threads", dest="model_threads", default=None, help=help_text, **kwargs)
    parser.add_argument("--threads", dest="model_threads", default=None, help=argparse.SUPPRESS, **kwargs)


def add_session_arguments(parser: argparse.ArgumentParser, default_providers: str = "cpu") -> None:
    """The inference options every image command takes (--precision, --model-threads, --backend, --providers)."""
    parser.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                        help="vision variant (default auto: the fastest variant whose parity passed at export, for this "
                             "machine and backend, said in the output); fp32 for exact open_clip embeddings")
    parser.add_argument("--model-threads", type=int, default=None, help=MODEL_THREADS_HELP)
    parser.add_argument("--backend", default="auto", choices=BACKEND_CHOICES,
                        help="inference backend (default auto: OpenVINO bf16 where the CPU has AMX/AVX-512 BF16 and "
                             "OpenVINO is installed, else onnxruntime); openvino-f32 is OpenVINO in exact fp32")
    parser.add_argument("--providers", default=default_providers,
                        help=f"onnxruntime providers in order, e.g. cuda,cpu (default {default_providers})")


def session_options_from(args: argparse.Namespace) -> SessionOptions:
    """SessionOptions from the arguments ``add_session_arguments`` added."""
    providers = tuple(p.strip() for p in args.providers.split(",") if p.strip())
    return SessionOptions(providers=providers, model_threads=args.model_threads, backend=args.backend)


MAX_MEMORY_HELP = ("peak resident memory to plan for, e.g. 512M, 1G, 2G (default auto: 1G, or less where less is available); "
                   "the batch size and how many images are decoded ahead are chosen within it, by this backend's measured "
                   "speed; the closing summary prints the peak reached")
BATCH_SIZE_HELP = "images per model call (default: chosen within --max-memory: the smallest batch as fast as any that fits)"


def add_memory_arguments(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` and ``--max-memory``: the fields of ``ImageRequest`` the memory budget decides."""
    parser.add_argument("--batch-size", type=int, default=None, help=BATCH_SIZE_HELP)
    parser.add_argument("--max-memory", default="auto", metavar="SIZE", help=MAX_MEMORY_HELP)

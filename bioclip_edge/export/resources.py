"""What an export costs in memory, and giving freed memory back before the next step.

Why: a ViT-H/14 export with every variant must fit in a 24 GB machine. The export measures its
own peak resident set (``getrusage``: the kernel's high-water mark, so no sampling thread can miss
a peak) and records it in the manifest (``ExportResources``) against the fp32 weights' size, the
size of an fp32 checkpoint; the summary, ``info`` and ``make bench`` report it.
"""

from __future__ import annotations

import ctypes
import gc
import logging

from bioclip_edge.runtime.inference.memory import current_rss as current_rss_bytes  # noqa: F401 (torch_process's name)
from bioclip_edge.runtime.inference.memory import peak_rss

log = logging.getLogger(__name__)


def peak_rss_bytes() -> int:
    """This process's peak resident set so far (the runtime's measure, 0 where unknown). The
    PyTorch stage's child reports its own peak, which the export adds to what this process held
    meanwhile (``torch_process.StageResult``)."""
    return peak_rss() or 0


def give_back_memory() -> None:
    """Collect garbage, then ask glibc to return freed heap pages to the system.

    PyTorch's and onnx's large buffers are separate mappings and go back when freed, but many
    medium ones (protobuf copies of initializers) sit in malloc's arenas and keep the resident set
    high until ``malloc_trim``. Harmless where there is no glibc.
    """
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    now = current_rss_bytes()
    if now is not None:
        log.info("resident memory after freeing: %.2f GB", now / 1e9)

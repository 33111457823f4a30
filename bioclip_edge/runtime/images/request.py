"""What the user asked of an image job, as one frozen value.

The command line builds it once from its arguments (``runtime.cli.options``), the Python API from
keyword arguments; after that it is passed down unchanged: the embedder, the classifier and the
jobs read the fields they need from it. What *follows* from it is derived once, by its owner:
the inference plan by ``runtime.inference`` (from ``precision`` and ``session``), the transform and
the decode options by ``ImageEmbedder`` (it knows the model's input size and the bundle's decode
check, which ``decode`` needs), the flow (batches, decode threads, within the memory budget) by ``runtime.images.pipeline.Flow``. So no
layer re-wraps options, and a new option is one field here plus the one place that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.decode_mode import DECODE_MODES
from bioclip_edge.runtime.inference.memory import is_auto, parse_size
from bioclip_edge.runtime.inference.session import SessionOptions


@dataclass(frozen=True)
class ImageRequest:
    """Inference and decoding, as asked; ``check`` refuses impossible values before any work."""

    precision: str = "auto"  # a variant precision or auto: see runtime.inference.selection
    batch_size: int | None = None  # images (or crops) per model call; None: chosen within max_memory
    max_memory: str | int | None = None  # peak RSS budget ("1G", "512M", bytes); None or "auto": min(1 GB, available)
    decode_threads: int | None = None  # None: Flow's default; 0: decode inline
    max_pixels: int | None = None  # decompression-bomb guard; None: decode.DEFAULT_MAX_PIXELS
    decode: str = "auto"  # auto | exact | draft: JPEG draft decoding, see runtime.images.decode_mode
    fast_decode: bool = False  # --fast-decode, another spelling of decode="draft" that scripts still pass
    session: SessionOptions = SessionOptions(backend="auto")  # as the CLI: see runtime.inference.selection
    frame_interval: float = 1.0  # videos: one frame every this many seconds (runtime.images.video)
    max_frames: int = 100  # videos: at most this many sampled frames each (bounds memory per video)

    def __post_init__(self) -> None:
        if self.fast_decode and self.decode == "auto":
            object.__setattr__(self, "decode", "draft")
        self.check()

    def check(self) -> None:
        """Raise ``OptionError`` (exit 2) naming the command-line option, as users of both APIs read it."""
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if not is_auto(self.max_memory):
            parse_size(self.max_memory)  # a malformed size stops here (MemoryBudgetError, exit 2)
        if self.decode_threads is not None and self.decode_threads < 0:
            raise OptionError(f"--decode-threads must be 0 or more (got {self.decode_threads})")
        if self.decode not in DECODE_MODES:
            raise OptionError(f"--decode {self.decode!r}: choose one of {', '.join(DECODE_MODES)}")
        if self.fast_decode and self.decode != "draft":
            raise OptionError(f"--fast-decode is --decode draft; it cannot go with --decode {self.decode}")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise OptionError(f"--max-pixels must be positive (got {self.max_pixels})")
        if not self.frame_interval > 0:
            raise OptionError(f"--frame-interval must be a positive number of seconds (got {self.frame_interval})")
        if self.max_frames < 1:
            raise OptionError(f"--max-frames must be at least 1 (got {self.max_frames})")

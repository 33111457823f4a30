"""What an export measured about a bundle, as manifest records: parity, the decode check, cost.

Kept apart from ``manifest`` (which re-exports every name here) so the manifest module holds the
contract's shape and parsing, and this one the figures and how they read to people.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Top1Check:
    """Zero-shot top-1 agreement with PyTorch fp32, counted only where a flip means something.

    An image is judged when its fp32 top-1 leads every other label by more than twice the
    variant's score error (any flip there is a real error), or when the variant's top-1 trails
    fp32's by that much (a clear miss). Near-ties are left out: with random or weak weights many
    labels score within noise of each other, and a flip between them says nothing about the
    variant. The rule and why are in ``bioclip_edge.export.parity``.
    """

    agree: int  # k: judged images whose top-1 is fp32's
    clear: int  # n: judged images (a clear margin either way)
    unclear: int  # m: images with no clear margin, not judged
    images: int  # N = n + m
    score_error: float  # E: the variant's typical score error (cosine units)
    min_clear: int  # fewer judged images than this: "not measurable", never a failure
    bound: float | None = None  # required k / n; None: recorded, not held

    @property
    def measurable(self) -> bool:
        return self.clear >= self.min_clear

    @property
    def agreement(self) -> float | None:
        return self.agree / self.clear if self.clear else None

    @property
    def passed(self) -> bool:
        return self.bound is None or not self.measurable or self.agree / self.clear >= self.bound

    def text(self) -> str:
        if not self.measurable:
            return (f"top-1 not measurable: {self.clear} of {self.images} images have a clear margin "
                    f"(> 2 x score error {self.score_error:.2g}; {self.min_clear} needed)")
        return f"top-1 agreement {self.agree}/{self.clear} on images with a clear margin " \
               f"({self.unclear} of {self.images} had none)"

    def cell(self) -> str:
        """The same, short enough for a table column."""
        if not self.measurable:
            return f"not measurable ({self.clear} of {self.images} clear)"
        return f"{self.agree}/{self.clear} ({self.unclear} of {self.images} unclear)"


@dataclass(frozen=True)
class Parity:
    """Measured agreement of one variant with PyTorch open_clip on the same inputs.

    Manifests written before ``top1`` existed carry only ``top1_agreement`` (over every image,
    near-ties included); they read as before, with ``top1`` None.
    """

    cosine_min: float
    cosine_mean: float
    n_inputs: int
    bound: float  # the bound the figure is held to (cosine_min for fp32/fp16, cosine_mean for int8)
    metric: str  # which figure is held to the bound
    passed: bool
    top1_agreement: float | None = None  # zero-shot top-1 agreement with torch fp32 over every image
    n_labels: int | None = None
    max_abs_diff: float | None = None
    top1: Top1Check | None = None  # the same on images with a clear margin: what is held

    def misses(self) -> list[str]:
        """What fell short of the bound, in words (empty when the variant passed)."""
        if self.passed:
            return []
        figure = self.cosine_min if self.metric.startswith("cosine_min") else self.cosine_mean
        out = [] if figure >= self.bound else [f"{self.metric.split()[0]} {figure:.6f} < {self.bound}"]  # NaN too
        if self.top1 is not None and not self.top1.passed:
            out.append(f"top-1 {self.top1.agree}/{self.top1.clear} on clear margins < {self.top1.bound:.0%}")
        return out or [f"{self.metric} >= {self.bound}"]  # an older manifest's wording


@dataclass(frozen=True)
class DecodeCheck:
    """Whether draft JPEG decoding (``--decode draft``) keeps this model's answers: measured at export.

    Optional (bundles exported before it have none; older runtimes ignore it, so the schema version
    is unchanged). The exporter writes its sample photos as JPEGs at camera-trap sizes (``sizes``),
    decodes each exactly and drafted (DCT scaling, kept ``margin`` x the model's input side) with
    the runtime's own decode and transform code, embeds both with the fp32 vision graph on
    onnxruntime and compares: ``cosine_*`` between the two embeddings of each frame, ``top1``
    the clear-margin zero-shot top-1 (``bioclip_edge.export.parity.clear_top1``, exact decoding as
    the reference) against the parity labels. ``passed``: cosine_min >= ``min_cosine`` and every
    judged top-1 agrees; ``--decode auto`` drafts only then. Rule and bound: ``export.decode_check``.
    """

    version: int  # of this record's rule; 1
    method: str  # what "draft" means, e.g. "jpeg-dct-scaling"
    margin: int  # the drafted picture keeps >= margin x the model's input side
    sizes: tuple[tuple[int, int], ...]  # frame sizes (width, height) written and decoded
    images: int  # frames compared (photos x sizes)
    graph: str  # what embedded them, e.g. "vision.fp32 on onnxruntime CPU"
    cosine_min: float
    cosine_mean: float
    top1: Top1Check
    min_cosine: float  # the bound cosine_min is held to
    passed: bool
    seconds: float | None = None  # how long the check took at export

    def text(self) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in self.sizes)
        verdict = "passed: --decode auto drafts" if self.passed else "FAILED: --decode auto decodes exactly"
        return (f"draft vs exact JPEG decoding on {self.images} frames at {sizes} ({self.graph}): cosine min "
                f"{self.cosine_min:.6f}, mean {self.cosine_mean:.6f} (bound >= {self.min_cosine}); {self.top1.text()}; {verdict}")


@dataclass(frozen=True)
class ExportResources:
    """What an export cost: wall time and peak resident memory, against the fp32 weights' size (4
    bytes per parameter: the size of an fp32 checkpoint). The peak is the larger of the exporting
    process's own and, for the PyTorch stage run in a child, the child's peak plus what the
    exporter held while it waited (both at once, at worst)."""

    seconds: float
    peak_rss_bytes: int
    fp32_weights_bytes: int

    @property
    def ratio(self) -> float:
        return self.peak_rss_bytes / max(1, self.fp32_weights_bytes)

    def text(self) -> str:
        return (f"{self.seconds:.0f} s, peak resident memory {self.peak_rss_bytes / 1e9:.2f} GB = {self.ratio:.1f}x "
                f"the fp32 weights ({self.fp32_weights_bytes / 1e9:.2f} GB)")

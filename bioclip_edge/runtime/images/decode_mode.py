"""``--decode auto|exact|draft``: whether JPEGs decode at full size or drafted, and why.

*Draft* decoding lets libjpeg scale a JPEG by 1/2, 1/4 or 1/8 inside the DCT
(``DecodeOptions.draft_size``), keeping the picture at least ``FAST_DECODE_MARGIN`` times the
model's input side, before the exact open_clip resize: 3-6x less decoding on 12 MP frames, not
bit-identical to open_clip's preprocessing. Whether that changes a model's answers depends on
the model, so the exporter measures it on the bundle (``Manifest.decode_check``) and ``auto``
follows that measurement:

* ``exact``: always full-size decoding (open_clip's preprocessing to float rounding);
* ``draft``: drafted JPEGs whatever the bundle says (``--fast-decode`` is another spelling);
* ``auto`` (default): draft when the bundle's decode check passed; exact when it failed, and for
  bundles without a decode check (nothing proves draft is safe for them).

Other formats always decode exactly: Pillow's ``reduce`` before the resize was measured on
4000x3000 frames and left out (docs: explanations/decoding.md). MegaDetector crops follow ``crop_draft_size``.
Standard library only: the command line imports the mode names without the runtime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

DECODE_MODES = ("auto", "exact", "draft")


@dataclass(frozen=True)
class DecodeChoice:
    """What a run decodes with (``exact`` or ``draft``) and why, for the console and the outputs."""

    mode: str
    reason: str

    @property
    def draft(self) -> bool:
        return self.mode == "draft"


def choose_decode(requested: str, check: Any | None) -> DecodeChoice:
    """``requested`` (a ``DECODE_MODES`` value) against the bundle's ``DecodeCheck`` (None: not recorded)."""
    if requested == "exact":
        return DecodeChoice("exact", "--decode exact")
    verdict = _verdict(check)
    if requested == "draft":
        return DecodeChoice("draft", "--decode draft" + (f" (note: {verdict})" if check is not None and not check.passed else ""))
    if check is not None and check.passed:
        return DecodeChoice("draft", f"--decode auto: {verdict}")
    return DecodeChoice("exact", f"--decode auto: {verdict}")


def _verdict(check: Any | None) -> str:
    if check is None:
        return "the bundle records no decode check (exported before it existed), so JPEGs decode exactly"
    figures = f"min cosine {check.cosine_min:.6f}, {check.min_cosine} needed; clear top-1 {check.top1.agree}/{check.top1.clear}"
    if check.passed:
        return f"the bundle's decode check passed ({figures})"
    return f"the bundle's decode check failed ({figures}), so JPEGs decode exactly"


def crop_draft_size(size: tuple[int, int] | None, boxes: Sequence[tuple[int, int, int, int]], side: int) -> tuple[int, int] | None:
    """The ``draft_size`` to decode a frame with when ``boxes`` (left, top, right, bottom in the
    full upright picture of ``size`` (width, height)) are cut from it; None: decode exactly.

    A crop is resized to the model's input just as a whole picture is, so it keeps the same
    margin: its short side must stay >= ``side`` (``ImageTransform.draft_size``: twice the model's
    input) after the draft's reduction. Drafts reduce by 2, 4 or 8, so a frame whose smallest
    crop is under ``2 * side`` decodes exactly. The size is square and taken from the frame's
    short side: libjpeg keeps both sides >= it, so the reduction is at most
    ``smallest crop / side`` whatever the EXIF orientation.
    """
    if size is None or not boxes:
        return None
    smallest = min(min(right - left, bottom - top) for left, top, right, bottom in boxes)
    if smallest < 2 * side:
        return None
    square = math.ceil(min(size) * side / smallest)
    return (square, square)

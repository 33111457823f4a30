"""open_clip's eval image transform, reproduced with Pillow and numpy only.

open_clip (``open_clip.transform.image_transform``) runs torchvision transforms on PIL images:
``Resize`` on a PIL image is ``PIL.Image.resize`` (Pillow always antialiases bilinear/bicubic, so
torchvision's ``antialias`` flag changes nothing there), ``CenterCrop`` crops at
``int(round((size - crop) / 2))`` after zero-padding images smaller than the crop, ``ToTensor``
divides uint8 by 255 in float32 and ``Normalize`` subtracts the mean and divides by the std. We
do the same operations in the same order on the same Pillow, so the output matches open_clip to
float rounding (tests/runtime/images/test_preprocess.py holds it to 1e-5 per pixel on real photos).

Three resize modes, as in open_clip:

* ``shortest``: scale the shortest side to the target (torchvision's ``int(size * long / short)``
  for square targets; timm's ``ResizeKeepRatio`` with Python ``round`` for non-square ones, which
  open_clip always runs bicubic) then centre-crop.
* ``squash``: resize straight to (H, W), ignoring aspect ratio (pybioclip's TreeOfLife models).
* ``longest``: scale the longest side to fit, then centre-pad with ``fill_color``.

Images must already be RGB (``runtime.images.decode`` converts every mode correctly first; open_clip
converts after resizing, which only differs for non-RGB inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from bioclip_edge.runtime.inference.manifest import Preprocess

_PIL_FILTERS = {"bicubic": 3, "bilinear": 2, "nearest": 0}  # PIL.Image.Resampling values


@dataclass(frozen=True)
class ImageTransform:
    """Callable: RGB ``PIL.Image`` -> float32 array [3, H, W], normalised like open_clip."""

    size: tuple[int, int]  # (height, width)
    resize_mode: str
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fill_color: int = 0

    @classmethod
    def from_manifest(cls, pre: "Preprocess") -> "ImageTransform":
        return cls(
            size=(int(pre.image_size[0]), int(pre.image_size[1])),
            resize_mode=pre.resize_mode,
            interpolation=pre.interpolation,
            mean=tuple(float(m) for m in pre.mean),  # type: ignore[arg-type]
            std=tuple(float(s) for s in pre.std),  # type: ignore[arg-type]
            fill_color=int(pre.fill_color),
        )

    @property
    def draft_size(self) -> tuple[int, int]:
        """What to pass as ``DecodeOptions.draft_size`` for draft decoding (``--decode``): a JPEG may
        decode at a reduced scale as long as both sides stay ``FAST_DECODE_MARGIN`` times the model's input
        side, so the final (antialiased) resize still shrinks by that much. Square, so it holds
        whatever the EXIF orientation; for 224 px models and 1920x1080 frames it picks 1/2 scale."""
        side = FAST_DECODE_MARGIN * max(self.size)
        return (side, side)

    def __call__(self, image: "Image.Image", approximate: bool = False) -> np.ndarray:
        """``approximate``: for pictures that are already inexact (drafted JPEGs, ``--decode``),
        resize only the centre crop (``crop_resize``) instead of the whole picture."""
        if image.mode != "RGB":
            raise ValueError(f"ImageTransform expects an RGB image, got mode {image.mode!r}; use runtime.images.decode.to_rgb first")
        image = self.crop_resize(image) if approximate else self.geometry(image)
        return self.normalise(image)

    def crop_resize(self, image: "Image.Image") -> "Image.Image":
        """``geometry`` for the shortest-side mode, resizing only the source region that lands in
        the centre crop (Pillow's ``box``): the same filter and scale, 45% less work on 16:9
        frames. Not bit-exact: Pillow takes the box in float32, so a few pixels in 10^4 differ by
        one grey level (measured on 1080p photos). Other modes, and crops that would need
        padding, take the exact path."""
        height, width = self.size
        if self.resize_mode != "shortest" or height != width or min(image.width, image.height) < height:
            return self.geometry(image)
        new_h, new_w = shortest_side_size(image.height, image.width, height)
        top, left = int(round((new_h - height) / 2.0)), int(round((new_w - width) / 2.0))
        sx, sy = image.width / new_w, image.height / new_h
        box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
        return image.resize((width, height), _PIL_FILTERS[self.interpolation], box=box)

    def geometry(self, image: "Image.Image") -> "Image.Image":
        """Resize and crop/pad to exactly ``size`` (what open_clip does before ToTensor)."""
        height, width = self.size
        if self.resize_mode == "squash":
            return _resize(image, (height, width), self.interpolation)
        if self.resize_mode == "longest":
            image = _resize(image, _keep_ratio_size(image, self.size, longest=True), self.interpolation)
            return center_crop_or_pad(image, self.size, self.fill_color)
        if self.resize_mode != "shortest":
            raise ValueError(f"unknown resize_mode {self.resize_mode!r}")
        if height == width:
            image = _resize(image, shortest_side_size(image.height, image.width, height), self.interpolation)
        else:  # open_clip's ResizeKeepRatio(image_size) without an interpolation argument: bicubic
            image = _resize(image, _keep_ratio_size(image, self.size, longest=False), "bicubic")
        return center_crop_or_pad(image, self.size, 0)

    def normalise(self, image: "Image.Image") -> np.ndarray:
        """uint8 HWC -> float32 CHW, /255, (x - mean) / std, all in float32 like torch.

        A uint8 channel holds only 256 values, so the float32 arithmetic runs once per value
        (``_lookup``, the very same operations, so bit-identical) and each channel is a table
        look-up written straight into CHW order: no float64, no HWC float temporaries."""
        array = np.asarray(image, dtype=np.uint8)
        table = self._lookup()
        out = np.empty((3, array.shape[0], array.shape[1]), dtype=np.float32)
        for c in range(3):
            np.take(table[c], array[:, :, c], out=out[c])
        return out

    def _lookup(self) -> np.ndarray:
        """[3, 256] float32: ((v / 255) - mean[c]) / std[c] for every uint8 value v, in float32."""
        cached = _TABLES.get((self.mean, self.std))
        if cached is None:
            values = np.arange(256, dtype=np.float32) / np.float32(255.0)
            mean = np.asarray(self.mean, dtype=np.float32)[:, None]
            std = np.asarray(self.std, dtype=np.float32)[:, None]
            cached = _TABLES[(self.mean, self.std)] = (values[None, :] - mean) / std
        return cached


_TABLES: dict[tuple, np.ndarray] = {}  # (mean, std) -> [3, 256] table; a few bytes each, shared by threads

# Draft decoding keeps the decoded JPEG at least this many times the model's input side (see
# ``ImageTransform.draft_size``); measured on 1920x1080 photos (tests/runtime/images/test_decode.py)
# and held per bundle by the export's decode check (export/decode_check.py).
FAST_DECODE_MARGIN = 2


def shortest_side_size(height: int, width: int, target: int) -> tuple[int, int]:
    """torchvision's ``_compute_resized_output_size`` for an int size: (new_h, new_w)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = target, int(target * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_h, new_w


def _keep_ratio_size(image: "Image.Image", target: tuple[int, int], longest: bool) -> tuple[int, int]:
    """timm/open_clip ``ResizeKeepRatio.get_params`` (no random scale): (new_h, new_w)."""
    h, w = image.height, image.width
    ratio_h, ratio_w = h / target[0], w / target[1]
    ratio = max(ratio_h, ratio_w) if longest else min(ratio_h, ratio_w)
    return round(h / ratio), round(w / ratio)


def _resize(image: "Image.Image", size_hw: tuple[int, int], interpolation: str) -> "Image.Image":
    """torchvision ``F.resize`` on PIL: unchanged when the size already matches."""
    if (image.height, image.width) == tuple(size_hw):
        return image
    return image.resize((size_hw[1], size_hw[0]), _PIL_FILTERS[interpolation])


def center_crop_or_pad(image: "Image.Image", size_hw: tuple[int, int], fill: int) -> "Image.Image":
    """torchvision ``center_crop`` / open_clip ``center_crop_or_pad`` on PIL images."""
    from PIL import ImageOps

    crop_h, crop_w = size_hw
    if crop_w > image.width or crop_h > image.height:
        left = (crop_w - image.width) // 2 if crop_w > image.width else 0
        top = (crop_h - image.height) // 2 if crop_h > image.height else 0
        right = (crop_w - image.width + 1) // 2 if crop_w > image.width else 0
        bottom = (crop_h - image.height + 1) // 2 if crop_h > image.height else 0
        image = ImageOps.expand(image, border=(left, top, right, bottom), fill=(fill,) * len(image.getbands()))
        if (image.height, image.width) == (crop_h, crop_w):
            return image
    top = int(round((image.height - crop_h) / 2.0))
    left = int(round((image.width - crop_w) / 2.0))
    return image.crop((left, top, left + crop_w, top + crop_h))

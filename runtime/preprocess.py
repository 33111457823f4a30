"""open_clip's eval image transform, reproduced with Pillow and numpy only.

open_clip (``open_clip.transform.image_transform``) runs torchvision transforms on PIL images:
``Resize`` on a PIL image is ``PIL.Image.resize`` (Pillow always antialiases bilinear/bicubic, so
torchvision's ``antialias`` flag changes nothing there), ``CenterCrop`` crops at
``int(round((size - crop) / 2))`` after zero-padding images smaller than the crop, ``ToTensor``
divides uint8 by 255 in float32 and ``Normalize`` subtracts the mean and divides by the std. We
do the same operations in the same order on the same Pillow, so the output matches open_clip to
float rounding (tests/test_preprocess.py holds it to 1e-5 per pixel on real photos).

Three resize modes, as in open_clip:

* ``shortest``: scale the shortest side to the target (torchvision's ``int(size * long / short)``
  for square targets; timm's ``ResizeKeepRatio`` with Python ``round`` for non-square ones, which
  open_clip always runs bicubic) then centre-crop.
* ``squash``: resize straight to (H, W), ignoring aspect ratio (pybioclip's TreeOfLife models).
* ``longest``: scale the longest side to fit, then centre-pad with ``fill_color``.

Images must already be RGB (``runtime.images`` converts every mode correctly first; open_clip
converts after resizing, which only differs for non-RGB inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

    from .manifest import Preprocess

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
        """Smallest (width, height) a JPEG may be draft-decoded to without touching the result
        much; a hook for the later speed work (``images.load_image(draft_size=...)``)."""
        return (self.size[1], self.size[0])

    def __call__(self, image: "Image.Image") -> np.ndarray:
        if image.mode != "RGB":
            raise ValueError(f"ImageTransform expects an RGB image, got mode {image.mode!r}; use runtime.images.to_rgb first")
        image = self.geometry(image)
        return self.normalise(image)

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
        """uint8 HWC -> float32 CHW, /255, (x - mean) / std, all in float32 like torch."""
        array = np.asarray(image, dtype=np.uint8)
        x = array.astype(np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))


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

"""The decode check: does draft JPEG decoding keep this model's answers? Measured at export.

Draft decoding (``runtime.images.decode_mode``) lets libjpeg reduce a JPEG by 1/2, 1/4 or 1/8
in the DCT, keeping at least twice the model's input side, before the exact resize: 3-6x less
decoding on 12 MP frames, but pixels that differ slightly from open_clip's. What matters to a user
is whether embeddings and predictions move, and that depends on the model, so every export
measures it and ``--decode auto`` drafts only on bundles that passed.

How (``measure_decode_check``): the sample photos (``export.reference``) are resized to camera-trap
frame sizes (``SIZES``: 1920x1080 video-trap stills and 4000x3000, the 12 MP most trail cameras
write) plus one mosaic of native-resolution photos per size (upscaled photos are smooth; the
mosaic keeps real fine detail, where draft scaling and bicubic antialiasing differ most), and
saved as JPEGs at quality 90 (what trail cameras use). Each frame goes through the *runtime's* own
decode and transform (``runtime.images.pipeline.whole_image_preparer``) exactly and drafted,
and both through the fp32 vision graph on onnxruntime: what is measured is what runs, and fp32
keeps quantisation noise out of it.

Bound (``passed``):

* min cosine between a frame's exact and draft embeddings >= ``MIN_COSINE`` (0.995). Draft decoding
  sits before every variant, so its error adds to theirs; 0.995 is half of the int8 variants'
  allowance (mean cosine >= 0.99 to PyTorch, ``export.parity``) and held on the *worst* frame, so
  a bundle that drafts by default stays within the tolerance its int8 graph is already trusted
  with. Measured: 0.9999+ on random-weight ViT-B/16 and the tiny test ViT (docs: explanations/decoding.md).
* zero-shot top-1 on clear margins (``export.parity.clear_top1``, the trust rule: exact decoding is
  the reference, the bundle's 110 parity labels, PyTorch's own text embeddings) must agree on
  *every* judged frame (bound 1.0): a frame whose answer is clear must not change because of a
  speed-up. Near-ties are not judged; under 10 judged frames it is "not measurable" and the
  cosine bound decides alone, as everywhere in ``export.parity``.

PNG and TIFF stay exact at run time, so they are not checked (docs: explanations/decoding.md has the numbers).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from bioclip_edge.runtime.inference.manifest import DecodeCheck, Manifest
from bioclip_edge.runtime.inference.session import SessionOptions, make_session
from bioclip_edge.runtime.images.decode import DecodeOptions
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.images.pipeline import whole_image_preparer
from bioclip_edge.runtime.images.transform import FAST_DECODE_MARGIN, ImageTransform
from bioclip_edge.export.parity import Reference, clear_top1
from bioclip_edge.export.reference import sample_photo

VERSION = 1
MIN_COSINE = 0.995
TOP1_BOUND = 1.0  # every judged frame keeps its top-1
SIZES = ((1920, 1080), (4000, 3000))  # (width, height)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "cat", "grass")  # colour scenes, animals, a fine texture
MOSAIC = ("astronaut", "chelsea", "coffee", "rocket", "cat", "hubble_deep_field", "immunohistochemistry", "retina")
QUALITY = 90


def measure_decode_check(folder: Path, manifest: Manifest, ref: Reference) -> DecodeCheck:
    """Exact vs draft decoding of camera-trap-size JPEGs through ``folder``'s fp32 vision graph."""
    started = time.perf_counter()
    variant = manifest.variant("vision", "fp32")
    session = make_session(Path(folder) / variant.file, SessionOptions(backend="onnxruntime", optimization="all"))
    transform = ImageTransform.from_manifest(manifest.preprocess)
    with tempfile.TemporaryDirectory(prefix="decode-check-") as tmp:
        frames = write_frames(Path(tmp))
        exact = _embed(session, variant.input_name, frames, transform, DecodeOptions())
        draft = _embed(session, variant.input_name, frames, transform, DecodeOptions(draft_size=transform.draft_size))
    cosine = (exact * draft).sum(axis=1)
    top1 = clear_top1(exact @ ref.text_embeddings.T, draft @ ref.text_embeddings.T, TOP1_BOUND)
    return DecodeCheck(version=VERSION, method="jpeg-dct-scaling", margin=FAST_DECODE_MARGIN, sizes=SIZES,
                       images=len(frames), graph=f"{variant.name} on onnxruntime CPU",
                       cosine_min=float(cosine.min()), cosine_mean=float(cosine.mean()), top1=top1,
                       min_cosine=MIN_COSINE, passed=bool(cosine.min() >= MIN_COSINE and top1.passed),
                       seconds=round(time.perf_counter() - started, 2))


def write_frames(folder: Path, sizes: Sequence[tuple[int, int]] = SIZES) -> list[Path]:
    """The check's JPEGs: every ``PHOTOS`` photo resized to each size, and a native-detail mosaic."""
    paths = []
    for width, height in sizes:
        frames = [(name, sample_photo(name).resize((width, height), Image.Resampling.BICUBIC)) for name in PHOTOS]
        frames.append(("mosaic", mosaic((width, height))))
        for name, image in frames:
            path = folder / f"{name}-{width}x{height}.jpg"
            image.save(path, quality=QUALITY)
            paths.append(path)
    return paths


def mosaic(size: tuple[int, int]) -> Image.Image:
    """``size`` filled with the ``MOSAIC`` photos at their own resolution, row by row (no resampling)."""
    canvas = Image.new("RGB", size)
    x = y = row = 0
    index = 0
    while y < size[1]:
        tile = sample_photo(MOSAIC[index % len(MOSAIC)])
        canvas.paste(tile, (x, y))
        x, row, index = x + tile.width, max(row, tile.height), index + 1
        if x >= size[0]:
            x, y, row = 0, y + row, 0
    return canvas


def _embed(session, input_name: str, frames: list[Path], transform: ImageTransform, decode: DecodeOptions) -> np.ndarray:
    """Unit embeddings of ``frames`` decoded and transformed as ``classify`` does with ``decode``."""
    prepare = whole_image_preparer(transform, decode)
    pixels = np.concatenate([prepare(ImageItem(path, path.name)).pixels for path in frames])
    out = np.concatenate([session.run(None, {input_name: pixels[i:i + 8]})[0] for i in range(0, len(pixels), 8)])
    return out / np.linalg.norm(out, axis=1, keepdims=True)

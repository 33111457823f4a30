"""Preprocessing parity: runtime.images.transform against open_clip's own eval transform on real photos.

torch/open_clip are used here only as the reference; the runtime never imports them.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.runtime.images.decode import load_image
from bioclip_edge.runtime.inference.manifest import Preprocess
from bioclip_edge.runtime.images.transform import ImageTransform, center_crop_or_pad, shortest_side_size
from tests.helpers.image_factory import PHOTOS, camera_trap_jpeg, photo

open_clip_transform = pytest.importorskip("open_clip.transform")

TOL = 1e-5
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # OpenAI CLIP


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    images = {name: photo(name) for name in PHOTOS}  # square, landscape, portrait
    images["camera_trap_1920x1080"] = images["coffee"].resize((1920, 1080), Image.Resampling.BICUBIC)
    images["smaller_than_crop"] = images["chelsea"].resize((150, 61), Image.Resampling.BICUBIC)
    images["panorama"] = images["coffee"].resize((1999, 333), Image.Resampling.BICUBIC)
    images["odd_sizes"] = images["rocket"].resize((225, 227), Image.Resampling.BICUBIC)
    return images


def reference(size, mode, interpolation, fill=0, mean=MEAN, std=STD):
    cfg = open_clip_transform.PreprocessCfg(
        size=size, mode="RGB", mean=mean, std=std, interpolation=interpolation, resize_mode=mode, fill_color=fill
    )
    return open_clip_transform.image_transform_v2(cfg, is_train=False)


@pytest.mark.parametrize("mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
@pytest.mark.parametrize("size", [(224, 224), (336, 336), (256, 192)])
def test_matches_open_clip_transform(photos, mode, interpolation, size):
    ref = reference(size, mode, interpolation, fill=17)
    mine = ImageTransform(size=size, resize_mode=mode, interpolation=interpolation, mean=MEAN, std=STD, fill_color=17)
    for name, image in photos.items():
        expected = ref(image).numpy()
        got = mine(image)
        assert got.dtype == np.float32 and got.shape == (3, *size), name
        diff = float(np.abs(got - expected).max())
        assert diff <= TOL, f"{name} {mode} {interpolation} {size}: max diff {diff}"


def test_from_manifest_uses_every_field(photos):
    pre = Preprocess(image_size=(224, 224), resize_mode="squash", interpolation="bilinear", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    transform = ImageTransform.from_manifest(pre)
    expected = reference((224, 224), "squash", "bilinear", mean=(0.5,) * 3, std=(0.5,) * 3)(photos["chelsea"]).numpy()
    assert np.abs(transform(photos["chelsea"]) - expected).max() <= TOL
    # and it is not the default shortest/bicubic transform
    other = reference((224, 224), "shortest", "bicubic", mean=(0.5,) * 3, std=(0.5,) * 3)(photos["chelsea"]).numpy()
    assert np.abs(transform(photos["chelsea"]) - other).max() > 0.1


def test_open_clip_model_preprocess_matches(photos):
    """The preprocess returned by create_model_and_transforms for a real BioCLIP-style config."""
    import open_clip

    _, _, preprocess = open_clip.create_model_and_transforms("RN50", pretrained=None)  # small, quick to build
    size = preprocess.transforms[1].size
    size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    mine = ImageTransform(size=size, resize_mode="shortest", interpolation="bicubic", mean=MEAN, std=STD)
    for name in ("chelsea", "rocket", "camera_trap_1920x1080"):
        assert np.abs(mine(photos[name]) - preprocess(photos[name]).numpy()).max() <= TOL, name


def test_decoded_jpeg_file_matches_open_clip_on_pil_open(tmp_path):
    """Our decoder (EXIF transpose, RGB) hands the transform the same pixels as Image.open."""
    path = camera_trap_jpeg(tmp_path / "cam.jpg", orientation=1)
    ref = reference((224, 224), "shortest", "bicubic")
    expected = ref(Image.open(path)).numpy()
    got = ImageTransform((224, 224), "shortest", "bicubic", MEAN, STD)(load_image(path).image)
    assert np.abs(got - expected).max() <= TOL


def test_shortest_side_rounding_matches_torchvision():
    from torchvision.transforms.functional import _compute_resized_output_size

    for h, w in [(1080, 1920), (300, 451), (640, 427), (227, 225), (61, 150), (1, 1000)]:
        assert list(shortest_side_size(h, w, 224)) == _compute_resized_output_size((h, w), [224])


def test_center_crop_pads_small_images_with_fill():
    image = Image.new("RGB", (10, 6), (200, 100, 50))
    out = center_crop_or_pad(image, (9, 14), fill=7)
    array = np.asarray(out)
    assert out.size == (14, 9)
    assert tuple(array[0, 0]) == (7, 7, 7)  # padding
    assert tuple(array[4, 7]) == (200, 100, 50)  # original pixels in the middle


def test_normalise_table_is_bit_identical_to_the_float32_formula():
    """The look-up table in ImageTransform.normalise does torch's float32 arithmetic per value."""
    mine = ImageTransform(size=(224, 224), resize_mode="shortest", interpolation="bicubic", mean=MEAN, std=STD)
    array = np.random.default_rng(0).integers(0, 256, (61, 47, 3), dtype=np.uint8)
    array[0, :3] = [[0, 0, 0], [255, 255, 255], [128, 1, 254]]
    x = array.astype(np.float32) / np.float32(255.0)
    want = ((x - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)).transpose(2, 0, 1)
    got = mine.normalise(Image.fromarray(array))
    assert got.dtype == np.float32 and got.flags.c_contiguous and np.array_equal(got, want)


def test_rejects_non_rgb_input():
    transform = ImageTransform((224, 224), "shortest", "bicubic", MEAN, STD)
    with pytest.raises(ValueError, match="RGB"):
        transform(Image.new("L", (300, 300)))


def test_runtime_modules_import_without_torch():
    """Every runtime module imports in a fresh interpreter without pulling torch & co."""
    import pkgutil
    import subprocess
    import sys

    import bioclip_edge.runtime as runtime

    modules = sorted(m.name for m in pkgutil.walk_packages(runtime.__path__, prefix="bioclip_edge.runtime."))
    code = (
        "import importlib, sys\n"
        f"mods = {modules!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "bad = [n for n in ('torch', 'open_clip', 'torchvision') if n in sys.modules]\n"
        "print('BAD' if bad else 'OK', bad, len(mods))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK"), result.stdout
    assert "bioclip_edge.runtime.images.transform" in modules and "bioclip_edge.runtime.images.decode" in modules

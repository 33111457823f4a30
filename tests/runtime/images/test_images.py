"""Image discovery and decoding on real files: every format and mode, EXIF, and every kind of
bad file becoming a reason instead of a crash."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bioclip_edge.runtime.images.decode import DecodeOptions, ImageDecodeError, load_image, to_rgb
from bioclip_edge.runtime.images.discover import InputError, discover
from tests.helpers.image_factory import EXIF_DATETIME, EXIF_MAKE, EXIF_MODEL, bad_images, bomb_png, good_images, photo


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    return good_images(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    return bad_images(tmp_path_factory.mktemp("bad"))


def test_every_good_format_and_mode_decodes_to_rgb(good):
    for name, path in good.items():
        decoded = load_image(path)
        assert decoded.image.mode == "RGB", name
        array = np.asarray(decoded.image)
        assert array.ndim == 3 and array.shape[2] == 3, name
        assert 20 < array.mean() < 235, f"{name}: mean {array.mean()} looks blank"


def test_grayscale_and_16bit_are_scaled_not_clipped(good):
    ref = np.asarray(photo("coffee").convert("L"), dtype=np.float64)
    for name in ("gray.jpeg", "gray16.png", "gray16.tiff"):
        array = np.asarray(load_image(good[name]).image, dtype=np.float64)
        assert np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 1], array[..., 2]), name
        # Pillow's own convert("RGB") clips 16-bit data to white; ours keeps the picture
        assert np.abs(array[..., 0] - ref).mean() < 3.0, name
    assert np.asarray(Image.open(good["gray16.png"]).convert("RGB")).mean() > 250  # the bug we avoid


def test_alpha_is_flattened_on_white_and_palette_and_cmyk_keep_colours(good):
    coffee = np.asarray(photo("coffee"), dtype=np.float64)
    alpha = np.asarray(load_image(good["alpha.png"]).image)
    width = alpha.shape[1]
    assert (alpha[:, : width // 2 - 1] == 255).all()  # transparent half -> white background
    assert np.abs(alpha[:, width // 2 + 1 :] - coffee[:, width // 2 + 1 :]).max() == 0
    for name, tol in (("palette.png", 20.0), ("cmyk.jpg", 8.0)):
        array = np.asarray(load_image(good[name]).image, dtype=np.float64)
        assert np.abs(array - coffee).mean() < tol, name


def test_exif_orientation_and_fields(good):
    decoded = load_image(good["trailcam.JPG"])  # 1920x1080 stored, orientation 6 = rotate 90 CW
    assert (decoded.width, decoded.height) == (1080, 1920)
    assert decoded.exif == {"datetime": EXIF_DATETIME, "make": EXIF_MAKE, "model": EXIF_MODEL}
    stored = np.asarray(Image.open(good["trailcam.JPG"]).convert("RGB"))
    expected = np.rot90(stored, k=-1)  # clockwise
    assert np.abs(np.asarray(decoded.image, dtype=int) - expected).max() == 0
    assert load_image(good["coffee.PNG"]).exif == {}


def test_every_bad_file_gives_a_reason(bad):
    for name, (path, word) in bad.items():
        with pytest.raises(ImageDecodeError) as info:
            load_image(path)
        reason = info.value.reason
        assert reason and word.lower() in reason.lower(), f"{name}: {reason!r}"


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 200_000
    with pytest.raises(ImageDecodeError, match="decompression-bomb") as info:
        load_image(path, DecodeOptions(max_pixels=50_000_000))
    assert "12000x10000" in info.value.reason and "--max-pixels" in info.value.reason
    small = tmp_path / "small.png"
    photo("chelsea").save(small)
    with pytest.raises(ImageDecodeError, match="decompression-bomb"):
        load_image(small, DecodeOptions(max_pixels=1000))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.jpg"
    photo("chelsea").save(path)
    path.chmod(0)
    with pytest.raises(ImageDecodeError, match="permission"):
        load_image(path)


def test_odd_names_decode(tmp_path):
    for name in ("with space.jpg", "ñandú – Río.JPEG", "象.png", "#hash;semi,comma.jpg"):
        path = tmp_path / name
        photo("chelsea").save(path)
        assert load_image(path).image.size == (451, 300), name


def test_to_rgb_float_and_int_modes():
    ramp = np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16)
    as_float = np.asarray(to_rgb(Image.fromarray(ramp, "F")))
    assert as_float[..., 0].min() == 0 and as_float[..., 0].max() == 255
    as_int = np.asarray(to_rgb(Image.fromarray((ramp * 65535).astype(np.int32), "I")))
    assert as_int[..., 0].max() == 255 and as_int[..., 0].min() == 0


def test_discover_folder_recursive_case_insensitive_sorted(tmp_path, good):
    root = tmp_path / "card"
    (root / "DCIM" / "100RECNX").mkdir(parents=True)
    (root / "weird.jpg").mkdir()  # a folder with an image suffix is walked as a folder
    for i, suffix in enumerate((".JPG", ".jpeg", ".Png", ".TIF", ".tiff", ".WebP", ".bmp")):
        (root / "DCIM" / "100RECNX" / f"IMG_{i:04d}{suffix}").write_bytes(b"x")
    (root / "weird.jpg" / "inside.jpg").write_bytes(b"x")
    (root / "notes.txt").write_text("not an image list inside a folder")
    (root / "video.mp4").write_bytes(b"x")
    (root / "DCIM" / "loop").symlink_to(root)  # a link loop back to the top
    os.symlink(root / "nowhere.jpg", root / "broken.jpg")

    items = discover([root], relative=True)
    names = [i.filepath for i in items]
    assert names == [
        "broken.jpg",
        "video.mp4",  # videos are inputs too; decoding them is runtime.images.video's business
        *[f"DCIM/100RECNX/IMG_{i:04d}{s}" for i, s in enumerate((".JPG", ".jpeg", ".Png", ".TIF", ".tiff", ".WebP", ".bmp"))],
        "weird.jpg/inside.jpg",
    ]
    broken = items[0]
    assert broken.problem and "dangling" in broken.problem
    absolute = discover([root])
    assert absolute[2].filepath == (root / "DCIM/100RECNX/IMG_0000.JPG").resolve().as_posix()


def test_discover_list_file_and_explicit_files(tmp_path, good):
    listing = tmp_path / "images.txt"
    listing.write_text(
        "# camera 3\n"
        f"{good['chelsea.jpg']}\n"
        "\n"
        f"{os.path.relpath(good['coffee.PNG'], tmp_path)}\n"
        f"{good['chelsea.jpg'].parent}\n"  # a folder in a list: a failure row
        "missing.jpg\n",
        encoding="utf-8",
    )
    items = discover([listing, good["rocket.tif"], good["chelsea.jpg"]])  # duplicate dropped
    assert [Path(i.path).name for i in items] == ["chelsea.jpg", "coffee.PNG", good["chelsea.jpg"].parent.name, "missing.jpg", "rocket.tif"]
    assert items[2].problem and "directory" in items[2].problem
    assert items[3].problem is None  # found missing at decode time
    with pytest.raises(ImageDecodeError, match="not found"):
        load_image(items[3].path)


def test_missing_input_stops_before_work(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        discover([tmp_path / "no-such-folder"])


def test_draft_mode_is_a_hook_and_off_by_default(good):
    exact = load_image(good["trailcam.JPG"])
    assert exact.image.size == (1080, 1920)  # full resolution unless asked
    fast = load_image(good["trailcam.JPG"], DecodeOptions(draft_size=(224, 224)))
    assert fast.image.width < exact.image.width and fast.image.height >= 224 and fast.image.width >= 224


def test_unreadable_file_reason_when_access_is_denied(tmp_path, monkeypatch):
    """The same check as test_unreadable_file, runnable as root: access() says no."""
    path = tmp_path / "locked.jpg"
    photo("chelsea").save(path)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == path else real_access(p, mode))
    with pytest.raises(ImageDecodeError, match="permission denied"):
        load_image(path)


def test_transparent_la_and_palette_flatten_on_white():
    la = Image.new("LA", (4, 4), (30, 0))  # fully transparent dark gray
    assert np.asarray(to_rgb(la)).min() == 255
    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.info["transparency"] = 1
    assert np.asarray(to_rgb(pal)).min() == 255
    del pal.info["transparency"]
    assert tuple(np.asarray(to_rgb(pal))[0, 0]) == (200, 10, 10)

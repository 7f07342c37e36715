"""16-bit images decode to their values scaled to 8 bits, not to white."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from plankflux.data.cytosense_transforms import image_to_tensor
from plankflux.data.images import as_grey, as_rgb, to_8bit
from plankflux.data.transforms import load_resized


def _png16(path, value: int, shape=(12, 20)):
    pixels = np.full(shape, value, dtype=np.uint16)
    pixels[0, 0] = 65535  # the full range: 255 after scaling
    Image.fromarray(pixels).save(path)
    return path


def test_a_16_bit_png_keeps_its_grey_level(tmp_path):
    path = _png16(tmp_path / "cam.png", 25443)  # 25443 * 255 / 65535 = 99.0
    with Image.open(path) as im:
        assert im.mode in ("I;16", "I")  # as Pillow opens 16-bit PNG
        grey = np.asarray(as_grey(im))
    assert grey[1:, 1:].max() == grey[1:, 1:].min() == 99 and grey[0, 0] == 255
    rgb = load_resized(path, 8, "resize")  # the trap data path (training, stats, cache)
    assert rgb.shape == (8, 8, 3) and abs(rgb.mean() - 99) < 3  # was 255: all white


def test_8_bit_images_pass_unchanged():
    grey = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert to_8bit(grey) is grey
    colour = Image.fromarray(np.full((4, 4, 3), (10, 20, 30), dtype=np.uint8))
    assert np.array_equal(np.asarray(as_rgb(colour)), np.asarray(colour))


def test_32_bit_integers_above_16_bits_scale_by_their_maximum():
    wide = Image.fromarray(np.array([[0, 70000, 35000]], dtype=np.int32), mode="I")
    assert np.asarray(as_grey(wide)).tolist() == [[0, 255, 128]]  # 35000*255/70000 = 127.5


def test_float_images_in_0_1_scale_by_255_and_others_by_their_range():
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), mode="F")
    assert np.asarray(as_grey(unit)).tolist() == [[0, 128, 255]]
    wide = Image.fromarray(np.array([[-10.0, 0.0, 30.0]], dtype=np.float32), mode="F")
    assert np.asarray(as_grey(wide)).tolist() == [[0, 64, 255]]  # (0+10)*255/40 = 63.75
    flat = Image.fromarray(np.full((2, 2), 7.0, dtype=np.float32), mode="F")
    assert np.asarray(as_grey(flat)).tolist() == [[0, 0], [0, 0]]


def test_palette_rgba_la_and_cmyk_decode_to_their_colours():
    palette = Image.new("P", (2, 1))
    palette.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    palette.putpixel((1, 0), 1)
    assert np.asarray(as_rgb(palette)).tolist() == [[[0, 0, 0], [200, 100, 50]]]
    rgba = Image.new("RGBA", (1, 1), (10, 20, 30, 0))
    assert np.asarray(as_rgb(rgba)).tolist() == [[[10, 20, 30]]]  # alpha dropped
    grey_alpha = Image.new("LA", (1, 1), (99, 0))
    assert np.asarray(as_grey(grey_alpha)).tolist() == [[99]]
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))  # pure cyan ink-free: red
    assert np.asarray(as_rgb(cmyk)).tolist() == [[[255, 0, 0]]]


def test_an_image_above_the_pixel_limit_is_refused_naming_the_file(tmp_path, monkeypatch):
    from plankflux.data import images
    from plankflux.errors import PlankfluxError

    path = tmp_path / "big.png"
    Image.new("L", (40, 30)).save(path)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(PlankfluxError, match=r"big.png: 40x30 pixels, more than the limit of 1000"):
        images.open_image(path)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 1200)
    assert images.open_image(path).size == (40, 30)


def test_the_cytosense_image_path_decodes_16_bit_too(tmp_path):
    with Image.open(_png16(tmp_path / "cyto.png", 25443)) as im:
        x = image_to_tensor(im)
    assert x.shape == (1, 12, 20) and abs(float(x[0, 1:, 1:].mean()) - 99 / 255) < 1e-6

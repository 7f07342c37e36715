"""16-bit images decode to their values scaled to 8 bits, not to white."""

from __future__ import annotations

import numpy as np
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


def test_values_above_16_bits_clip_at_white():
    wide = Image.fromarray(np.array([[0, 70000, 65535 // 2]], dtype=np.int32), mode="I")
    assert np.asarray(as_grey(wide)).tolist() == [[0, 255, 127]]


def test_the_cytosense_image_path_decodes_16_bit_too(tmp_path):
    with Image.open(_png16(tmp_path / "cyto.png", 25443)) as im:
        x = image_to_tensor(im)
    assert x.shape == (1, 12, 20) and abs(float(x[0, 1:, 1:].mean()) - 99 / 255) < 1e-6

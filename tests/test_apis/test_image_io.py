"""load_image: files, numpy arrays and PIL images of every layout become float RGB."""
import cv2
import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from ebtvision.apis import ImageInputError, load_image


def test_numpy_rgb_gray_and_16_bit():
    rgb = smooth_image(6, 5)
    loaded = load_image(rgb)
    np.testing.assert_allclose(loaded.pixels, rgb / 255.0, atol=1e-7)
    assert not loaded.grayscale and loaded.bit_depth == 8
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert load_image(red).pixels[0, 0].tolist() == [1.0, 0.0, 0.0]  # RGB order kept
    for gray in (rgb[:, :, 1], rgb[:, :, 1:2]):
        loaded = load_image(gray)
        assert loaded.grayscale and loaded.pixels.shape == (6, 5, 3)
        np.testing.assert_array_equal(loaded.pixels[..., 0], loaded.pixels[..., 2])
    deep = np.full((2, 2), 257, np.uint16)
    loaded = load_image(deep)
    assert loaded.bit_depth == 16 and loaded.pixels[0, 0, 0] == np.float32(257 / 65535)
    assert load_image(np.ones((2, 2), bool)).pixels.min() == 1.0


def test_alpha_is_composited_over_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque keeps its colour, transparent becomes white
    pixels = load_image(rgba).pixels
    np.testing.assert_allclose(pixels[0, 0], np.array([10, 20, 30]) / 255.0, atol=1e-7)
    np.testing.assert_allclose(pixels[1, 1], 1.0)
    gray_alpha = np.stack([np.full((2, 2), 100, np.uint8), np.full((2, 2), 255, np.uint8)], 2)
    assert load_image(gray_alpha).grayscale


def test_bad_arrays_are_refused_with_the_reason():
    with pytest.raises(ImageInputError, match=r'\[0, 1\]'):
        load_image(np.full((4, 4, 3), 200.0))
    with pytest.raises(ImageInputError, match='NaN'):
        load_image(np.full((4, 4), np.nan))
    with pytest.raises(ImageInputError, match='uint8 or uint16'):
        load_image(np.zeros((4, 4), np.int32))
    with pytest.raises(ImageInputError, match='channels-first'):
        load_image(np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ImageInputError, match='shape'):
        load_image(np.zeros((8, 8, 5), np.uint8))
    with pytest.raises(ImageInputError, match='unsupported image input'):
        load_image([[0, 1]])
    assert load_image(np.full((2, 2, 3), 0.5, np.float32)).bit_depth == 32


def test_pil_modes():
    rgb = smooth_image(4, 6)
    np.testing.assert_allclose(load_image(Image.fromarray(rgb)).pixels, rgb / 255.0, atol=1e-7)
    gray = load_image(Image.fromarray(rgb[:, :, 0]))
    assert gray.grayscale and gray.pixels[0, 0, 0] == np.float32(rgb[0, 0, 0] / 255.0)
    deep = np.arange(24, dtype=np.uint16).reshape(4, 6) * 2000
    for image in (Image.fromarray(deep), Image.fromarray(deep.astype(np.int32))):
        assert image.mode in ('I;16', 'I')
        loaded = load_image(image)
        assert loaded.bit_depth == 16
        np.testing.assert_allclose(loaded.pixels[..., 0], deep / 65535.0, atol=1e-7)
    floats = np.linspace(0, 1, 24, dtype=np.float32).reshape(4, 6)
    np.testing.assert_allclose(load_image(Image.fromarray(floats)).pixels[..., 1], floats)
    palette = Image.fromarray(rgb).convert('P')
    np.testing.assert_allclose(load_image(palette).pixels,
                               np.asarray(palette.convert('RGB')) / 255.0, atol=1e-7)
    palette.info['transparency'] = int(np.asarray(palette)[0, 0])
    assert load_image(palette).pixels[0, 0].tolist() == [1.0, 1.0, 1.0]
    cmyk = Image.fromarray(rgb).convert('CMYK')
    np.testing.assert_allclose(load_image(cmyk).pixels,
                               np.asarray(cmyk.convert('RGB')) / 255.0, atol=1e-7)
    binary = load_image(Image.fromarray(rgb[:, :, 0] > 100))
    assert set(np.unique(binary.pixels)) <= {0.0, 1.0}


def test_files_and_their_errors(tmp_path):
    rgb = smooth_image(8, 10)
    cv2.imwrite(str(tmp_path / 'colour.png'), rgb[:, :, ::-1])
    np.testing.assert_allclose(load_image(str(tmp_path / 'colour.png')).pixels, rgb / 255.0,
                               atol=1e-7)
    deep = (rgb[:, :, 0].astype(np.uint16) * 257 + 3)
    cv2.imwrite(str(tmp_path / 'deep.png'), deep)
    loaded = load_image(tmp_path / 'deep.png')
    assert loaded.bit_depth == 16 and loaded.grayscale
    np.testing.assert_allclose(loaded.pixels[..., 0], deep / 65535.0, atol=1e-7)
    photo = smooth_image(48, 64)  # JPEG: close to the source, channels not swapped
    cv2.imwrite(str(tmp_path / 'photo.jpg'), photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert np.abs(load_image(str(tmp_path / 'photo.jpg')).pixels - photo / 255.0).mean() < 0.02
    with pytest.raises(ImageInputError, match='missing.png.*does not exist'):
        load_image(str(tmp_path / 'missing.png'))
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(ImageInputError, match='empty'):
        load_image(str(tmp_path / 'empty.png'))
    (tmp_path / 'text.png').write_text('not an image')
    with pytest.raises(ImageInputError, match='text.png'):
        load_image(str(tmp_path / 'text.png'))
    with pytest.raises(ImageInputError, match='limit'):
        load_image(str(tmp_path / 'colour.png'), max_pixels=79)
    assert load_image(str(tmp_path / 'colour.png'), max_pixels=None).pixels.shape == (8, 10, 3)

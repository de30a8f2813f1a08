"""load_image: files, numpy arrays and PIL images of every layout become float RGB."""
import io
import os.path as osp
import re
import struct
import subprocess
import sys
import warnings
import zlib

import cv2
import numpy as np
import pytest
from conftest import smooth_image
from PIL import Image

from ebtvision.apis import ImageInputError, load_image
from ebtvision.utils.image_header import ImageHeaderError, read_image_header

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


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


# ---------------------------------------------------------------------------------------
# Decompression bombs: the size comes from the header, before anything is decoded.

HUGE = 20000  # 20000 x 20000 = 400 M pixels: 400 MB decoded as 8-bit gray, 1.2 GB as RGB


def png_bytes(width: int, height: int) -> bytes:
    """A real, valid black 8-bit gray PNG, compressed row by row (never held decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xFFFFFFFF))

    compressor = zlib.compressobj(9)
    rows = b'\x00' * (width + 1) * 100  # filter byte 0 + black pixels, 100 rows at a time
    data = [compressor.compress(rows) for _ in range(height // 100)]
    data.append(compressor.compress(b'\x00' * (width + 1) * (height % 100)))
    data.append(compressor.flush())
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', b''.join(data))
            + chunk(b'IEND', b''))


def tiff_bytes(width: int, height: int, pixels: bytes, order: str = '<',
               size_type: int = 4, bigtiff: bool = False) -> bytes:
    """An uncompressed 8-bit gray TIFF whose header says ``width`` x ``height``.

    ``size_type`` is the field type of ImageWidth / ImageLength: 3 (SHORT), 4 (LONG) or
    16 (LONG8, BigTIFF only). ``pixels`` may be shorter than the header claims.
    """
    formats = {3: 'H', 4: 'I', 16: 'Q'}
    value_size, count_format, offset_format = (8, 'Q', 'Q') if bigtiff else (4, 'H', 'I')
    entries = [(256, size_type, width), (257, size_type, height), (258, 3, 8), (259, 3, 1),
               (262, 3, 1), (273, 4, None), (277, 3, 1), (278, 4, height),
               (279, 4, width * height)]
    head_size = 16 if bigtiff else 8
    ifd_size = (struct.calcsize(count_format) + len(entries) * (4 + 2 * value_size)
                + value_size)
    data_offset = head_size + ifd_size
    if bigtiff:
        out = (b'II' if order == '<' else b'MM') + struct.pack(order + 'HHHQ', 43, 8, 0, 16)
    else:
        out = (b'II' if order == '<' else b'MM') + struct.pack(order + 'HI', 42, 8)
    out += struct.pack(order + count_format, len(entries))
    for tag, field_type, value in entries:
        value = data_offset if value is None else value
        field = struct.pack(order + formats[field_type], value).ljust(value_size, b'\x00')
        out += struct.pack(order + 'HH' + offset_format, tag, field_type, 1) + field
    out += struct.pack(order + offset_format, 0)  # no next directory
    assert len(out) == data_offset
    return out + pixels


def patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    packed = struct.pack(fmt, *values)
    return data[:offset] + packed + data[offset + len(packed):]


def encoded(image: np.ndarray, ext: str, params=()) -> bytes:
    ok, buf = cv2.imencode(ext, image, list(params))
    assert ok
    return buf.tobytes()


def huge_jpeg() -> bytes:
    data = encoded(smooth_image(13, 21), '.jpg', [cv2.IMWRITE_JPEG_QUALITY, 90])
    sof = data.index(b'\xff\xc0')  # baseline frame header: FFC0, length, precision, H, W
    assert struct.unpack('>HH', data[sof + 5:sof + 9]) == (13, 21)
    return patch(data, sof + 5, '>HH', HUGE, HUGE)


def huge_webp(kind: str) -> bytes:
    image = smooth_image(13, 21)
    if kind == 'VP8 ':  # lossy: 14-bit width and height after the start code
        data = encoded(image, '.webp', [cv2.IMWRITE_WEBP_QUALITY, 80])
        assert data[12:16] == b'VP8 ' and struct.unpack('<HH', data[26:30]) == (21, 13)
        return patch(data, 26, '<HH', 16383, 16383)
    if kind == 'VP8L':  # lossless: 14-bit width-1 and height-1 after a signature byte
        data = encoded(image, '.webp', [cv2.IMWRITE_WEBP_QUALITY, 101])
        assert data[12:16] == b'VP8L'
        (bits,) = struct.unpack('<I', data[21:25])
        return patch(data, 21, '<I', (bits & ~0xFFFFFFF) | 16382 | (16382 << 14))
    # VP8X (extended: here for EXIF): 24-bit canvas width-1 and height-1
    exif = Image.Exif()
    exif[0x010E] = 'bomb'
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, 'WEBP', exif=exif)
    data = buffer.getvalue()
    assert data[12:16] == b'VP8X'
    return data[:24] + (HUGE - 1).to_bytes(3, 'little') * 2 + data[30:]


def huge_bmp() -> bytes:
    data = encoded(smooth_image(13, 21), '.bmp')
    assert struct.unpack('<ii', data[18:26]) == (21, 13)
    return patch(data, 18, '<ii', HUGE, -HUGE)  # negative height: rows stored top-down


HUGE_FILES = {
    'huge.png': lambda: png_bytes(HUGE, HUGE),
    'huge.jpg': huge_jpeg,
    'huge_lossy.webp': lambda: huge_webp('VP8 '),
    'huge_lossless.webp': lambda: huge_webp('VP8L'),
    'huge_extended.webp': lambda: huge_webp('VP8X'),
    'huge_le.tif': lambda: tiff_bytes(HUGE, HUGE, bytes(64), '<', 4),
    'huge_be_short.tif': lambda: tiff_bytes(HUGE, HUGE, bytes(64), '>', 3),
    'huge_bigtiff.tif': lambda: tiff_bytes(HUGE, HUGE, bytes(64), '<', 16, bigtiff=True),
    'huge.bmp': huge_bmp,
}


@pytest.fixture(scope='module')
def huge_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bombs')
    for name, make in HUGE_FILES.items():
        (folder / name).write_bytes(make())
    return folder


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if OpenCV or PIL decodes any pixel."""
    def refuse(*args, **kwargs):
        raise AssertionError('the image was decoded')

    monkeypatch.setattr(cv2, 'imdecode', refuse)
    monkeypatch.setattr(cv2, 'imread', refuse)
    monkeypatch.setattr(Image.Image, 'load', refuse)


def test_header_sizes_of_real_files(tmp_path):
    tifffile = pytest.importorskip('tifffile')  # comes with scikit-image
    image = smooth_image(13, 21)
    pil = Image.fromarray(image)
    exif = Image.Exif()
    exif[0x010E] = 'x'
    files = {
        'a.png': encoded(image, '.png'),
        'gray16.png': encoded(image[..., 0].astype(np.uint16) * 257, '.png'),
        'a.jpg': encoded(image, '.jpg'),
        'lossy.webp': encoded(image, '.webp', [cv2.IMWRITE_WEBP_QUALITY, 80]),
        'lossless.webp': encoded(image, '.webp', [cv2.IMWRITE_WEBP_QUALITY, 101]),
        'a.tif': encoded(image, '.tif'), 'a.bmp': encoded(image, '.bmp'),
        'tiny.png': png_bytes(21, 13), 'le.tif': tiff_bytes(21, 13, bytes(273), '<', 4),
        'be.tif': tiff_bytes(21, 13, bytes(273), '>', 3),
        'big.tif': tiff_bytes(21, 13, bytes(273), '>', 16, bigtiff=True),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    pil.save(tmp_path / 'progressive.jpg', progressive=True)
    pil.save(tmp_path / 'exif.jpg', exif=exif)  # an APP1 segment before the frame header
    pil.save(tmp_path / 'extended.webp', exif=exif)
    pil.save(tmp_path / 'pil.bmp')
    tifffile.imwrite(tmp_path / 'tifffile_be.tif', image, byteorder='>')
    tifffile.imwrite(tmp_path / 'tifffile_big.tif', image, bigtiff=True, compression='zlib')
    for path in sorted(tmp_path.iterdir()):
        header = read_image_header(path)
        expected = {'jpg': 'JPEG', 'tif': 'TIFF', 'webp': 'WebP'}.get(
            path.suffix[1:], path.suffix[1:].upper())
        assert header[:3] == (expected, 21, 13), path.name
        # The hand-built files are real images: OpenCV decodes them to that size.
        assert load_image(str(path)).pixels.shape == (13, 21, 3), path.name
    assert read_image_header(__file__) is None  # not an image format we parse
    (tmp_path / 'cut.png').write_bytes(files['a.png'][:20])
    with pytest.raises(ImageHeaderError, match='ends inside'):
        read_image_header(tmp_path / 'cut.png')
    with pytest.raises(ImageInputError, match=re.escape(str(tmp_path / 'cut.png'))):
        load_image(str(tmp_path / 'cut.png'))  # damaged header: OpenCV reports it


def test_jpeg_headers_give_channels_and_bit_depth(tmp_path):
    # What decides whether a JPEG can be decoded at reduced size (datasets' loader).
    color, gray = smooth_image(37, 53), smooth_image(16, 8)[..., 0]
    (tmp_path / 'color.jpg').write_bytes(encoded(color, '.jpg'))
    (tmp_path / 'progressive.jpg').write_bytes(
        encoded(color, '.jpg', [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]))
    (tmp_path / 'gray.jpg').write_bytes(encoded(gray, '.jpg'))
    assert read_image_header(tmp_path / 'color.jpg') == ('JPEG', 53, 37, 3, 8)
    assert read_image_header(tmp_path / 'progressive.jpg') == ('JPEG', 53, 37, 3, 8)
    assert read_image_header(tmp_path / 'gray.jpg') == ('JPEG', 8, 16, 1, 8)
    assert read_image_header(tmp_path / 'color.jpg').format == 'JPEG'
    (tmp_path / 'cut.jpg').write_bytes(encoded(color, '.jpg')[:20])
    with pytest.raises(ImageHeaderError):
        read_image_header(tmp_path / 'cut.jpg')


@pytest.mark.parametrize('name', sorted(HUGE_FILES))
def test_oversized_files_are_refused_before_decoding(huge_files, no_decoding, name):
    path = str(huge_files / name)
    side = 16383 if name in ('huge_lossy.webp', 'huge_lossless.webp') else HUGE
    with pytest.raises(ImageInputError,
                       match=re.escape(f'{path}: {side}x{side} pixels') + '.*limit'):
        load_image(path)
    # Our max_pixels decides, not PIL's MAX_IMAGE_PIXELS (these are over PIL's bomb limit).
    with pytest.raises(ImageInputError, match=re.escape(f'{side}x{side}')):
        load_image(path, max_pixels=side * side - 1)


def test_decoding_proceeds_when_the_header_is_within_the_limit(huge_files, monkeypatch):
    decoded = []
    monkeypatch.setattr(cv2, 'imdecode', lambda buf, flags: decoded.append(1))
    # max_pixels above the header's size: handed to OpenCV (stubbed: "cannot decode").
    with pytest.raises(ImageInputError, match='OpenCV cannot decode'):
        load_image(str(huge_files / 'huge.jpg'), max_pixels=HUGE * HUGE)
    assert decoded == [1]


def test_png_bomb_is_refused_without_the_memory_of_a_decode(huge_files):
    """400 M pixels decode to 400 MB: the refusal must come before any of that."""
    script = (
        'import resource, sys\n'
        'from ebtvision.apis import ImageInputError, load_image\n'
        'before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
        'try:\n'
        '    load_image(sys.argv[1])\n'
        '    print("loaded")\n'
        'except ImageInputError as error:\n'
        '    print("refused:", error)\n'
        'after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n'
        'print("peak growth MB:", (after - before) // 1024)\n')
    path = str(huge_files / 'huge.png')
    assert osp.getsize(path) < 1024 * 1024  # a small file ...
    result = subprocess.run([sys.executable, '-c', script, path], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f'refused: {path}: 20000x20000 pixels' in result.stdout, result.stdout
    growth = int(result.stdout.rsplit('peak growth MB:', 1)[1])
    assert growth < 200, result.stdout  # ... that is never decoded


def test_other_formats_are_checked_from_pil_headers(tmp_path, no_decoding):
    """Formats we do not parse (here PGM) are sized by PIL's lazy, header-only open."""
    (tmp_path / 'small.pgm').write_bytes(encoded(smooth_image(8, 10)[..., 0], '.pgm'))
    with pytest.raises(ImageInputError, match=r'small.pgm: 10x8 pixels \(from the file header'):
        load_image(str(tmp_path / 'small.pgm'), max_pixels=79)
    # A header claiming 30000 x 30000 (900 M pixels) trips PIL's bomb check, which proves
    # it is over our limit too.
    (tmp_path / 'bomb.pgm').write_bytes(b'P5\n30000 30000\n255\n' + bytes(64))
    with pytest.raises(ImageInputError, match=re.escape(str(tmp_path / 'bomb.pgm'))
                       + r': more than [\d,]+ pixels.*limit'):
        load_image(str(tmp_path / 'bomb.pgm'))


def test_pil_limits_neither_refuse_nor_warn(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 50)  # PIL warns above 50, raises above 100
    for name, ext, image in (('small.png', '.png', smooth_image(8, 10)),
                             ('small.pgm', '.pgm', smooth_image(8, 10)[..., 0]),
                             ('larger.pgm', '.pgm', smooth_image(12, 10)[..., 0])):
        (tmp_path / name).write_bytes(encoded(image, ext))
        with warnings.catch_warnings():
            warnings.simplefilter('error')
            assert load_image(str(tmp_path / name)).pixels.shape[:2] == image.shape[:2]

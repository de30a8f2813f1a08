"""Read an image file's width and height from its header, without decoding any pixels.

A compressed image can be tiny on disk and huge once decoded (a 400 KB PNG can hold
20000 x 20000 pixels), so the size has to be known before a decoder allocates it. This
module parses the headers of PNG, JPEG, WebP, TIFF (classic and BigTIFF) and BMP itself,
reading a few dozen bytes, so no decoder library and no decoder limit (such as PIL's
``MAX_IMAGE_PIXELS``) is involved in the decision.
"""
import os
import struct
from typing import BinaryIO, Callable, List, NamedTuple, Optional, Tuple, Union

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (every coding process); C4 (DHT), C8 (JPG) and CC (DAC)
# share the range but are not frames.
_JPEG_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD8), 0xD8])
# TIFF tags and field types needed for the size.
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257
_TIFF_INT_FORMATS = {3: 'H', 4: 'I', 16: 'Q'}  # SHORT, LONG, LONG8 (BigTIFF)
# Real files stay far below these; they only bound the work spent on crafted files.
_TIFF_MAX_ENTRIES = 65536
_JPEG_MAX_SEGMENTS = 10000
_JPEG_MAX_STRAY_BYTES = 1 << 20


class ImageHeader(NamedTuple):
    """What a file's header says about the image.

    Attributes:
        format: ``'PNG'``, ``'JPEG'``, ``'WebP'``, ``'TIFF'`` or ``'BMP'``.
        width: Width in pixels.
        height: Height in pixels.
        channels: Colour components (JPEG only, else None): what a reduced JPEG decode
            can handle depends on it.
        bit_depth: Bits per sample (JPEG only, else None).
    """
    format: str
    width: int
    height: int
    channels: Optional[int] = None
    bit_depth: Optional[int] = None


class ImageHeaderError(ValueError):
    """The file starts like a known format, but its header is truncated or malformed."""


def _read_exact(file: BinaryIO, size: int, what: str) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ImageHeaderError(f'the file ends inside the {what}')
    return data


def _png_size(file: BinaryIO, head: bytes) -> Tuple[int, int]:
    file.seek(len(PNG_SIGNATURE))
    # IHDR must be the first chunk; Apple's "CgBI" PNGs put one chunk before it.
    for _ in range(2):
        length, kind = struct.unpack('>I4s', _read_exact(file, 8, 'PNG chunk header'))
        if kind == b'IHDR':
            return struct.unpack('>II', _read_exact(file, 8, 'PNG IHDR chunk'))
        file.seek(length + 4, os.SEEK_CUR)  # chunk data and CRC
    raise ImageHeaderError('the PNG has no IHDR chunk at its start')


def _jpeg_size(file: BinaryIO, head: bytes) -> Tuple[int, int, int, int]:
    file.seek(2)  # after SOI
    budget = _JPEG_MAX_STRAY_BYTES

    def next_byte() -> bytes:
        nonlocal budget
        budget -= 1
        if budget < 0:
            raise ImageHeaderError('the JPEG has too many stray bytes between markers')
        return _read_exact(file, 1, 'JPEG markers')

    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = _read_exact(file, 1, 'JPEG markers')
        # Like libjpeg, skip stray bytes before a marker, then any 0xFF fill bytes.
        while byte != b'\xff':
            byte = next_byte()
        byte = _read_exact(file, 1, 'JPEG markers')
        while byte == b'\xff':
            byte = next_byte()
        marker = byte[0]
        if marker == 0x00 or marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # EOI / start of scan before any frame header
            raise ImageHeaderError('the JPEG has no frame header before its data')
        (length,) = struct.unpack('>H', _read_exact(file, 2, 'JPEG segment length'))
        if length < 2:
            raise ImageHeaderError(f'a JPEG segment has an invalid length ({length})')
        if marker in _JPEG_SOF_MARKERS:
            precision, height, width, channels = struct.unpack(
                '>BHHB', _read_exact(file, 6, 'JPEG frame header'))
            return width, height, channels, precision
        file.seek(length - 2, os.SEEK_CUR)
    raise ImageHeaderError(f'the JPEG has over {_JPEG_MAX_SEGMENTS} segments before its '
                           'frame header')


def _webp_size(file: BinaryIO, head: bytes) -> Tuple[int, int]:
    if len(head) < 30:
        raise ImageHeaderError('the file ends inside the WebP header')
    chunk = head[12:16]
    if chunk == b'VP8 ':  # lossy: 14-bit sizes after the frame tag and start code
        if head[23:26] != b'\x9d\x01\x2a':
            raise ImageHeaderError('the WebP VP8 frame has no start code')
        width, height = struct.unpack('<HH', head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b'VP8L':  # lossless: signature byte, then 14-bit width-1 and height-1
        if head[20] != 0x2F:
            raise ImageHeaderError('the WebP VP8L chunk has no signature')
        (bits,) = struct.unpack('<I', head[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b'VP8X':  # extended: 24-bit canvas width-1 and height-1
        return (int.from_bytes(head[24:27], 'little') + 1,
                int.from_bytes(head[27:30], 'little') + 1)
    raise ImageHeaderError(f'unknown WebP chunk {chunk!r}')


def _tiff_size(file: BinaryIO, head: bytes) -> Tuple[int, int]:
    order = '<' if head[:2] == b'II' else '>'
    big = struct.unpack(order + 'H', head[2:4])[0] == 43
    if big:  # BigTIFF: 8-byte offsets and counts, 20-byte entries
        offset = struct.unpack(order + 'Q', head[8:16])[0]
        count_format, entry_format, value_size = 'Q', 'HHQ', 8
    else:
        offset = struct.unpack(order + 'I', head[4:8])[0]
        count_format, entry_format, value_size = 'H', 'HHI', 4
    file.seek(offset)
    count_bytes = _read_exact(file, struct.calcsize(count_format), 'TIFF directory')
    (count,) = struct.unpack(order + count_format, count_bytes)
    entry_size = struct.calcsize(order + entry_format) + value_size
    size = {}
    # Only the first directory (page) is read: it is the one OpenCV decodes.
    for _ in range(min(count, _TIFF_MAX_ENTRIES)):
        entry = _read_exact(file, entry_size, 'TIFF directory')
        tag, field_type, _ = struct.unpack(order + entry_format, entry[:-value_size])
        if tag in (_TIFF_WIDTH, _TIFF_LENGTH):
            if field_type not in _TIFF_INT_FORMATS:
                raise ImageHeaderError(f'TIFF tag {tag} has the non-integer type {field_type}')
            value_format = order + _TIFF_INT_FORMATS[field_type]
            size[tag] = struct.unpack_from(value_format, entry, entry_size - value_size)[0]
            if len(size) == 2:
                return size[_TIFF_WIDTH], size[_TIFF_LENGTH]
    raise ImageHeaderError('the first TIFF directory has no ImageWidth / ImageLength')


def _bmp_size(file: BinaryIO, head: bytes) -> Tuple[int, int]:
    if len(head) < 26:
        raise ImageHeaderError('the file ends inside the BMP header')
    (info_size,) = struct.unpack('<I', head[14:18])
    if info_size == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
        return struct.unpack('<HH', head[18:22])
    if info_size < 16:
        raise ImageHeaderError(f'unknown BMP info header size {info_size}')
    width, height = struct.unpack('<ii', head[18:26])
    return width, abs(height)  # a negative height only means rows are stored top-down


_Parser = Callable[[BinaryIO, bytes], Tuple[int, int]]
_FORMATS: List[Tuple[str, Callable[[bytes], bool], _Parser]] = [
    ('PNG', lambda head: head.startswith(PNG_SIGNATURE), _png_size),
    ('JPEG', lambda head: head.startswith(b'\xff\xd8\xff'), _jpeg_size),
    ('WebP', lambda head: head[:4] == b'RIFF' and head[8:12] == b'WEBP', _webp_size),
    ('TIFF', lambda head: head[:4] in (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+'),
     _tiff_size),
    ('BMP', lambda head: head[:2] == b'BM', _bmp_size),
]


def read_image_header(path: Union[str, os.PathLike]) -> Optional[ImageHeader]:
    """The format and size of a PNG, JPEG, WebP, TIFF or BMP file, from its header only.

    At most a few hundred bytes are read (a JPEG's segments before its frame header are
    skipped with seeks); no pixel is decoded.

    Args:
        path: The image file.

    Returns:
        The header's format and size, or ``None`` when the file is none of these formats.

    Raises:
        ImageHeaderError: The file starts like one of these formats but its header is
            truncated or malformed.
        OSError: The file cannot be read.
    """
    with open(path, 'rb') as file:
        head = file.read(32)
        for name, matches, parse in _FORMATS:
            if matches(head):
                try:
                    values = parse(file, head)
                except struct.error as error:
                    raise ImageHeaderError(f'malformed {name} header ({error})') from None
                return ImageHeader(name, *(int(value) for value in values))
    return None

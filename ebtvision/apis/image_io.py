"""Turn whatever image a user hands in (file, numpy array, PIL image) into float RGB.

Every input becomes float32 ``(H, W, 3)`` RGB in ``[0, 1]``:

* 8-bit samples are divided by 255, 16-bit ones by 65535 (the extra precision is kept);
  float arrays must already lie in ``[0, 1]`` (anything else is refused, not clipped);
* grayscale is repeated over the 3 channels and remembered, so results can be handed
  back as grayscale;
* transparency (RGBA, gray + alpha, palette with transparency) is composited over white,
  as image viewers show it.
"""
import os
import os.path as osp
import warnings
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np

from ebtvision.datasets.transforms.loading import read_image_file, to_float_rgb
from ebtvision.utils.image_header import ImageHeaderError, read_image_header

try:
    from PIL import Image as PILImage
except ImportError:  # pragma: no cover  PIL comes with matplotlib / torchvision
    PILImage = None

ImageInput = Union[str, os.PathLike, np.ndarray, 'PILImage.Image']

#: Largest image accepted by default (pixels): 64 megapixels.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024
#: Float images may overshoot [0, 1] by this much (rounding in other tools).
FLOAT_TOLERANCE = 1e-3


class ImageInputError(ValueError):
    """An input image that cannot be used; the message names it and the problem."""


@dataclass
class LoadedImage:
    """An input image as the models see it.

    Attributes:
        pixels: float32 ``(H, W, 3)`` RGB in ``[0, 1]``.
        grayscale: The input had one colour channel (gray, gray + alpha, 16-bit gray...).
        bit_depth: Bits per sample of the input: 8, 16, or 32 for float inputs.
        name: What the image was (file path or ``'numpy array'``), for messages.
    """
    pixels: np.ndarray
    grayscale: bool
    bit_depth: int
    name: str


def _bit_depth(array: np.ndarray) -> int:
    return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)


def _check_size(height: int, width: int, name: str, max_pixels: Optional[int]) -> None:
    if height < 1 or width < 1:
        raise ImageInputError(f'{name}: the image is empty ({height}x{width} pixels)')
    if max_pixels is not None and height * width > max_pixels:
        raise ImageInputError(
            f'{name}: {width}x{height} pixels is more than the limit of {max_pixels:,} '
            f'pixels; downscale it first or raise max_pixels')


def _array_to_loaded(array: np.ndarray, name: str, bgr: bool) -> LoadedImage:
    """Validate a decoded array and convert it (see the module docstring)."""
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4) and array.shape[0] in (1, 3, 4):
        raise ImageInputError(f'{name}: shape {array.shape} looks channels-first; pass '
                              'images as (H, W) or (H, W, C), e.g. array.transpose(1, 2, 0)')
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ImageInputError(f'{name}: unsupported image shape {array.shape}; expected '
                              '(H, W) gray, or (H, W, C) with C = 1 (gray), 2 (gray + alpha), '
                              '3 (RGB) or 4 (RGBA)')
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageInputError(f'{name}: the image holds NaN or infinite values')
        low, high = float(array.min()), float(array.max())
        if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
            raise ImageInputError(
                f'{name}: float images must hold values in [0, 1], this one spans '
                f'[{low:g}, {high:g}] (divide 8-bit data by 255, 16-bit data by 65535)')
    elif array.dtype not in (np.uint8, np.uint16):
        # int32 could be 8- or 16-bit data: guessing would silently change brightness.
        raise ImageInputError(f'{name}: integer pixels must be uint8 or uint16, got '
                              f'{array.dtype}; cast the array to the bit depth it holds')
    _check_size(array.shape[0], array.shape[1], name, None)
    channels = 1 if array.ndim == 2 else array.shape[2]
    try:
        pixels = to_float_rgb(array, to_rgb=True, alpha='white', bgr=bgr)
    except ValueError as error:
        raise ImageInputError(f'{name}: {error}') from None
    return LoadedImage(pixels=pixels, grayscale=channels in (1, 2),
                       bit_depth=_bit_depth(array), name=name)


def _pil_to_array(image: 'PILImage.Image', name: str) -> np.ndarray:
    """A PIL image as an RGB(A) / gray(+alpha) array of its own bit depth."""
    mode = image.mode
    if mode.startswith('I;16'):
        return np.asarray(image).astype(np.uint16)
    if mode == 'I':  # 32-bit integers; PIL opens 16-bit PNGs this way
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ImageInputError(f'{name}: 32-bit integer pixels outside the 16-bit range '
                                  f'[0, 65535] ([{array.min()}, {array.max()}])')
        return array.astype(np.uint16)
    if mode == 'F':
        return np.asarray(image)
    if mode == '1':
        return np.asarray(image.convert('L'))
    if mode in ('P', 'PA'):
        has_alpha = mode == 'PA' or 'transparency' in image.info
        return np.asarray(image.convert('RGBA' if has_alpha else 'RGB'))
    if mode in ('L', 'LA', 'RGB', 'RGBA'):
        return np.asarray(image)
    if mode in ('La', 'RGBa'):  # premultiplied alpha
        return np.asarray(image.convert('RGBA' if mode == 'RGBa' else 'LA'))
    try:
        return np.asarray(image.convert('RGB'))  # CMYK, YCbCr, LAB, HSV
    except (ValueError, OSError) as error:
        raise ImageInputError(f'{name}: PIL mode {mode!r} cannot be converted to RGB '
                              f'({error})') from None


def _pil_header_size(path: str, max_pixels: int) -> Optional[Tuple[int, int]]:
    """``(width, height)`` from PIL's lazy ``open`` (header only), or ``None``.

    Raises:
        ImageInputError: PIL's bomb check fired, which proves the image is over
            ``max_pixels`` when that is below PIL's own limit.
    """
    if PILImage is None:
        return None
    try:
        with warnings.catch_warnings():
            # PIL's limit must not decide (nor warn): the caller compares with max_pixels.
            warnings.simplefilter('ignore', PILImage.DecompressionBombWarning)
            with PILImage.open(path) as header:
                return header.width, header.height
    except PILImage.DecompressionBombError:
        # Raised above twice PIL's MAX_IMAGE_PIXELS; without the size we can only
        # refuse when that already exceeds our limit.
        bomb_pixels = 2 * (PILImage.MAX_IMAGE_PIXELS or 0)
        if bomb_pixels >= max_pixels:
            raise ImageInputError(
                f'{path}: more than {bomb_pixels:,} pixels (from the file header), over the '
                f'limit of {max_pixels:,} pixels; downscale it first or raise max_pixels'
            ) from None
        return None
    except Exception:  # noqa: BLE001  any plugin error only means "PIL cannot tell"
        return None


def _check_file_size(path: str, max_pixels: int) -> None:
    """Refuse a file over ``max_pixels`` from its header, before anything decodes it.

    Args:
        path: The image file.
        max_pixels: Largest accepted ``width * height``.

    Raises:
        ImageInputError: The header gives more pixels than ``max_pixels``.
    """
    try:
        header = read_image_header(path)
    except ImageHeaderError:
        header = None  # a damaged header: let PIL try, then OpenCV report the damage
    except OSError:
        return  # unreadable: read_image_file reports why
    size = (header.width, header.height) if header else _pil_header_size(path, max_pixels)
    if size is None:
        # Neither we nor PIL can read the header. A damaged PNG/JPEG/WebP/TIFF/BMP
        # header stops OpenCV's decoder too, before it allocates (it needs the same
        # fields). What remains are formats PIL does not know (Radiance HDR, OpenEXR):
        # rare here, bounded by OpenCV's own OPENCV_IO_MAX_IMAGE_PIXELS (2^30 by
        # default), and checked against max_pixels again once decoded.
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageInputError(
            f'{path}: {width}x{height} pixels (from the file header) is more than the '
            f'limit of {max_pixels:,} pixels; downscale it first or raise max_pixels')


def load_image(image: ImageInput, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read one image from a file path, a numpy array or a PIL image.

    Args:
        image: A file path (any format OpenCV decodes: PNG 8/16-bit, JPEG, TIFF, BMP,
            WebP...), a numpy array ``(H, W)`` / ``(H, W, C)`` in **RGB(A)** order
            (uint8, uint16, or float in ``[0, 1]``), or a PIL image of any mode.
        max_pixels: Refuse larger images (``None``: no limit). Files are checked from
            their header before they are decoded: PNG, JPEG, WebP, TIFF and BMP headers
            are parsed here, other formats' by PIL's lazy ``open``.

    Raises:
        ImageInputError: The file is missing or undecodable, or the array's shape,
            dtype or value range is not an image's. The message names the input.
    """
    if isinstance(image, (str, os.PathLike)):
        path = osp.expanduser(os.fspath(image))
        if max_pixels is not None and osp.isfile(path):
            _check_file_size(path, max_pixels)
        raw, reason = read_image_file(path)
        if raw is None:
            raise ImageInputError(f'{path}: {reason}')
        _check_size(raw.shape[0], raw.shape[1], path, max_pixels)
        return _array_to_loaded(raw, path, bgr=True)
    if isinstance(image, np.ndarray):
        name = f'numpy array {image.shape} {image.dtype}'
        if image.ndim >= 2:
            _check_size(image.shape[0], image.shape[1], name, max_pixels)
        return _array_to_loaded(image, name, bgr=False)
    if PILImage is not None and isinstance(image, PILImage.Image):
        name = f'PIL image ({image.mode}, {image.width}x{image.height})'
        _check_size(image.height, image.width, name, max_pixels)
        return _array_to_loaded(_pil_to_array(image, name), name, bgr=False)
    raise ImageInputError(f'unsupported image input of type {type(image).__name__}; pass a '
                          'file path, a numpy array or a PIL image')

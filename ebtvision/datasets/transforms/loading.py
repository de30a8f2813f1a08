"""Image loading: decode any common still-image file to float32 RGB in [0, 1]."""
import os.path as osp
import warnings
from typing import Optional, Tuple

import cv2
import numpy as np

from ebtvision.registry import TRANSFORMS

_ALPHA_MODES = ('white', 'drop')


def read_image_file(path: str) -> Tuple[Optional[np.ndarray], str]:
    """Decode an image file with OpenCV, keeping bit depth and alpha.

    The bytes are read with ``np.fromfile`` and decoded with ``cv2.imdecode`` (rather
    than ``cv2.imread``) so that non-ASCII paths work on every platform.
    ``IMREAD_UNCHANGED`` keeps 16-bit samples and the alpha channel; it also means
    EXIF orientation is not applied, which does not matter for denoising.

    Args:
        path: Image file path.

    Returns:
        ``(array, '')`` on success, where the array is BGR(A) or grayscale exactly as
        stored, or ``(None, reason)`` on failure.
    """
    if not osp.isfile(path):
        return None, 'file does not exist'
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return None, f'cannot read file ({err})'
    if buf.size == 0:
        return None, 'file is empty (0 bytes)'
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        return None, f'OpenCV cannot decode it ({err})'
    if img is None or img.size == 0:
        return None, 'OpenCV cannot decode it (corrupt or unsupported format)'
    return img, ''


def to_float_rgb(img: np.ndarray,
                 to_rgb: bool = True,
                 alpha: str = 'white',
                 bgr: bool = True) -> np.ndarray:
    """Convert an OpenCV-decoded (or an RGB) array to float32 HWC in [0, 1].

    Args:
        img: Array as returned by :func:`read_image_file`: (H, W), (H, W, 1),
            (H, W, 2) gray+alpha, (H, W, 3) BGR or (H, W, 4) BGRA; dtype uint8,
            uint16 or float.
        to_rgb: Expand grayscale to 3 identical channels. When False, grayscale stays
            (H, W, 1) and colour images are still RGB.
        alpha: ``'white'`` composites transparent pixels over a white background
            (what image viewers show); ``'drop'`` discards the alpha channel.
        bgr: Colour channels are in OpenCV's BGR(A) order; False for RGB(A) arrays
            (PIL, matplotlib, Gradio).

    Returns:
        float32 array (H, W, 3) or (H, W, 1), channels in RGB order, values in [0, 1].

    Raises:
        ValueError: Unsupported dtype or channel count.
    """
    if img.dtype == np.uint8:
        out = img.astype(np.float32) / 255.0
    elif img.dtype == np.uint16:
        out = img.astype(np.float32) / 65535.0
    elif np.issubdtype(img.dtype, np.floating):
        # Float TIFF/EXR: assume already in [0, 1]. Clip before the float32 cast so
        # that out-of-range float64 values cannot overflow; NaN becomes 0.
        out = np.clip(np.nan_to_num(img, nan=0.0), 0.0, 1.0).astype(np.float32)
    else:
        raise ValueError(f'unsupported pixel dtype {img.dtype}')

    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim != 3 or out.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'unsupported image shape {img.shape}')

    channels = out.shape[2]
    if channels in (2, 4):
        color, a = out[:, :, :-1], out[:, :, -1:]
        out = color * a + (1.0 - a) if alpha == 'white' else color
    if out.shape[2] == 3:
        if bgr:
            out = out[:, :, ::-1]  # OpenCV decodes to BGR
    elif to_rgb:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out, dtype=np.float32)


@TRANSFORMS.register_module()
class LoadImageFromFile:
    """Load an image as float32 RGB (H, W, C) in [0, 1].

    Decodes with OpenCV (``IMREAD_UNCHANGED``): 8-bit images are divided by 255,
    16-bit ones by 65535, float images are clipped to [0, 1]. Grayscale becomes
    3 identical channels when ``to_rgb`` is True. Alpha is composited over white
    (``alpha='white'``) or dropped (``alpha='drop'``).

    An unreadable image (missing, zero bytes, corrupt, unsupported) does not raise:
    the transform warns with the file name, increments :attr:`num_skipped` and
    returns ``None``, so that MMEngine's ``BaseDataset.__getitem__`` fetches another
    random sample instead (training mode; see ``ImageFolderDataset`` for test mode).

    Required keys: ``img_path``.

    Added keys: ``img`` (float32 (H, W, C)), ``ori_shape`` ((H, W)),
    ``img_shape`` ((H, W)).

    Attributes:
        num_skipped: Class-level count of images skipped as unreadable in *this
            process* (each dataloader worker has its own count). Reset with
            :meth:`reset_num_skipped`.

    Args:
        to_rgb: Expand grayscale images to 3 channels.
        alpha: ``'white'`` or ``'drop'``, see above.
    """

    num_skipped: int = 0

    def __init__(self, to_rgb: bool = True, alpha: str = 'white') -> None:
        if alpha not in _ALPHA_MODES:
            raise ValueError(f'alpha must be one of {_ALPHA_MODES}, got {alpha!r}')
        self.to_rgb = to_rgb
        self.alpha = alpha

    @classmethod
    def report_unreadable(cls, path: str, reason: str) -> None:
        """Count and warn about one unreadable image.

        Args:
            path: The image file.
            reason: Why it could not be used.
        """
        # One counter for the whole process, even if called through a subclass.
        LoadImageFromFile.num_skipped += 1
        warnings.warn(
            f'Skipping unreadable image {path!r}: {reason}. '
            f'{LoadImageFromFile.num_skipped} image(s) skipped so far in this process.',
            stacklevel=2)

    @classmethod
    def reset_num_skipped(cls) -> None:
        """Reset the class-level skip counter to zero."""
        LoadImageFromFile.num_skipped = 0

    def load(self, path: str) -> Tuple[Optional[np.ndarray], str]:
        """Read and convert one file without warning.

        Args:
            path: Image file path.

        Returns:
            ``(float32 image, '')`` or ``(None, reason)``.
        """
        raw, reason = read_image_file(path)
        if raw is None:
            return None, reason
        try:
            return to_float_rgb(raw, to_rgb=self.to_rgb, alpha=self.alpha), ''
        except ValueError as err:
            return None, str(err)

    def __call__(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``.

        Args:
            results: Data info with ``img_path``.

        Returns:
            ``results`` with ``img``, ``ori_shape`` and ``img_shape``, or ``None`` if
            the file could not be used.
        """
        path = results['img_path']
        img, reason = self.load(path)
        if img is None:
            self.report_unreadable(path, reason)
            return None
        results['img'] = img
        results['ori_shape'] = img.shape[:2]
        results['img_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(to_rgb={self.to_rgb}, alpha={self.alpha!r})'

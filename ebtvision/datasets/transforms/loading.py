"""Image loading: decode any common still-image file to float32 RGB in [0, 1].

Huge JPEGs (e.g. 10000 x 10000 px) can be decoded at 1/2, 1/4 or 1/8 of their size
by libjpeg's DCT scaling (OpenCV's ``IMREAD_REDUCED_*``), which is several times
faster and avoids a gigabyte-sized float image; see :class:`LoadImageFromFile` for
when that is done.
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np

from ebtvision.registry import TRANSFORMS
from ebtvision.utils.image_header import ImageHeaderError, read_image_header
from ..skip_report import forget_warnings, warn_once
from .processing import Resize, SizeType, _pair

_ALPHA_MODES = ('white', 'drop')

#: Reduction factors libjpeg can decode at, largest first.
_REDUCTIONS = (8, 4, 2)
_REDUCED_FLAGS = {
    (2, False): cv2.IMREAD_REDUCED_COLOR_2, (4, False): cv2.IMREAD_REDUCED_COLOR_4,
    (8, False): cv2.IMREAD_REDUCED_COLOR_8, (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4, (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
#: ``need(height, width)`` -> smallest ``(height, width)`` a decode may have.
NeedFn = Callable[[int, int], Tuple[int, int]]


class DecodedImage(NamedTuple):
    """What :func:`decode_image_file` found.

    Attributes:
        img: The decoded array (as stored: BGR(A) or grayscale; float32 RGB after
            :meth:`LoadImageFromFile.load_decoded`), or ``None``.
        reason: Why it could not be decoded (``''`` on success).
        native_hw: ``(height, width)`` of the image in the file (``None`` if unknown).
        reduction: 1, or the factor (2, 4, 8) the image was decoded smaller by.
        seconds: Decoding time (including the float conversion after
            :meth:`LoadImageFromFile.load_decoded`).
        jpeg: The file is a JPEG (so it could be decoded at reduced size).
    """

    img: Optional[np.ndarray]
    reason: str
    native_hw: Optional[Tuple[int, int]] = None
    reduction: int = 1
    seconds: float = 0.0
    jpeg: bool = False


def choose_reduction(native_hw: Tuple[int, int], need_hw: Tuple[int, int]) -> int:
    """Largest libjpeg reduction (8, 4, 2) whose output is at least ``need_hw``.

    libjpeg rounds the reduced size up; this rounds down, so the guarantee holds
    whatever the rounding.

    Args:
        native_hw: Image size in the file.
        need_hw: Smallest acceptable decoded size.

    Returns:
        8, 4, 2, or 1 (no reduction possible).
    """
    h, w = native_hw
    need_h, need_w = need_hw
    for factor in _REDUCTIONS:
        if h // factor >= need_h and w // factor >= need_w:
            return factor
    return 1


def decode_image_file(path: str, need: Optional[NeedFn] = None) -> DecodedImage:
    """Decode an image file with OpenCV, keeping bit depth and alpha.

    The bytes are read with ``np.fromfile`` and decoded with ``cv2.imdecode`` (rather
    than ``cv2.imread``) so that non-ASCII paths work on every platform.
    ``IMREAD_UNCHANGED`` keeps 16-bit samples and the alpha channel; it also means
    EXIF orientation is not applied, which does not matter for denoising.

    With ``need``, an 8-bit grayscale or colour JPEG is decoded at the largest
    reduction (1/2, 1/4, 1/8) that stays at least ``need(height, width)`` large
    (``IMREAD_REDUCED_*``, EXIF orientation still ignored). Other formats gain
    nothing from OpenCV's reduced modes (it decodes them fully, then resizes), so
    they are always decoded at full size.

    Args:
        path: Image file path.
        need: ``need(height, width)`` of the stored image -> the smallest
            ``(height, width)`` the caller can use; ``None`` decodes at full size.

    Returns:
        A :class:`DecodedImage`; its array is BGR(A) or grayscale exactly as stored.
    """
    if not osp.isfile(path):
        return DecodedImage(None, 'file does not exist')
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        return DecodedImage(None, f'cannot read file ({err})')
    if buf.size == 0:
        return DecodedImage(None, 'file is empty (0 bytes)')
    start = time.perf_counter()
    try:
        header = read_image_header(path)
    except (ImageHeaderError, OSError):
        header = None  # OpenCV decides below whether it can read the file
    if header is not None and header.format != 'JPEG':
        header = None  # only JPEGs decode faster at reduced size
    native_hw = None if header is None else (header.height, header.width)
    reduction = 1
    if need is not None and header is not None and header.bit_depth == 8 and \
            header.channels in (1, 3):
        need_hw = need(header.height, header.width)
        reduction = choose_reduction((header.height, header.width), need_hw)
    try:
        img = None
        if reduction > 1:
            flags = _REDUCED_FLAGS[(reduction, header.channels == 1)]
            img = cv2.imdecode(buf, flags | cv2.IMREAD_IGNORE_ORIENTATION)
            if img is not None and (img.shape[0] < need_hw[0] or img.shape[1] < need_hw[1]):
                img = None  # smaller than promised (never seen): decode fully instead
        if img is None:
            reduction = 1
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as err:
        return DecodedImage(None, f'OpenCV cannot decode it ({err})', native_hw)
    if img is None or img.size == 0:
        return DecodedImage(None, 'OpenCV cannot decode it (corrupt or unsupported format)',
                            native_hw)
    if native_hw is None or reduction == 1:
        native_hw = (int(img.shape[0]), int(img.shape[1]))
    return DecodedImage(img, '', native_hw, reduction, time.perf_counter() - start,
                        header is not None)


def read_image_file(path: str) -> Tuple[Optional[np.ndarray], str]:
    """Decode an image file at full size (see :func:`decode_image_file`).

    Args:
        path: Image file path.

    Returns:
        ``(array, '')`` on success, where the array is BGR(A) or grayscale exactly as
        stored, or ``(None, reason)`` on failure.
    """
    decoded = decode_image_file(path)
    return decoded.img, decoded.reason


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

    Huge JPEGs: a 10000 x 10000 photo takes seconds to decode and 1.2 GB as float,
    on every draw. A JPEG can be decoded at 1/2, 1/4 or 1/8 size for a fraction of
    that, but only when nothing downstream would see the difference, so:

    * When a :class:`Resize` follows directly (the dataset links them, see
      :func:`link_reduced_decode`; ``auto_reduce=True``), the JPEG is decoded at the
      largest reduction that is still at least as large as that Resize's output, and
      the Resize sizes its output from the file's own size (``ori_shape``). The
      result has exactly the geometry of a full-size decode, so crops after the
      Resize see the same region; only the pixel values differ slightly (libjpeg
      averages 2x2..8x8 blocks before the area resize).
    * ``decode_min_size`` asks for a reduced decode explicitly: the decode stays at
      least that large (an int: the shorter side; ``(h, w)``: both sides), whatever
      follows. Use it when the config *wants* crops at reduced scale.
    * Otherwise (e.g. a random crop at native resolution, which a reduced decode
      would change) the image is decoded fully, and an image over ``huge_pixels``
      is warned about once per file (name, size, decode time), so a slow epoch has
      a visible cause.

    A reduced decode sets ``ori_shape`` to the size in the file and ``img_shape``
    to the decoded size, and adds ``decode_reduction`` (the factor) and
    ``decoded_shape``.

    An unreadable image (missing, zero bytes, corrupt, unsupported) does not raise:
    the transform warns once per file naming it (through MMEngine's logger, so it is
    in the work dir's log), increments :attr:`num_skipped` and returns ``None``, so
    that the dataset draws another random sample instead (training mode; see
    ``ImageFolderDataset`` for test mode and ``DataSkipHook`` for per-epoch counts).

    Required keys: ``img_path``.

    Added keys: ``img`` (float32 (H, W, C)), ``ori_shape`` ((H, W)),
    ``img_shape`` ((H, W)); ``decode_reduction``, ``decoded_shape`` after a reduced
    decode.

    Attributes:
        num_skipped: Class-level count of images skipped as unreadable in *this
            process* (each dataloader worker has its own count). Reset with
            :meth:`reset_num_skipped`.
        resize_after: The :class:`Resize` this loader decodes for (set by
            :func:`link_reduced_decode`), or ``None``.

    Args:
        to_rgb: Expand grayscale images to 3 channels.
        alpha: ``'white'`` or ``'drop'``, see above.
        decode_min_size: Decode JPEGs reduced, but at least this large (see above).
            ``None``: only reduce for a directly following Resize.
        auto_reduce: Let a directly following Resize enable reduced JPEG decoding.
            False always decodes at full size (bit-exact with older runs).
        huge_pixels: Warn once per file about images of more pixels than this that
            are decoded at full size.
        cache_mb: Keep up to this many MiB of decoded images in memory (least recently
            used dropped first; per process, so per dataloader worker). For small
            datasets drawn many times, e.g. random crops of a few photos, where decoding
            is most of the pipeline's cost. Cached arrays are read-only: a later
            transform that wrote into its input would fail loudly, not corrupt the
            cache. A file changed during the run is not re-read. 0: no cache.
    """

    num_skipped: int = 0

    def __init__(self,
                 to_rgb: bool = True,
                 alpha: str = 'white',
                 decode_min_size: Optional[SizeType] = None,
                 auto_reduce: bool = True,
                 huge_pixels: int = 50_000_000,
                 cache_mb: float = 0) -> None:
        if alpha not in _ALPHA_MODES:
            raise ValueError(f'alpha must be one of {_ALPHA_MODES}, got {alpha!r}')
        if int(huge_pixels) <= 0:
            raise ValueError(f'huge_pixels must be positive, got {huge_pixels}')
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) or not (
                cache_mb >= 0):
            raise ValueError(f'cache_mb must be a number >= 0, got {cache_mb!r}')
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: 'OrderedDict[str, DecodedImage]' = OrderedDict()
        self._cached_bytes = 0
        self.to_rgb = to_rgb
        self.alpha = alpha
        self.decode_min_size = None if decode_min_size is None else _pair(decode_min_size)
        self.auto_reduce = bool(auto_reduce)
        self.huge_pixels = int(huge_pixels)
        self.resize_after: Optional[Resize] = None

    @classmethod
    def report_unreadable(cls, path: str, reason: str) -> None:
        """Count one unreadable image and warn about it (once per file per process).

        Args:
            path: The image file.
            reason: Why it could not be used.
        """
        # One counter for the whole process, even if called through a subclass.
        LoadImageFromFile.num_skipped += 1
        warn_once(('unreadable image', path), f'Skipping unreadable image {path!r}: {reason}')

    @classmethod
    def reset_num_skipped(cls) -> None:
        """Reset the class-level skip counter (and warn again about known files)."""
        LoadImageFromFile.num_skipped = 0
        forget_warnings('unreadable image')
        forget_warnings('huge image')

    def needed_size(self, height: int, width: int) -> Optional[Tuple[int, int]]:
        """Smallest decode of an image stored at ``height`` x ``width`` that is safe.

        Returns:
            ``(h, w)``, or ``None`` if this loader must decode at full size.
        """
        needs: List[Tuple[int, int]] = []
        if self.decode_min_size is not None:
            needs.append(self.decode_min_size)
        if self.resize_after is not None and self.auto_reduce:
            needs.append(self.resize_after.target_shape(height, width))
        if not needs:
            return None
        return max(n[0] for n in needs), max(n[1] for n in needs)

    def load_decoded(self, path: str) -> DecodedImage:
        """Decode (reduced when allowed), convert to float RGB and warn if huge.

        Args:
            path: Image file path.

        Returns:
            A :class:`DecodedImage` whose ``img`` is float32 RGB, or ``None`` with a
            reason.
        """
        cached = self._cache.get(path)
        if cached is not None:
            self._cache.move_to_end(path)
            return cached
        decoded = self._decode(path)
        if self.cache_bytes and decoded.img is not None:
            self._remember(path, decoded)
        return decoded

    def _remember(self, path: str, decoded: DecodedImage) -> None:
        size = decoded.img.nbytes
        if size > self.cache_bytes:
            return
        decoded.img.setflags(write=False)
        while self._cached_bytes + size > self.cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached_bytes -= dropped.img.nbytes
        self._cache[path] = decoded
        self._cached_bytes += size

    def _decode(self, path: str) -> DecodedImage:
        start = time.perf_counter()
        reducible = self.decode_min_size is not None or (self.resize_after is not None
                                                          and self.auto_reduce)
        decoded = decode_image_file(path, self.needed_size if reducible else None)
        if decoded.img is None:
            return decoded
        try:
            img = to_float_rgb(decoded.img, to_rgb=self.to_rgb, alpha=self.alpha)
        except ValueError as err:
            return decoded._replace(img=None, reason=str(err))
        decoded = decoded._replace(img=img, seconds=time.perf_counter() - start)
        h, w = img.shape[:2]
        if decoded.reduction == 1 and h * w > self.huge_pixels:
            self._warn_huge(path, decoded, reducible)
        return decoded

    def _warn_huge(self, path: str, decoded: DecodedImage, reducible: bool) -> None:
        h, w = decoded.img.shape[:2]
        if not decoded.jpeg:
            hint = 'only JPEGs can be decoded at reduced size; shrink or convert the file'
        elif reducible:
            hint = 'the pipeline needs it at (nearly) full size; shrink the file'
        else:
            hint = ('shrink the file, or put a Resize right after LoadImageFromFile '
                    '(a JPEG is then decoded at reduced size)')
        warn_once(('huge image', path),
                  f'Huge image {path!r} ({w}x{h} px) is loaded at full size on every draw '
                  f'({decoded.seconds:.1f} s here): {hint}')

    def load(self, path: str) -> Tuple[Optional[np.ndarray], str]:
        """Read and convert one file without counting a skip.

        Args:
            path: Image file path.

        Returns:
            ``(float32 image, '')`` or ``(None, reason)``.
        """
        decoded = self.load_decoded(path)
        return decoded.img, decoded.reason

    def __call__(self, results: dict) -> Optional[dict]:
        """Load ``results['img_path']``.

        Args:
            results: Data info with ``img_path``.

        Returns:
            ``results`` with ``img``, ``ori_shape`` and ``img_shape``, or ``None`` if
            the file could not be used.
        """
        path = results['img_path']
        decoded = self.load_decoded(path)
        if decoded.img is None:
            self.report_unreadable(path, decoded.reason)
            return None
        img = decoded.img
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        if decoded.reduction > 1:
            results['ori_shape'] = tuple(decoded.native_hw)
            results['decode_reduction'] = decoded.reduction
            results['decoded_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        # auto_reduce / decode_min_size change pixels, so they are part of the repr
        # (cache_mb does not).
        return (f'{self.__class__.__name__}(to_rgb={self.to_rgb}, alpha={self.alpha!r}, '
                f'decode_min_size={self.decode_min_size}, auto_reduce={self.auto_reduce})')


def link_reduced_decode(transforms: Sequence[Callable]) -> None:
    """Let each :class:`LoadImageFromFile` directly followed by a :class:`Resize` decode
    JPEGs at reduced size for it (see :class:`LoadImageFromFile`).

    Only a *directly* following Resize is used: anything in between (a crop, a flip
    that is followed by a crop...) could depend on the full-size image. Datasets that
    build their pipeline (``ImageFolderDataset``, ``ImageNetDataset``) call this.

    Args:
        transforms: Built transforms, in pipeline order.
    """
    transforms = list(transforms)
    for current, following in zip(transforms, transforms[1:]):
        if isinstance(current, LoadImageFromFile) and isinstance(following, Resize):
            current.resize_after = following


def find_image_loader(transforms: Sequence[Callable]) -> Optional[LoadImageFromFile]:
    """The first :class:`LoadImageFromFile` of a pipeline, or ``None``."""
    return next((t for t in transforms if isinstance(t, LoadImageFromFile)), None)

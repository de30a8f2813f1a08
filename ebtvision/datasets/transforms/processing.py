"""Geometric and value transforms on float32 (H, W, C) images.

All randomness comes from NumPy's global RNG so that MMEngine's seeding (which
seeds ``random``, ``numpy`` and ``torch`` in the main process and in every
dataloader worker) makes data augmentation reproducible.
"""
from typing import Sequence, Tuple, Union

import cv2
import numpy as np

from ebtvision.registry import TRANSFORMS

SizeType = Union[int, Sequence[int]]


def _pair(size: SizeType) -> Tuple[int, int]:
    """Turn ``int`` or ``(h, w)`` into a validated ``(h, w)`` tuple."""
    if isinstance(size, int):
        h = w = size
    else:
        if len(size) != 2:
            raise ValueError(f'size must be an int or (h, w), got {size!r}')
        h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f'size must be positive, got {size!r}')
    return h, w


def imresize(img: np.ndarray, out_hw: Tuple[int, int]) -> np.ndarray:
    """Resize with ``INTER_AREA`` when shrinking and ``INTER_CUBIC`` when enlarging.

    Area averaging avoids aliasing on downscale; bicubic is sharper on upscale. Its
    overshoot is clipped to the input's value range so [0, 1] images stay in [0, 1].

    Args:
        img: (H, W, C) array.
        out_hw: Target ``(height, width)``.

    Returns:
        (out_h, out_w, C) array of the same dtype.
    """
    h, w = img.shape[:2]
    out_h, out_w = out_hw
    if (out_h, out_w) == (h, w):
        return img
    # Decide by area so that mixed shrink/enlarge (e.g. squashing) is handled sensibly.
    shrinking = out_h * out_w < h * w
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(img, (out_w, out_h), interpolation=interp)
    if out.ndim == 2:  # OpenCV drops a singleton channel axis
        out = out[:, :, None]
    if interp == cv2.INTER_CUBIC:
        out = np.clip(out, img.min(), img.max())
    return out


def _fit_to_crop(img: np.ndarray, crop_hw: Tuple[int, int], pad_if_needed: bool) -> np.ndarray:
    """Make ``img`` at least ``crop_hw`` large by reflect padding or enlarging."""
    h, w = img.shape[:2]
    ch, cw = crop_hw
    if h >= ch and w >= cw:
        return img
    if pad_if_needed:
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        # Split the padding so the original content stays centred.
        top, left = pad_h // 2, pad_w // 2
        out = cv2.copyMakeBorder(img, top, pad_h - top, left, pad_w - left,
                                 cv2.BORDER_REFLECT_101)
        if out.ndim == 2:
            out = out[:, :, None]
        return out
    scale = max(ch / h, cw / w)
    new_hw = (max(ch, int(np.ceil(h * scale))), max(cw, int(np.ceil(w * scale))))
    return imresize(img, new_hw)


@TRANSFORMS.register_module()
class RandomCrop:
    """Crop a random ``size`` window.

    An image smaller than the crop is first reflect-padded (``pad_if_needed=True``;
    mirrored content, no black borders) or enlarged keeping its aspect ratio
    (``pad_if_needed=False``) so that the crop always has the requested size.

    Required keys: ``img``.

    Modified keys: ``img``, ``img_shape``.

    Added keys: ``crop_bbox`` (``(x1, y1, x2, y2)`` in the possibly padded/enlarged
    image).

    Args:
        size: Crop size, ``int`` for square or ``(h, w)``.
        pad_if_needed: Reflect-pad (True) or enlarge (False) small images.
    """

    def __init__(self, size: SizeType, pad_if_needed: bool = True) -> None:
        self.size = _pair(size)
        self.pad_if_needed = pad_if_needed

    def offset(self, h: int, w: int) -> Tuple[int, int]:
        """Top-left corner ``(y, x)`` of the crop in an ``h`` x ``w`` image."""
        ch, cw = self.size
        return np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)

    def __call__(self, results: dict) -> dict:
        """Crop ``results['img']`` at :meth:`offset`."""
        img = _fit_to_crop(results['img'], self.size, self.pad_if_needed)
        h, w = img.shape[:2]
        ch, cw = self.size
        y, x = self.offset(h, w)
        results['img'] = np.ascontiguousarray(img[y:y + ch, x:x + cw])
        results['img_shape'] = (ch, cw)
        results['crop_bbox'] = (x, y, x + cw, y + ch)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'pad_if_needed={self.pad_if_needed})')


@TRANSFORMS.register_module()
class CenterCrop(RandomCrop):
    """Crop the central ``size`` window (deterministic; for validation).

    Small images are handled as in :class:`RandomCrop`.

    Required keys: ``img``.

    Modified keys: ``img``, ``img_shape``.

    Added keys: ``crop_bbox`` (``(x1, y1, x2, y2)``).

    Args:
        size: Crop size, ``int`` for square or ``(h, w)``.
        pad_if_needed: Reflect-pad (True) or enlarge (False) small images.
    """

    def offset(self, h: int, w: int) -> Tuple[int, int]:
        ch, cw = self.size
        return (h - ch) // 2, (w - cw) // 2


@TRANSFORMS.register_module()
class Resize:
    """Resize the image (area interpolation to shrink, bicubic to enlarge).

    * ``keep_ratio=False``: resize to exactly ``size`` (``int`` means square).
    * ``keep_ratio=True`` with an ``int``: the short side becomes ``size``.
    * ``keep_ratio=True`` with ``(h, w)``: the largest aspect-preserving size that
      fits inside ``(h, w)``.

    Right after a reduced JPEG decode (``LoadImageFromFile`` adds ``decoded_shape``
    and sets ``ori_shape`` to the size in the file), the output size is computed
    from ``ori_shape``, so it is exactly what a full-size decode would give.

    Required keys: ``img``.

    Modified keys: ``img``, ``img_shape``.

    Added keys: ``scale_factor`` (``(w_scale, h_scale)``, relative to the size the
    output was computed from). Removed keys: ``decoded_shape``.

    Args:
        size: Target size, see above.
        keep_ratio: Preserve the aspect ratio.
    """

    def __init__(self, size: SizeType, keep_ratio: bool = False) -> None:
        self.keep_ratio = keep_ratio
        self.size: Union[int, Tuple[int, int]]
        if keep_ratio and isinstance(size, int):
            if size <= 0:
                raise ValueError(f'size must be positive, got {size}')
            self.size = size
        else:
            self.size = _pair(size)

    def target_shape(self, h: int, w: int) -> Tuple[int, int]:
        """Output ``(height, width)`` for an ``h`` x ``w`` input."""
        if not self.keep_ratio:
            return self.size  # type: ignore[return-value]
        if isinstance(self.size, int):
            scale = self.size / min(h, w)
        else:
            scale = min(self.size[0] / h, self.size[1] / w)
        return max(1, int(round(h * scale))), max(1, int(round(w * scale)))

    def __call__(self, results: dict) -> dict:
        """Resize ``results['img']``."""
        img = results['img']
        h, w = img.shape[:2]
        decoded = results.pop('decoded_shape', None)
        if decoded is not None and tuple(decoded) == (h, w) and 'ori_shape' in results:
            # Still the reduced decode: size the output as for the full-size image.
            h, w = (int(v) for v in results['ori_shape'])
        out_h, out_w = self.target_shape(h, w)
        results['img'] = imresize(img, (out_h, out_w))
        results['img_shape'] = (out_h, out_w)
        results['scale_factor'] = (out_w / w, out_h / h)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size}, keep_ratio={self.keep_ratio})'


_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


@TRANSFORMS.register_module()
class RandomFlip:
    """Mirror the image with probability ``prob``.

    Required keys: ``img``.

    Modified keys: ``img``.

    Added keys: ``flip`` (bool), ``flip_direction`` (str or None).

    Args:
        prob: Probability of flipping.
        direction: ``'horizontal'`` (left-right), ``'vertical'`` (up-down),
            ``'diagonal'`` (both), or a list of them to pick one uniformly.
    """

    def __init__(self,
                 prob: float = 0.5,
                 direction: Union[str, Sequence[str]] = 'horizontal') -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        directions = [direction] if isinstance(direction, str) else list(direction)
        for d in directions:
            if d not in _DIRECTIONS:
                raise ValueError(f'direction must be in {_DIRECTIONS}, got {d!r}')
        if not directions:
            raise ValueError('direction must not be empty')
        self.prob = prob
        self.direction = direction
        self._directions = directions

    def __call__(self, results: dict) -> dict:
        """Maybe flip ``results['img']``."""
        # Draw both numbers every call so the RNG stream does not depend on outcomes.
        flip = np.random.rand() < self.prob
        choice = self._directions[np.random.randint(len(self._directions))]
        results['flip'] = bool(flip)
        results['flip_direction'] = choice if flip else None
        if flip:
            img = results['img']
            if choice == 'horizontal':
                img = img[:, ::-1]
            elif choice == 'vertical':
                img = img[::-1]
            else:
                img = img[::-1, ::-1]
            results['img'] = np.ascontiguousarray(img)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, direction={self.direction!r})'


@TRANSFORMS.register_module(name=['NormalizeToSymmetric', 'ScaleToSymmetric'])
class NormalizeToSymmetric:
    """Map pixel values from [0, 1] to [-1, 1] (``x * 2 - 1``).

    Also registered as ``ScaleToSymmetric``.

    Required keys: ``img`` (float in [0, 1]).

    Modified keys: ``img`` (float32 in [-1, 1]).
    """

    def __call__(self, results: dict) -> dict:
        """Rescale ``results['img']``."""
        results['img'] = (results['img'].astype(np.float32) * 2.0 - 1.0)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'

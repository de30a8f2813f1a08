"""Video clip transforms: loading, resizing, cropping and packing.

Between transforms a clip is ``results['frames']``: uint8 RGB numpy (L, H, W, 3).
Every geometric transform applies one and the same operation to all frames of a
clip, so motion between frames is untouched. Randomness comes from NumPy's global
RNG (seeded per dataloader worker by MMEngine).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ebtvision.registry import TRANSFORMS
from ebtvision.structures import VideoDataSample
from ..skip_report import forget_warnings, warn_once
from ..video_reader import VideoReader, VideoReadError, VideoTruncatedError
from ..video_sampling import ClipSampler, VideoTooShortError
from .processing import SizeType, _pair

#: Metainfo keys of the next-frame contract (``VideoDataSample``).
VIDEO_META_KEYS = ('video_path', 'video_id', 'fps', 'frame_indices', 'num_padded',
                   'input_kind', 'sample_idx', 'label', 'template')


def _check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4:
        raise ValueError(f'{name} expects frames as an (L, H, W, C) array, got '
                         f'{getattr(frames, "shape", type(frames))}')
    return frames


@TRANSFORMS.register_module()
class LoadVideoClip:
    """Decode the frames of one clip with decord.

    The frames are either given (``frame_indices``, e.g. fixed evaluation windows
    chosen by the dataset when it probed the video) or chosen here, once the video's
    length and frame rate are known, by the dataset's ``clip_sampler`` (a
    :class:`~ebtvision.datasets.video_sampling.ClipSampler` that the dataset puts
    into the results; it samples the timeline and picks the window, e.g. a random
    start in training).

    An unusable video (missing, empty, corrupt, undecodable, or too short under
    ``short_video='skip'``) does not raise: the transform warns once per file naming
    it (through MMEngine's logger, so it is in the work dir's log), increments
    :attr:`num_skipped` and returns ``None``, so the dataset fetches another sample
    in training. (Test-mode datasets probe every video when they are built, so this
    does not happen there.)

    A truncated video keeps the frames that decode (see
    :mod:`ebtvision.datasets.video_reader`): when the reader finds the stream ends
    before the chosen window, a window chosen here by the ``clip_sampler`` is chosen
    again from the decodable length; fixed ``frame_indices`` past it skip the clip.

    Required keys: ``video_path``, and ``frame_indices`` or ``clip_sampler``.

    Optional keys: ``num_padded`` (with ``frame_indices``; default 0).

    Added keys: ``frames`` (uint8 RGB (L, H, W, 3)), ``frame_indices`` (list of L
    ints), ``num_padded``, ``fps``, ``num_frames`` (of the whole video),
    ``ori_shape`` and ``img_shape`` ((H, W)). ``clip_sampler`` is removed.

    Attributes:
        num_skipped: Class-level count of clips skipped in *this process* (each
            dataloader worker has its own). Reset with :meth:`reset_num_skipped`.

    Args:
        num_threads: decord decoding threads per video (1 suits dataloader workers).
        cache_mb: Keep up to this many MB of decoded frames in memory (least recently
            used dropped first), so small datasets read many overlapping clips of a few
            videos decode each frame once (e.g. the quick-starts). 0 disables it. Each
            dataloader worker holds its own cache.
    """

    num_skipped: int = 0

    def __init__(self, num_threads: int = 1, cache_mb: float = 0) -> None:
        self.num_threads = int(num_threads)
        if cache_mb < 0:
            raise ValueError(f'cache_mb must be >= 0, got {cache_mb}')
        self.cache_bytes = int(cache_mb * 2**20)
        self._frames: 'OrderedDict[Tuple[str, int], np.ndarray]' = OrderedDict()
        self._frames_bytes = 0
        self._video_info: Dict[str, Tuple[int, float]] = {}

    @classmethod
    def report_skipped(cls, path: str, reason: str) -> None:
        """Count one skipped video and warn (once per file per process).

        Args:
            path: The video file.
            reason: Why it was skipped.
        """
        # One counter for the whole process, even if called through a subclass.
        LoadVideoClip.num_skipped += 1
        warn_once(('skipped video', path), f'Skipping video {path!r}: {reason}')

    @classmethod
    def reset_num_skipped(cls) -> None:
        """Reset the class-level skip counter (and warn again about known files)."""
        LoadVideoClip.num_skipped = 0
        forget_warnings('skipped video')
        forget_warnings('truncated video')

    def load(self, results: dict) -> dict:
        """Like ``__call__`` but raise instead of skipping.

        Raises:
            VideoReadError: The video cannot be read (``VideoTruncatedError``: fixed
                ``frame_indices`` lie past the decodable end).
            VideoTooShortError: ``clip_sampler`` skips it as too short.
            KeyError: Neither ``frame_indices`` nor ``clip_sampler`` is given.
        """
        path = results['video_path']
        sampler: Optional[ClipSampler] = results.pop('clip_sampler', None)
        if results.get('frame_indices') is None and sampler is None:
            raise KeyError('LoadVideoClip needs "frame_indices" or a "clip_sampler" in the '
                           f'results (video {path!r}); use it inside a video dataset')
        fixed = results.get('frame_indices') is not None
        try:
            return self._load(results, sampler)
        except VideoTruncatedError:
            self._video_info.pop(path, None)
            if fixed:
                raise
            # The reader now knows the decodable length: sample the window from it.
            results['frame_indices'] = None
            return self._load(results, sampler)

    def _load(self, results: dict, sampler: Optional[ClipSampler]) -> dict:
        """One attempt of :meth:`load` (``frame_indices`` or ``sampler`` is set)."""
        path = results['video_path']
        reader = None
        if path in self._video_info:
            num_frames, fps = self._video_info[path]
        else:
            reader = VideoReader(path, num_threads=self.num_threads)
            num_frames, fps = reader.num_frames, reader.fps
            if self.cache_bytes:
                self._video_info[path] = (num_frames, fps)
        if results.get('frame_indices') is None:
            timeline = sampler.timeline(num_frames, fps)
            window = sampler.sample(len(timeline))
            results['frame_indices'] = window.frame_indices(timeline)
            results['num_padded'] = window.num_padded
        indices = [int(i) for i in results['frame_indices']]
        if self.cache_bytes:
            frames = self._read_cached(path, indices, reader)
        else:
            frames = reader.read(indices)
        results['frame_indices'] = indices
        results.setdefault('num_padded', 0)
        results['frames'] = frames
        results['fps'] = fps
        results['num_frames'] = num_frames
        results['ori_shape'] = frames.shape[1:3]
        results['img_shape'] = frames.shape[1:3]
        return results

    def _read_cached(self, path: str, indices: List[int],
                     reader: Optional[VideoReader]) -> np.ndarray:
        """Frames ``indices`` of ``path``, decoding only those not in the cache."""
        missing = sorted({i for i in indices if (path, i) not in self._frames})
        if missing:
            reader = reader or VideoReader(path, num_threads=self.num_threads)
            for index, frame in zip(missing, reader.read(missing)):
                self._frames[(path, index)] = frame
                self._frames_bytes += frame.nbytes
        frames = []
        for index in indices:
            self._frames.move_to_end((path, index))
            frames.append(self._frames[(path, index)])
        clip = np.stack(frames)
        while self._frames_bytes > self.cache_bytes and len(self._frames) > len(set(indices)):
            _, dropped = self._frames.popitem(last=False)
            self._frames_bytes -= dropped.nbytes
        return clip

    def __call__(self, results: dict) -> Optional[dict]:
        """Load the clip of ``results['video_path']``; ``None`` if unusable."""
        try:
            return self.load(results)
        except (VideoReadError, VideoTooShortError) as err:
            reason = err.reason if isinstance(err, VideoReadError) else str(err)
            self.report_skipped(results['video_path'], reason)
            return None

    def __repr__(self) -> str:
        # cache_mb is left out: it never changes the frames (the latent cache compares reprs).
        return f'{self.__class__.__name__}(num_threads={self.num_threads})'


def resize_frames(frames: np.ndarray, out_hw: Tuple[int, int]) -> np.ndarray:
    """Resize every frame of a clip to ``out_hw`` = (height, width).

    ``INTER_AREA`` when shrinking (no aliasing), ``INTER_CUBIC`` when enlarging
    (uint8 results saturate, so no clipping is needed).

    Args:
        frames: (L, H, W, C) array.
        out_hw: Target (height, width).

    Returns:
        (L, out_h, out_w, C) array of the same dtype.
    """
    h, w = frames.shape[1:3]
    out_h, out_w = out_hw
    if (out_h, out_w) == (h, w):
        return frames
    interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_CUBIC
    out = np.empty((frames.shape[0], out_h, out_w, frames.shape[3]), dtype=frames.dtype)
    for i, frame in enumerate(frames):
        resized = cv2.resize(frame, (out_w, out_h), interpolation=interp)
        out[i] = resized.reshape(out_h, out_w, -1)
    return out


@TRANSFORMS.register_module()
class VideoResize:
    """Resize all frames so that the shorter side is ``short_side``, keeping aspect.

    The longer side becomes ``round(long * short_side / short)``. Uses
    ``INTER_AREA`` when shrinking and ``INTER_CUBIC`` when enlarging.

    Required keys: ``frames``.

    Modified keys: ``frames``, ``img_shape``.

    Args:
        short_side: Target length of the shorter side, in pixels.
    """

    def __init__(self, short_side: int = 224) -> None:
        if int(short_side) <= 0:
            raise ValueError(f'short_side must be positive, got {short_side}')
        self.short_side = int(short_side)

    def target_shape(self, h: int, w: int) -> Tuple[int, int]:
        """Output (height, width) for (h, w) input frames."""
        if h <= w:
            return self.short_side, max(1, int(round(w * self.short_side / h)))
        return max(1, int(round(h * self.short_side / w))), self.short_side

    def __call__(self, results: dict) -> dict:
        frames = _check_frames(results['frames'], 'VideoResize')
        out = resize_frames(frames, self.target_shape(*frames.shape[1:3]))
        results['frames'] = out
        results['img_shape'] = out.shape[1:3]
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(short_side={self.short_side})'


def _fit_clip(frames: np.ndarray, crop_hw: Tuple[int, int]) -> np.ndarray:
    """Enlarge a clip (keeping aspect) so that it covers ``crop_hw``."""
    h, w = frames.shape[1:3]
    ch, cw = crop_hw
    if h >= ch and w >= cw:
        return frames
    scale = max(ch / h, cw / w)
    return resize_frames(frames, (max(ch, int(np.ceil(h * scale))),
                                  max(cw, int(np.ceil(w * scale)))))


@TRANSFORMS.register_module()
class VideoRandomCrop:
    """Crop one random ``size`` window, the same for every frame of the clip.

    A clip smaller than ``size`` is first enlarged (keeping aspect) to cover it.

    Required keys: ``frames``.

    Modified keys: ``frames``, ``img_shape``. Added keys: ``crop_bbox``
    ((x0, y0, x1, y1)).

    Args:
        size: Crop size, int or (h, w).
    """

    #: Not cacheable: tools/extract_latents.py replaces it by ``VideoCenterCrop``.
    is_random = True

    def __init__(self, size: SizeType) -> None:
        self.size = _pair(size)

    def _offset(self, h: int, w: int) -> Tuple[int, int]:
        ch, cw = self.size
        return np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)

    def __call__(self, results: dict) -> dict:
        frames = _fit_clip(_check_frames(results['frames'], type(self).__name__), self.size)
        h, w = frames.shape[1:3]
        top, left = (int(v) for v in self._offset(h, w))
        ch, cw = self.size
        results['frames'] = np.ascontiguousarray(frames[:, top:top + ch, left:left + cw])
        results['img_shape'] = (ch, cw)
        results['crop_bbox'] = (left, top, left + cw, top + ch)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(size={self.size})'


@TRANSFORMS.register_module()
class VideoCenterCrop(VideoRandomCrop):
    """Crop the central ``size`` window of every frame (deterministic).

    A clip smaller than ``size`` is first enlarged (keeping aspect) to cover it.

    Required keys: ``frames``.

    Modified keys: ``frames``, ``img_shape``. Added keys: ``crop_bbox``.

    Args:
        size: Crop size, int or (h, w).
    """

    is_random = False

    def _offset(self, h: int, w: int) -> Tuple[int, int]:
        ch, cw = self.size
        return (h - ch) // 2, (w - cw) // 2


@TRANSFORMS.register_module()
class PackVideoInputs:
    """Pack a clip as model inputs plus a :class:`VideoDataSample`.

    Pixels: ``frames`` (uint8 (L, H, W, 3) RGB) become ``inputs``, a contiguous
    uint8 tensor (L, 3, H, W), and ``input_kind='pixels'``. Latents (from
    ``LatentClipDataset``): ``latents`` ((L, C, h, w)) become a float32 tensor and
    ``input_kind='latents'``. The data preprocessor scales uint8 to [-1, 1].

    Required keys: ``frames`` or ``latents``.

    Output keys: ``inputs``, ``data_samples`` (metainfo from ``meta_keys`` present
    in the results; ``input_kind`` is always set).

    Args:
        meta_keys: Result keys copied into the metainfo when present. The default is
            the next-frame contract: video_path, video_id, fps, frame_indices,
            num_padded, input_kind, sample_idx, label, template.
    """

    def __init__(self, meta_keys: Sequence[str] = VIDEO_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        if 'latents' in results:
            latents = results['latents']
            if not torch.is_tensor(latents):
                latents = torch.from_numpy(np.asarray(latents))
            inputs = latents.float().contiguous()
            if inputs.dim() != 4:
                raise ValueError(f'latents must be (L, C, h, w), got {tuple(inputs.shape)}')
            results['input_kind'] = 'latents'
        elif 'frames' in results:
            frames = _check_frames(results['frames'], 'PackVideoInputs')
            if frames.dtype != np.uint8:
                raise TypeError(f'PackVideoInputs expects uint8 frames, got {frames.dtype}')
            inputs = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))
            results['input_kind'] = 'pixels'
        else:
            raise KeyError('PackVideoInputs needs "frames" (pixels) or "latents" in the results')
        metainfo = {k: results[k] for k in self.meta_keys if k in results}
        metainfo['input_kind'] = results['input_kind']
        return dict(inputs=inputs, data_samples=VideoDataSample(metainfo=metainfo))

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'

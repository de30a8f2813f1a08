"""Time-based frame sampling and clip windows for next-frame prediction.

One implementation shared by the pixel video datasets (``VideoFolderDataset``,
``SSv2Dataset``, through :class:`LoadVideoClip`) and the latent cache
(``LatentClipDataset``), so that both pick exactly the same windows.

Vocabulary:

* **timeline**: the frames a video is sampled at. With ``time_between_frames``
  seconds between samples and the video's own frame rate ``fps``, entry ``k`` is
  frame ``round(k * time_between_frames * fps)`` (rounding half up) for
  ``k = 0, 1, ...`` while it is ``< num_frames``. SSv2 videos at 12 fps sampled
  every 0.25 s give frames 0, 3, 6, ...; a 29.97 fps video gives 0, 7, 15, 22, 30, ...
  When ``time_between_frames * fps < 1`` (a video slower than the sampling rate)
  a frame can appear twice in a row: time, not frame count, is what is matched.
* **position**: an index into the timeline.
* **window**: ``clip_len`` consecutive positions (:class:`ClipWindow`), possibly
  padded at the end (see ``short_video``).
* **time_range** ``(start_frac, end_frac)``: the part of each video's timeline a
  window may use, as fractions of its length ``T``: positions
  ``round(start_frac * T) <= p < round(end_frac * T)``. Complementary ranges such
  as ``(0, 0.8)`` and ``(0.8, 1)`` never share a position, which is how the end of
  every video is held out for validation.

Short videos (fewer than ``clip_len`` positions inside the time range):

* ``short_video='pad'``: the window holds all available positions followed by
  copies of the last one; :attr:`ClipWindow.num_padded` says how many trailing
  entries are padding (models leave them out of losses and metrics).
* ``short_video='skip'``: the video is dropped (:class:`VideoTooShortError`;
  datasets warn and count).
* Either way, a video with fewer than ``min_frames`` positions inside the time
  range is always skipped: with one frame there is nothing to predict.

Randomness (``clip_start='random'``) comes from NumPy's global RNG unless a
``numpy.random.Generator`` is given, so MMEngine's per-worker seeding makes it
reproducible, as for the image transforms.
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

#: Accepted ``clip_start`` values.
CLIP_STARTS = ('random', 'first', 'center')
#: Accepted ``short_video`` policies.
SHORT_VIDEO_POLICIES = ('pad', 'skip')


class VideoTooShortError(ValueError):
    """A video has too few sampled frames for a clip under the chosen policy."""


class ClipWindow(NamedTuple):
    """A clip as positions into a video's timeline.

    Attributes:
        positions: ``clip_len`` timeline positions (non-decreasing; padding repeats
            the last real one).
        num_padded: How many trailing entries of ``positions`` are padding.
    """

    positions: Tuple[int, ...]
    num_padded: int

    def frame_indices(self, timeline: Sequence[int]) -> List[int]:
        """Return the frame indices of this window in ``timeline``."""
        return [int(timeline[p]) for p in self.positions]


def check_fps(fps: Optional[float], source: str = 'video') -> float:
    """Validate a frame rate.

    Args:
        fps: Frames per second as reported by the container.
        source: What the frame rate belongs to, for the error message.

    Returns:
        ``fps`` as a float.

    Raises:
        ValueError: ``fps`` is missing, zero, negative, NaN or infinite.
    """
    try:
        value = float(fps)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float('nan')
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{source} has no usable frame rate (fps={fps!r}); '
                         'time-based frame sampling needs it')
    return value


def sample_timeline(num_frames: int, fps: float, time_between_frames: float = 0.25) -> List[int]:
    """Frame indices of a video sampled every ``time_between_frames`` seconds.

    Args:
        num_frames: Number of frames of the video.
        fps: The video's own frame rate.
        time_between_frames: Seconds between consecutive samples.

    Returns:
        ``[round(k * time_between_frames * fps) for k = 0, 1, ...]`` while
        ``< num_frames`` (rounding half up, so the result does not depend on
        Python's banker's rounding). Empty when ``num_frames`` is 0.

    Raises:
        ValueError: Invalid ``fps`` or ``time_between_frames``.
    """
    fps = check_fps(fps)
    if not (math.isfinite(time_between_frames) and time_between_frames > 0):
        raise ValueError(f'time_between_frames must be > 0, got {time_between_frames!r}')
    if num_frames < 0:
        raise ValueError(f'num_frames must be >= 0, got {num_frames}')
    step = time_between_frames * fps
    timeline = []
    k = 0
    while True:
        # k * step (not repeated addition) keeps float error from accumulating.
        index = int(math.floor(k * step + 0.5))
        if index >= num_frames:
            return timeline
        timeline.append(index)
        k += 1


def check_time_range(time_range: Optional[Sequence[float]]) -> Optional[Tuple[float, float]]:
    """Validate ``time_range`` = ``(start_frac, end_frac)`` with 0 <= start < end <= 1."""
    if time_range is None:
        return None
    if len(time_range) != 2:
        raise ValueError(f'time_range must be (start_frac, end_frac), got {time_range!r}')
    start, end = float(time_range[0]), float(time_range[1])
    if not (0.0 <= start < end <= 1.0):
        raise ValueError(f'time_range must satisfy 0 <= start < end <= 1, got {time_range!r}')
    return start, end


def time_range_bounds(timeline_len: int,
                      time_range: Optional[Sequence[float]] = None) -> Tuple[int, int]:
    """Positions ``[lo, hi)`` of a timeline of length ``timeline_len`` inside ``time_range``.

    Both ends are rounded half up with the same formula, so the ranges
    ``(a, b)`` and ``(b, c)`` meet exactly at one boundary and never overlap.
    """
    rng = check_time_range(time_range)
    if rng is None:
        return 0, timeline_len
    lo = int(math.floor(rng[0] * timeline_len + 0.5))
    hi = int(math.floor(rng[1] * timeline_len + 0.5))
    return lo, max(lo, hi)


class ClipSampler:
    """Choose clip windows on video timelines (the shared clip logic).

    Args:
        clip_len: Frames per clip (``context + 1`` for next-frame prediction).
        time_between_frames: Seconds between sampled frames (0.25 s = 4 fps).
        clip_start: Where a single clip starts inside the allowed positions:
            ``'random'`` (uniform over all full windows; training), ``'first'`` or
            ``'center'`` (deterministic; evaluation).
        time_range: Optional ``(start_frac, end_frac)`` of each timeline to use.
        clip_stride: If set, :meth:`windows` lists every window whose start is a
            multiple of ``clip_stride`` positions (sliding windows; a tail shorter than
            a full window after the last aligned start is not listed).
        short_video: ``'pad'`` or ``'skip'``, see the module docstring.
        min_frames: Fewest timeline positions (inside ``time_range``) a video needs;
            fewer are always skipped. At least 1.

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(self,
                 clip_len: int,
                 time_between_frames: float = 0.25,
                 clip_start: str = 'random',
                 time_range: Optional[Sequence[float]] = None,
                 clip_stride: Optional[int] = None,
                 short_video: str = 'pad',
                 min_frames: int = 2) -> None:
        if int(clip_len) < 1:
            raise ValueError(f'clip_len must be >= 1, got {clip_len}')
        if not (math.isfinite(time_between_frames) and time_between_frames > 0):
            raise ValueError(f'time_between_frames must be > 0, got {time_between_frames!r}')
        if clip_start not in CLIP_STARTS:
            raise ValueError(f'clip_start must be one of {CLIP_STARTS}, got {clip_start!r}')
        if short_video not in SHORT_VIDEO_POLICIES:
            raise ValueError(
                f'short_video must be one of {SHORT_VIDEO_POLICIES}, got {short_video!r}')
        if clip_stride is not None and int(clip_stride) < 1:
            raise ValueError(f'clip_stride must be >= 1 or None, got {clip_stride}')
        if int(min_frames) < 1:
            raise ValueError(f'min_frames must be >= 1, got {min_frames}')
        self.clip_len = int(clip_len)
        self.time_between_frames = float(time_between_frames)
        self.clip_start = clip_start
        self.time_range = check_time_range(time_range)
        self.clip_stride = None if clip_stride is None else int(clip_stride)
        self.short_video = short_video
        self.min_frames = int(min_frames)

    @property
    def deterministic(self) -> bool:
        """Whether the window of a video is fixed (no random start)."""
        return self.clip_stride is not None or self.clip_start != 'random'

    def timeline(self, num_frames: int, fps: float) -> List[int]:
        """Frame indices sampled from a video, see :func:`sample_timeline`."""
        return sample_timeline(num_frames, fps, self.time_between_frames)

    def _usable(self, timeline_len: int) -> Tuple[int, int]:
        """Return the allowed positions ``[lo, hi)``, or raise if too short."""
        lo, hi = time_range_bounds(timeline_len, self.time_range)
        available = hi - lo
        where = '' if self.time_range is None else f' inside time_range {self.time_range}'
        if available < self.min_frames:
            raise VideoTooShortError(
                f'{available} sampled frame(s){where} (every {self.time_between_frames} s), '
                f'fewer than min_frames={self.min_frames}')
        if available < self.clip_len and self.short_video == 'skip':
            raise VideoTooShortError(
                f'{available} sampled frame(s){where} (every {self.time_between_frames} s), '
                f'fewer than clip_len={self.clip_len} and short_video=\'skip\'')
        return lo, hi

    def _window_at(self, start: int, hi: int) -> ClipWindow:
        stop = min(start + self.clip_len, hi)
        positions = list(range(start, stop))
        num_padded = self.clip_len - len(positions)
        positions += [positions[-1]] * num_padded
        return ClipWindow(tuple(positions), num_padded)

    def check(self, timeline_len: int) -> str:
        """Return why a timeline of this length is skipped, or ``''`` if usable."""
        try:
            self._usable(timeline_len)
        except VideoTooShortError as err:
            return str(err)
        return ''

    def sample(self,
               timeline_len: int,
               rng: Optional[np.random.Generator] = None) -> ClipWindow:
        """Choose one window according to ``clip_start``.

        Args:
            timeline_len: Length of the video's timeline.
            rng: Random generator for ``'random'``; NumPy's global RNG if None.

        Returns:
            The window.

        Raises:
            VideoTooShortError: The video is skipped under the short-video policy.
        """
        lo, hi = self._usable(timeline_len)
        num_starts = max(1, hi - lo - self.clip_len + 1)
        if self.clip_start == 'first':
            offset = 0
        elif self.clip_start == 'center':
            offset = (num_starts - 1) // 2
        elif rng is None:
            offset = int(np.random.randint(num_starts))
        else:
            offset = int(rng.integers(num_starts))
        return self._window_at(lo + offset, hi)

    def windows(self, timeline_len: int) -> List[ClipWindow]:
        """All windows of a video: sliding ones if ``clip_stride`` is set.

        Without ``clip_stride`` this is the single deterministic window (for
        ``'first'``/``'center'``); it must not be called for ``'random'``.

        Raises:
            VideoTooShortError: The video is skipped under the short-video policy.
            RuntimeError: No ``clip_stride`` and ``clip_start='random'``.
        """
        if self.clip_stride is None:
            if self.clip_start == 'random':
                raise RuntimeError('a random clip start has no fixed window; use sample()')
            return [self.sample(timeline_len)]
        lo, hi = self._usable(timeline_len)
        last_start = max(lo, hi - self.clip_len)
        return [self._window_at(s, hi) for s in range(lo, last_start + 1, self.clip_stride)]

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(clip_len={self.clip_len}, '
                f'time_between_frames={self.time_between_frames}, '
                f'clip_start={self.clip_start!r}, time_range={self.time_range}, '
                f'clip_stride={self.clip_stride}, short_video={self.short_video!r}, '
                f'min_frames={self.min_frames})')

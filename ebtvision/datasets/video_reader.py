"""Reading frames of a video file with decord, with one error type for every failure.

Every way a video can be unusable (missing, empty, corrupt, no frames, no frame rate,
a decode failure in the middle) raises :class:`VideoReadError` naming the file and the
cause, so datasets catch one exception, warn and skip the video.

Truncated or damaged files (a download cut short, a copy that ran out of disk) keep
the frames that decode: when decord cannot open a file or decode its frames, OpenCV
reads the stream sequentially and the video's length becomes the number of frames
that decode (the last one decoded is left out when the stream ends early: its data
is cut off, so it decodes to garbage). One warning names the file and that length.
A reader that learns the real length while reading raises
:class:`VideoTruncatedError`, so the caller can choose its clip again.

Where decord is not installed (it has no wheels for aarch64 or Apple Silicon), every
video is read that OpenCV way, with one warning per process.
"""
import math
import os
import os.path as osp
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .skip_report import warn_once


class VideoReadError(RuntimeError):
    """A video cannot be used.

    Attributes:
        path: The video file.
        reason: Why it cannot be used.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f'cannot read video {path!r}: {reason}')
        self.path = path
        self.reason = reason


class VideoTruncatedError(VideoReadError):
    """Frames past the decodable end of a truncated or damaged video were asked for.

    Attributes:
        num_frames: How many frames do decode (the length to sample clips from).
    """

    def __init__(self, path: str, reason: str, num_frames: int) -> None:
        super().__init__(path, reason)
        self.num_frames = num_frames


# Per process: what was learnt about damaged files, keyed by (path, size, mtime) so a
# replaced file is looked at again. Decodable lengths of truncated files, and the
# OpenCV probe of files decord cannot open (num_frames, fps).
_decodable_frames: Dict[Tuple[str, int, int], int] = {}
_opencv_only: Dict[Tuple[str, int, int], Tuple[int, float]] = {}


def _file_key(path: str) -> Tuple[str, int, int]:
    stat = os.stat(path)
    return osp.abspath(path), int(stat.st_size), int(stat.st_mtime_ns)


def _usable_length(decoded: int, claimed: int) -> int:
    """Frames to use of a stream that decoded ``decoded`` frames of ``claimed``."""
    if 0 < decoded < claimed:
        # The stream ended early: the last frame's data is cut off (it decodes to a
        # partly grey or smeared picture), so only the ones before it are trusted.
        return max(1, decoded - 1)
    return decoded


def _warn_truncated(path: str, claimed: int, usable: int, how: str) -> None:
    total = f'{claimed}' if claimed > 0 else 'an unknown number of'
    warn_once(('truncated video', path),
              f'Video {path!r} is truncated or damaged ({how}): only the first {usable} of '
              f'its {total} frame(s) decode intact; clips are sampled from those')


class VideoInfo(NamedTuple):
    """Cheap metadata of a video (read from the container, nothing decoded)."""

    num_frames: int
    fps: float


def _first_line(err: BaseException) -> str:
    # decord's messages carry long C++ stack traces; the first line says what happened.
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _import_decord():
    """decord, or ``None`` where it is not installed: it has no wheels for aarch64 or
    Apple Silicon, where the [video] extra leaves it out; OpenCV reads the videos then."""
    from ebtvision.utils.optional import try_import
    decord = try_import('decord')
    if decord is None:
        warn_once(('decord not installed', ),
                  'decord is not installed: videos are read with OpenCV instead, which '
                  'decodes each file once to count its frames and every clip from the '
                  "file's start (slower); where decord has wheels (x86_64), "
                  "pip install 'decord>=0.6'")
        return None
    # Native NDArrays converted with .asnumpy(): independent of other bridges a user
    # may have set for torch/mxnet.
    decord.bridge.set_bridge('native')
    return decord


class VideoReader:
    """A decord ``VideoReader`` that raises :class:`VideoReadError` on any failure.

    A file decord cannot open is read with OpenCV instead (decoded once at opening to
    count the frames that decode, then sequentially on each read); see the module
    docstring for truncated files. :attr:`num_frames` is always the number of frames
    that can be read.

    Args:
        path: Video file.
        num_threads: Decoder threads (1 in dataloader workers, which already run in
            parallel; 0 lets decord use all cores).
        width: Decode straight to this width (-1 keeps the original). Together with
            ``height`` this lets FFmpeg scale while decoding, which is faster than
            resizing afterwards.
        height: Decode straight to this height (-1 keeps the original).

    Raises:
        VideoReadError: The file is missing or empty, decord cannot open it, it has no
            frames or no valid frame rate.
    """

    def __init__(self,
                 path: str,
                 num_threads: int = 1,
                 width: int = -1,
                 height: int = -1) -> None:
        self.path = path
        if not osp.isfile(path):
            raise VideoReadError(path, 'file does not exist')
        if osp.getsize(path) == 0:
            raise VideoReadError(path, 'file is empty (0 bytes)')
        self.width, self.height = int(width), int(height)
        key = _file_key(path)
        self._reader = None
        probe = _opencv_only.get(key)
        decord = _import_decord() if probe is None else None
        if probe is None and decord is None:
            probe = _probe_with_opencv(path, decord_installed=False)
            if probe is None:
                raise VideoReadError(path, 'OpenCV cannot decode it (corrupt or unsupported; '
                                     'decord is not installed)')
            _opencv_only[key] = probe
        elif probe is None:
            try:
                self._reader = decord.VideoReader(
                    path, num_threads=num_threads, width=width, height=height)
                num_frames = len(self._reader)
                fps = self._reader.get_avg_fps()
            except Exception as err:  # decord raises RuntimeError / DECORDError
                self._reader = None
                probe = _probe_with_opencv(path)
                if probe is None:
                    raise VideoReadError(
                        path, f'decord cannot open it (corrupt or unsupported): '
                        f'{_first_line(err)}; OpenCV cannot decode it either') from err
                _opencv_only[key] = probe
        if self._reader is None:
            num_frames, fps = probe
        elif key in _decodable_frames:
            num_frames = min(num_frames, _decodable_frames[key])
        if num_frames <= 0:
            raise VideoReadError(path, 'it has no video frames')
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            fps = float('nan')
        if not math.isfinite(fps) or fps <= 0:
            raise VideoReadError(path, f'frame rate is missing or invalid (fps={fps!r}); '
                                 'time-based frame sampling needs it')
        self._key = key
        self.num_frames = int(num_frames)
        self.fps = fps

    @property
    def backend(self) -> str:
        """``'decord'``, or ``'opencv'`` for a file decord cannot open."""
        return 'opencv' if self._reader is None else 'decord'

    @property
    def info(self) -> VideoInfo:
        """``VideoInfo(num_frames, fps)``."""
        return VideoInfo(self.num_frames, self.fps)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Decode frames.

        Repeated indices (padding, or timelines slower than the video) are decoded
        once.

        Args:
            indices: Frame indices, each in ``[0, num_frames)``.

        Returns:
            uint8 RGB array (len(indices), H, W, 3).

        Raises:
            VideoTruncatedError: The stream ends before an index (a truncated file
                whose container claims more frames); :attr:`num_frames` is now the
                decodable length, so choose the frames again.
            VideoReadError: An index is out of range or decoding fails.
        """
        indices = [int(i) for i in indices]
        if not indices:
            raise VideoReadError(self.path, 'no frame indices to read')
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise VideoReadError(
                self.path, f'frame indices {bad[:5]} out of range: it has {self.num_frames} '
                f'frame(s)')
        unique = sorted(set(indices))
        if self._reader is None:
            frames = self._read_opencv(unique, None)
        else:
            try:
                frames = self._reader.get_batch(unique).asnumpy()
            except Exception as err:
                # decord 0.6 fails on some frame widths (e.g. 48 px: "size must exactly
                # match") although the stream is fine, and on damaged streams; OpenCV
                # decodes the former and finds where the latter stop.
                frames = self._read_opencv(unique, err)
        if frames.ndim != 4 or frames.shape[0] != len(unique) or frames.shape[-1] != 3:
            raise VideoReadError(self.path, f'decoder returned frames of shape {frames.shape}, '
                                 f'expected ({len(unique)}, H, W, 3)')
        if len(unique) != len(indices) or unique != indices:
            where = {index: row for row, index in enumerate(unique)}
            frames = frames[[where[i] for i in indices]]
        return np.ascontiguousarray(frames, dtype=np.uint8)


    def _read_opencv(self, unique: Sequence[int], err: Optional[BaseException]) -> np.ndarray:
        """Frames ``unique`` (sorted) read sequentially with OpenCV.

        Raises:
            VideoTruncatedError: The stream ends before the last of them; the reader's
                :attr:`num_frames` is then the decodable length.
            VideoReadError: OpenCV cannot open the file.
        """
        frames, decoded = _read_with_opencv(self.path, unique)
        if frames is None:
            cause = f': {_first_line(err)}' if err is not None else ''
            if decoded == 0:
                raise VideoReadError(
                    self.path, f'decoding frames {unique[0]}..{unique[-1]} failed (corrupt '
                    f'stream?){cause}') from err
            usable = _usable_length(decoded, self.num_frames)
            _decodable_frames[self._key] = usable
            _warn_truncated(self.path, self.num_frames, usable, 'the stream ends early')
            self.num_frames = usable
            raise VideoTruncatedError(
                self.path, f'frames {unique[0]}..{unique[-1]} asked for, but only {usable} '
                f'frame(s) decode (truncated stream)', usable) from err
        if self.width > 0 or self.height > 0:
            frames = _resize_like_decord(frames, self.width, self.height)
        return frames


def _resize_like_decord(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize OpenCV-read frames to the ``width``/``height`` decord would decode to."""
    import cv2
    h, w = frames.shape[1:3]
    out_w = width if width > 0 else max(1, int(round(w * height / h)))
    out_h = height if height > 0 else max(1, int(round(h * width / w)))
    if (out_h, out_w) == (h, w):
        return frames
    interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (out_w, out_h), interpolation=interp) for f in frames])


def _read_with_opencv(path: str, indices: Sequence[int]) -> Tuple[Optional[np.ndarray], int]:
    """Decode sorted unique ``indices`` by reading the stream sequentially with OpenCV.

    Sequential reading (no seeking) gives exact frame indices for every codec.

    Returns:
        ``(uint8 RGB (len(indices), H, W, 3), frames decoded)``, or ``(None, n)`` if
        the stream ends (or cannot be opened: ``n == 0``) after ``n`` frames, before
        the last index.
    """
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        return None, 0
    wanted, frames, index = set(indices), [], 0
    try:
        while index <= indices[-1]:
            ok, frame = cap.read()
            if not ok or frame is None:
                return None, index
            if index in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        cap.release()
    return np.stack(frames), index


def _probe_with_opencv(path: str,
                       decord_installed: bool = True) -> Optional[Tuple[int, float]]:
    """``(usable frames, fps)`` of a file decord cannot open (or of any file where decord
    is not installed), by decoding it all.

    Only runs once per file and process (the result is cached by the caller). Warns
    once naming a damaged file and its usable length (and, with ``decord_installed``, a
    file decord cannot open).

    Returns:
        ``None`` if OpenCV cannot open it or decodes no frame.
    """
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        return None
    try:
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        decoded = 0
        while cap.grab():  # grab() decodes without the colour conversion
            decoded += 1
    finally:
        cap.release()
    if decoded == 0:
        return None
    usable = _usable_length(decoded, claimed)
    if usable < claimed:
        _warn_truncated(path, claimed, usable, 'decord cannot open it, read with OpenCV'
                        if decord_installed else 'read with OpenCV')
    elif decord_installed:  # without decord, one warning for the process says it all
        warn_once(('truncated video', path),
                  f'Video {path!r}: decord cannot open it; reading its {usable} frame(s) with '
                  'OpenCV instead (slower)')
    return usable, fps


def probe_video(path: str, decode: Optional[Sequence[int]] = None) -> VideoInfo:
    """Open a video, read its metadata and optionally decode some frames.

    Args:
        path: Video file.
        decode: Frame indices to decode as a readability check (e.g. the frames a
            clip will use); ``None`` only opens the container (cheap).

    Returns:
        ``VideoInfo(num_frames, fps)``.

    Raises:
        VideoReadError: The video cannot be used.
    """
    reader = VideoReader(path)
    if decode is not None and len(decode):
        reader.read(decode)
    return reader.info

"""Reading frames of a video file with decord, with one error type for every failure.

Every way a video can be unusable (missing, empty, corrupt, no frames, no frame rate,
a decode failure in the middle) raises :class:`VideoReadError` naming the file and the
cause, so datasets catch one exception, warn and skip the video.
"""
import math
import os.path as osp
from typing import NamedTuple, Optional, Sequence

import numpy as np


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


class VideoInfo(NamedTuple):
    """Cheap metadata of a video (read from the container, nothing decoded)."""

    num_frames: int
    fps: float


def _first_line(err: BaseException) -> str:
    # decord's messages carry long C++ stack traces; the first line says what happened.
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def _import_decord():
    try:
        import decord
    except ImportError as err:  # pragma: no cover - decord is a core dependency
        raise ImportError('reading videos needs decord: pip install decord') from err
    # Native NDArrays converted with .asnumpy(): independent of other bridges a user
    # may have set for torch/mxnet.
    decord.bridge.set_bridge('native')
    return decord


class VideoReader:
    """A decord ``VideoReader`` that raises :class:`VideoReadError` on any failure.

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
        decord = _import_decord()
        try:
            self._reader = decord.VideoReader(
                path, num_threads=num_threads, width=width, height=height)
            num_frames = len(self._reader)
            fps = self._reader.get_avg_fps()
        except Exception as err:  # decord raises RuntimeError / DECORDError
            raise VideoReadError(
                path, f'decord cannot open it (corrupt or unsupported): {_first_line(err)}'
            ) from err
        if num_frames <= 0:
            raise VideoReadError(path, 'it has no video frames')
        try:
            fps = float(fps)
        except (TypeError, ValueError):
            fps = float('nan')
        if not math.isfinite(fps) or fps <= 0:
            raise VideoReadError(path, f'frame rate is missing or invalid (fps={fps!r}); '
                                 'time-based frame sampling needs it')
        self.num_frames = int(num_frames)
        self.fps = fps

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
        try:
            frames = self._reader.get_batch(unique).asnumpy()
        except Exception as err:
            # decord 0.6 fails on some frame widths (e.g. 48 px: "size must exactly
            # match") although the stream is fine; OpenCV decodes those.
            frames = _read_with_opencv(self.path, unique)
            if frames is None:
                raise VideoReadError(
                    self.path, f'decoding frames {unique[0]}..{unique[-1]} failed (truncated '
                    f'or corrupt stream?): {_first_line(err)}') from err
        if frames.ndim != 4 or frames.shape[0] != len(unique) or frames.shape[-1] != 3:
            raise VideoReadError(self.path, f'decoder returned frames of shape {frames.shape}, '
                                 f'expected ({len(unique)}, H, W, 3)')
        if len(unique) != len(indices) or unique != indices:
            where = {index: row for row, index in enumerate(unique)}
            frames = frames[[where[i] for i in indices]]
        return np.ascontiguousarray(frames, dtype=np.uint8)


def _read_with_opencv(path: str, indices: Sequence[int]) -> Optional[np.ndarray]:
    """Decode sorted unique ``indices`` by reading the stream sequentially with OpenCV.

    Sequential reading (no seeking) gives exact frame indices for every codec.

    Returns:
        uint8 RGB (len(indices), H, W, 3), or ``None`` if OpenCV cannot decode them all.
    """
    import cv2
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        return None
    wanted, frames, index = set(indices), [], 0
    try:
        while index <= indices[-1]:
            ok, frame = cap.read()
            if not ok or frame is None:
                return None
            if index in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1
    finally:
        cap.release()
    return np.stack(frames)


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

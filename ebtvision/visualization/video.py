"""Rollout videos (ground truth beside prediction) and per-frame energy/error plots.

Used by ``demo/predict_video.py``; reusable by anything that has real frames, predicted
frames and per-frame numbers. Frames are (H, W, 3) uint8 RGB arrays throughout; use
:func:`~ebtvision.visualization.frames.to_uint8_hwc` for [-1, 1] tensors.
"""
import os
import os.path as osp
from fractions import Fraction
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

#: Border / label colours (RGB): real conditioning frames, ground truth of predicted
#: frames, predicted frames.
CONTEXT_COLOR = (70, 140, 255)
TRUTH_COLOR = (60, 190, 90)
PREDICTION_COLOR = (255, 140, 0)

#: Containers :func:`save_video` writes, by extension.
VIDEO_FORMATS = ('.mp4', '.gif')


def _check_rgb(frame: np.ndarray, what: str) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f'{what} must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}')
    return frame


def _even(value: float) -> int:
    # Video encoders want even sizes (4:2:0 chroma subsampling).
    return max(2, 2 * int(round(value / 2)))


def upscale(frame: np.ndarray, height: int, width: Optional[int] = None) -> np.ndarray:
    """Resize a frame to ``height`` (and ``width``; default: keep the aspect ratio).

    Enlarging uses nearest neighbour (crisp pixels: what the model actually sees at
    low resolution), shrinking uses area averaging.
    """
    frame = _check_rgb(frame, 'frame')
    h, w = frame.shape[:2]
    if width is None:
        width = _even(height * w / h)
    if (h, w) == (height, width):
        return frame
    interpolation = cv2.INTER_NEAREST if height >= h else cv2.INTER_AREA
    return cv2.resize(frame, (width, height), interpolation=interpolation)


def _put_text(canvas: np.ndarray, text: str, x: int, y: int, scale: float,
              color: Sequence[int]) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in color),
                1, cv2.LINE_AA)


def labelled_panel(frame: np.ndarray, label: str, color: Sequence[int], height: int,
                   width: int, border: int = 4, band: int = 22) -> np.ndarray:
    """One panel: a dark label band on top, then the upscaled frame in a coloured border.

    Returns:
        (band + height + 2 * border, width + 2 * border, 3) uint8.
    """
    body = np.pad(upscale(frame, height, width), ((border, border), (border, border), (0, 0)),
                  mode='constant')
    if border > 0:
        body[:border], body[-border:], body[:, :border], body[:, -border:] = (color, ) * 4
    top = np.full((band, body.shape[1], 3), 24, np.uint8)
    scale = min(0.5, band / 44)
    _put_text(top, label, border + 2, band - max(5, band // 4), scale, color)
    return np.concatenate([top, body], axis=0)


def side_by_side_frames(truth: Sequence[np.ndarray],
                        prediction: Sequence[np.ndarray],
                        num_context: int,
                        height: int = 192,
                        times: Optional[Sequence[float]] = None,
                        border: int = 4,
                        band: int = 22,
                        bar: int = 6) -> List[np.ndarray]:
    """Compose the frames of a rollout video: ground truth left, prediction right.

    The first ``num_context`` frames are the real conditioning frames, shown on both
    sides with a blue border and the label ``context``; after them the left panel
    shows the real future (green) and the right one the prediction (orange, labelled
    ``pred +k``). A progress bar at the bottom (blue over the context, orange over the
    prediction) also keeps every frame distinct, so GIF writers do not merge frames.

    Args:
        truth: The ``T`` real frames, (H, W, 3) uint8 each.
        prediction: The ``T - num_context`` predicted frames (same size as ``truth``).
        num_context: Conditioning frames at the start of ``truth``.
        height: Displayed frame height in pixels (upscaled; width keeps the aspect).
        times: Optional time (s) of each frame, shown in the left label.
        border: Border width in pixels.
        band: Height of the label band.
        bar: Height of the progress bar.

    Returns:
        ``T`` frames of (band + height + 2 * border + bar, 2 * (width + 2 * border), 3).
    """
    truth = [_check_rgb(f, 'ground-truth frame') for f in truth]
    prediction = [_check_rgb(f, 'predicted frame') for f in prediction]
    total = len(truth)
    if not 0 < num_context <= total or len(prediction) != total - num_context:
        raise ValueError(f'need num_context in [1, {total}] and {total - num_context} predicted '
                         f'frames; got num_context={num_context}, {len(prediction)} predicted')
    shapes = {f.shape for f in truth + prediction}
    if len(shapes) > 1:
        raise ValueError(f'frames must share one shape, got {sorted(shapes)}')
    if times is not None and len(times) != total:
        raise ValueError(f'times has {len(times)} entries for {total} frames')
    h, w = truth[0].shape[:2]
    width = _even(height * w / h)
    out = []
    for index in range(total):
        when = '' if times is None else f' {times[index]:.2f}s'
        if index < num_context:
            left = labelled_panel(truth[index], f'context{when}', CONTEXT_COLOR, height, width,
                                  border, band)
            right = labelled_panel(truth[index], f'context {index + 1}/{num_context}',
                                   CONTEXT_COLOR, height, width, border, band)
        else:
            left = labelled_panel(truth[index], f'real{when}', TRUTH_COLOR, height, width,
                                  border, band)
            right = labelled_panel(prediction[index - num_context],
                                   f'pred +{index - num_context + 1}', PREDICTION_COLOR,
                                   height, width, border, band)
        frame = np.concatenate([left, right], axis=1)
        progress = np.full((bar, frame.shape[1], 3), 40, np.uint8)
        split = frame.shape[1] * num_context // total
        done = frame.shape[1] * (index + 1) // total
        progress[:, :min(done, split)] = CONTEXT_COLOR
        if done > split:
            progress[:, split:done] = PREDICTION_COLOR
        out.append(np.ascontiguousarray(np.concatenate([frame, progress], axis=0)))
    return out


#: H.264 settings: CRF 18 is visually lossless for these crisp, upscaled panels (x264's
#: default 23 smears the thin borders and labels); yuv420p is the only pixel format that
#: every browser (and so Gradio's video player) decodes. The colour tags name the BT.601
#: matrix that the RGB -> YUV conversion uses, so that players do not guess BT.709.
H264_OPTIONS = {'crf': '18', 'preset': 'medium', 'colorspace': 'smpte170m',
                'color_range': 'tv', 'color_primaries': 'bt709', 'color_trc': 'bt709'}
def _h264_module():
    """PyAV, checked to have the libx264 encoder; one clear error line otherwise."""
    from ebtvision.utils.optional import require
    av = require('av', 'writing .mp4 (H.264; or write a .gif)')
    if 'libx264' not in av.codecs_available:
        raise RuntimeError(f'PyAV {av.__version__} has no libx264 encoder: install a PyAV '
                           'build with it (the PyPI wheels have it), or write a .gif')
    return av


def check_video_writer(path: str) -> None:
    """Fail early, before any work, when :func:`save_video` could not write ``path``.

    Raises:
        ValueError: The extension is not one of :data:`VIDEO_FORMATS`.
        ImportError: An .mp4 is asked for and PyAV is not installed.
        RuntimeError: PyAV is installed without the libx264 encoder.
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in VIDEO_FORMATS:
        raise ValueError(f'cannot write {path!r}: the extension must be one of {VIDEO_FORMATS}')
    if ext == '.mp4':
        _h264_module()


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    # 4:2:0 chroma has one sample per 2x2 pixels, so x264 refuses odd sizes; repeating
    # the last row/column keeps every pixel of the picture.
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode='edge')


def _write_h264(frames: Sequence[np.ndarray], path: str, fps: float) -> None:
    av = _h264_module()
    height, width = _pad_to_even(frames[0]).shape[:2]
    # +faststart puts the index first, so browsers start playing before the whole file loads.
    container = av.open(path, mode='w', format='mp4', options={'movflags': '+faststart'})
    try:
        stream = container.add_stream('libx264', rate=Fraction(fps).limit_denominator(1001),
                                      options=dict(H264_OPTIONS))
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        for frame in frames:
            # The encoder converts rgb24 to the stream's yuv420p.
            picture = av.VideoFrame.from_ndarray(_pad_to_even(frame), format='rgb24')
            container.mux(stream.encode(picture))
        container.mux(stream.encode())  # flush the frames x264 holds back for B-frames
    finally:
        container.close()


def save_video(frames: Sequence[np.ndarray], path: str, fps: float) -> str:
    """Write RGB frames as an H.264 .mp4 (PyAV) or an animated .gif (Pillow, looping).

    The .mp4 is H.264 in yuv420p at CRF 18, what browsers and Gradio play; a frame with
    an odd height or width gets its last row/column repeated (the video is then one
    pixel larger). The file is written under a temporary name and renamed, so a failure
    never leaves a half-written video at ``path``.

    Args:
        frames: (H, W, 3) uint8 RGB frames of one size.
        path: Output file; the extension picks the format.
        fps: Frames per second.

    Returns:
        ``path``.

    Raises:
        ValueError: Unknown extension, no frames, frames of different sizes, fps <= 0.
        ImportError: An .mp4 without PyAV installed (the ``video`` extra).
        RuntimeError: PyAV without the libx264 encoder.
    """
    check_video_writer(path)
    ext = osp.splitext(path)[1].lower()
    frames = [_check_rgb(f, 'video frame') for f in frames]
    if not frames:
        raise ValueError(f'no frames to write to {path!r}')
    if len({f.shape for f in frames}) > 1:
        raise ValueError(f'frames written to {path!r} must share one size')
    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}{ext}'
    try:
        if ext == '.mp4':
            _write_h264(frames, tmp, fps)
        else:
            from PIL import Image
            images = [Image.fromarray(f) for f in frames]
            # GIF delays are in 1/100 s; Pillow takes milliseconds.
            images[0].save(tmp, format='GIF', save_all=True, append_images=images[1:],
                           duration=max(20, int(round(1000 / fps))), loop=0, optimize=False)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def plot_rollout_curves(path: str,
                        errors: Sequence[float],
                        copy_last_errors: Sequence[float],
                        energies: Optional[Sequence[float]] = None,
                        times: Optional[Sequence[float]] = None,
                        title: str = '',
                        error_name: str = 'latent smooth-L1') -> str:
    """Plot per-predicted-frame energy (when given) and error vs the copy-last baseline.

    Args:
        path: Output PNG.
        errors: Error of each predicted frame against the ground truth.
        copy_last_errors: Error of repeating the last context frame instead.
        energies: Final energy of each predicted frame (the EBT's uncertainty); None
            for models without energies (then only the error panel is drawn).
        times: x values (seconds after the last context frame); default 1..N.
        title: Figure title.
        error_name: Label of the error axis.

    Returns:
        ``path``.
    """
    import matplotlib
    matplotlib.use('Agg', force=False)  # no display needed; keeps an already chosen backend
    import matplotlib.pyplot as plt

    count = len(errors)
    if len(copy_last_errors) != count or (energies is not None and len(energies) != count):
        raise ValueError('errors, copy_last_errors and energies need one value per frame')
    x = list(times) if times is not None else list(range(1, count + 1))
    xlabel = 'seconds after the last context frame' if times is not None else 'predicted frame'
    rows = 2 if energies is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(6.4, 2.6 * rows + 0.6), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]
    if energies is not None:
        axes[0].plot(x, energies, 'o-', color=np.array(PREDICTION_COLOR) / 255)
        axes[0].set_ylabel('final energy')
        axes[0].set_title('energy per predicted frame (the model\'s uncertainty)', fontsize=9)
        axes[0].grid(alpha=0.3)
    ax = axes[-1]
    ax.plot(x, errors, 'o-', color=np.array(PREDICTION_COLOR) / 255, label='prediction')
    ax.plot(x, copy_last_errors, 's--', color='0.45', label='copy last context frame')
    ax.set_ylabel(error_name)
    ax.set_xlabel(xlabel)
    ax.set_title(f'{error_name} vs ground truth', fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}.png'
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def read_video_frames(path: str) -> Dict[str, object]:
    """Read back a video written by :func:`save_video` (for checks and tests).

    Returns:
        ``{'frames': (N, H, W, 3) uint8 RGB, 'fps': float}``.
    """
    ext = osp.splitext(path)[1].lower()
    if ext == '.gif':
        from PIL import Image, ImageSequence
        with Image.open(path) as image:
            duration = image.info.get('duration', 100)
            frames = [np.asarray(f.convert('RGB')) for f in ImageSequence.Iterator(image)]
        return dict(frames=np.stack(frames), fps=1000.0 / duration if duration else 0.0)
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise RuntimeError(f'OpenCV cannot open {path!r}')
    fps = capture.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise RuntimeError(f'{path!r} holds no readable frames')
    return dict(frames=np.stack(frames), fps=float(fps))

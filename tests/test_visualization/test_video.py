"""Rollout videos (side-by-side panels, H.264 mp4 / gif round trips) and the energy plot."""
import sys

import cv2
import numpy as np
import pytest

from ebtvision.visualization import video as video_module
from ebtvision.visualization.video import (CONTEXT_COLOR, PREDICTION_COLOR, TRUTH_COLOR,
                                           check_video_writer, plot_rollout_curves,
                                           read_video_frames, save_video, side_by_side_frames)


def frames(count, size=(16, 24), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def test_side_by_side_layout_and_context_marking():
    truth, pred = frames(5), frames(2, seed=1)
    out = side_by_side_frames(truth, pred, num_context=3, height=32, border=2, band=10, bar=4)
    assert len(out) == 5
    # 16x24 frames shown 32 px high -> 48 px wide, plus a 2 px border on each side.
    assert {f.shape for f in out} == {(10 + 32 + 4 + 4, 2 * (48 + 4), 3)}
    left_border, right_border = (10, 0), (10, 52)  # top-left corners of the two panels
    for index in range(3):  # context: real frame on both sides, blue borders
        assert tuple(out[index][left_border]) == CONTEXT_COLOR
        assert tuple(out[index][right_border]) == CONTEXT_COLOR
        np.testing.assert_array_equal(out[index][12:44, 2:50], out[index][12:44, 54:102])
    for index in (3, 4):
        assert tuple(out[index][left_border]) == TRUTH_COLOR
        assert tuple(out[index][right_border]) == PREDICTION_COLOR
        # nearest-neighbour upscaling: each source pixel is a 2x2 block
        np.testing.assert_array_equal(out[index][12:44:2, 54:102:2], pred[index - 3])
        np.testing.assert_array_equal(out[index][12:44:2, 2:50:2], truth[index])
    with pytest.raises(ValueError, match='predicted'):
        side_by_side_frames(truth, pred, num_context=2)


@pytest.mark.parametrize('ext', ['.mp4', '.gif'])
def test_save_video_round_trip_keeps_every_frame(tmp_path, ext):
    # A static scene: identical panels in every frame; the progress bar keeps frames
    # distinct so that the GIF writer does not merge them.
    still = frames(1)[0]
    out = side_by_side_frames([still] * 6, [still] * 2, num_context=4, height=32)
    path = str(tmp_path / f'clip{ext}')
    assert save_video(out, path, fps=4.0) == path
    back = read_video_frames(path)
    assert back['frames'].shape == (6, *out[0].shape)
    assert back['fps'] == pytest.approx(4.0, rel=0.01)
    # Lossy codecs: close to the input, not equal.
    assert np.abs(back['frames'].astype(int) - np.stack(out)).mean() < 12
    assert [p.name for p in tmp_path.iterdir()] == [f'clip{ext}']  # no temp file left


def probe_mp4(path):
    """What a browser's decoder sees: codec, pixel format, size, rate and RGB frames."""
    av = pytest.importorskip('av')
    with av.open(path) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        info = dict(codec=context.name, pix_fmt=context.pix_fmt, size=(context.height,
                    context.width), rate=float(stream.average_rate), profile=context.profile)
        info['frames'] = np.stack([f.to_ndarray(format='rgb24')
                                   for f in container.decode(stream)])
    return info


def moving_photo(count=8, size=96):
    """A real photo panning sideways: smooth content, every frame different."""
    from skimage import data
    photo = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(photo, 3 * i, axis=1)) for i in range(count)]


def test_mp4_is_h264_yuv420p_that_browsers_play(tmp_path):
    clip = moving_photo()
    path = str(tmp_path / 'clip.mp4')
    save_video(clip, path, fps=12.5)
    info = probe_mp4(path)
    assert (info['codec'], info['pix_fmt']) == ('h264', 'yuv420p')
    assert info['size'] == (96, 96) and info['rate'] == pytest.approx(12.5)
    assert info['frames'].shape == (8, 96, 96, 3)
    errors = np.abs(info['frames'].astype(int) - np.stack(clip)).mean(axis=(1, 2, 3))
    assert errors.max() < 6  # CRF 18: close to the photo
    # In order, none dropped or repeated: frame 3 is far from the photo shifted once more.
    assert np.abs(info['frames'][3].astype(int) - clip[4]).mean() > 5 * errors[3]
    # Flat colours come back as drawn: the RGB -> YUV matrix matches the stream's tags.
    flat = np.zeros((32, 32, 3), np.uint8)
    flat[:] = PREDICTION_COLOR
    save_video([flat] * 2, str(tmp_path / 'flat.mp4'), fps=5)
    back = probe_mp4(str(tmp_path / 'flat.mp4'))['frames']
    assert np.abs(back.astype(int) - PREDICTION_COLOR).max() <= 3


def test_mp4_odd_frame_size_is_padded_to_even(tmp_path):
    clip = [f[:45, :67] for f in moving_photo(3)]
    path = str(tmp_path / 'odd.mp4')
    save_video(clip, path, fps=5)
    info = probe_mp4(path)
    assert (info['codec'], info['pix_fmt'], info['size']) == ('h264', 'yuv420p', (46, 68))
    frames = info['frames'].astype(int)
    assert np.abs(frames[:, :45, :67] - np.stack(clip)).mean() < 8
    # The extra row/column repeats the picture's last one instead of a black line.
    assert np.abs(frames[:, 45, :67] - np.stack(clip)[:, 44]).mean() < 12
    assert np.abs(frames[:, :45, 67] - np.stack(clip)[:, :, 66]).mean() < 12


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / 'clip.mp4'
    path.write_bytes(b'previous video')
    pad, seen = video_module._pad_to_even, []

    def fail_once_writing(frame):  # called once for the size, then once per frame
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        # x264 holds back its first frames (lookahead, threads): fail once bytes are out.
        if len(seen[-1]) == 2:
            raise OSError('disk full')
        return pad(frame)

    monkeypatch.setattr(video_module, '_pad_to_even', fail_once_writing)
    with pytest.raises(OSError, match='disk full'):
        save_video(moving_photo(400, size=32), str(path), fps=5)
    assert path.read_bytes() == b'previous video'
    assert [p.name for p in tmp_path.iterdir()] == ['clip.mp4']


def test_missing_encoder_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'av', None)  # makes `import av` raise ImportError
    for call in (lambda: save_video(moving_photo(2), str(tmp_path / 'clip.mp4'), 5),
                 lambda: check_video_writer('rollout.mp4')):
        with pytest.raises(ImportError) as error:
            call()
        message = str(error.value)
        assert '\n' not in message and '[video]' in message and '.gif' in message
    assert list(tmp_path.iterdir()) == []
    check_video_writer('rollout.gif')  # GIFs need no PyAV
    save_video(moving_photo(2), str(tmp_path / 'clip.gif'), 5)
    assert read_video_frames(str(tmp_path / 'clip.gif'))['frames'].shape == (2, 96, 96, 3)


def test_pyav_without_libx264_is_a_clear_error(tmp_path, monkeypatch):
    av = pytest.importorskip('av')
    monkeypatch.setattr(av, 'codecs_available', set(av.codecs_available) - {'libx264'})
    with pytest.raises(RuntimeError, match=r'no libx264 encoder.*\.gif'):
        save_video(moving_photo(2), str(tmp_path / 'clip.mp4'), 5)
    assert list(tmp_path.iterdir()) == []


def test_save_video_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match=r'\.mp4'):
        save_video(frames(2), str(tmp_path / 'clip.avi'), 5)
    with pytest.raises(ValueError, match=r'\.gif'):
        check_video_writer('clip.webm')
    with pytest.raises(ValueError, match='no frames'):
        save_video([], str(tmp_path / 'clip.gif'), 5)
    with pytest.raises(ValueError, match='one size'):
        save_video(frames(1) + frames(1, size=(8, 8)), str(tmp_path / 'clip.gif'), 5)


def test_plot_with_and_without_energies(tmp_path):
    with_energy = plot_rollout_curves(str(tmp_path / 'ebt.png'), [0.2, 0.3], [0.1, 0.4],
                                      energies=[1.0, 2.0], times=[0.25, 0.5], title='EBT')
    without = plot_rollout_curves(str(tmp_path / 'tpp.png'), [0.2, 0.3], [0.1, 0.4])
    from PIL import Image
    tall, short = Image.open(with_energy).size, Image.open(without).size
    assert tall[0] == short[0] and tall[1] > short[1]  # the energy panel adds a row
    with pytest.raises(ValueError, match='one value per frame'):
        plot_rollout_curves(str(tmp_path / 'bad.png'), [0.2], [0.1, 0.4])

"""Rollout videos (side-by-side panels, mp4/gif round trips) and the energy plot."""
import numpy as np
import pytest

from ebtvision.visualization.video import (CONTEXT_COLOR, PREDICTION_COLOR, TRUTH_COLOR,
                                           plot_rollout_curves, read_video_frames, save_video,
                                           side_by_side_frames)


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


def test_save_video_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match=r'\.mp4'):
        save_video(frames(2), str(tmp_path / 'clip.avi'), 5)
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

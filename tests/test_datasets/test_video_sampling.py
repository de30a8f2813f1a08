"""Time-based frame sampling and clip windows (pure functions)."""
import math

import numpy as np
import pytest

from ebtvision.datasets.video_sampling import (ClipSampler, VideoTooShortError, check_fps,
                                               sample_timeline, time_range_bounds)


@pytest.mark.parametrize('fps, num_frames, expected', [
    (25, 30, [0, 6, 13, 19, 25]),  # 6.25 frames per step, halves round up
    (30, 40, [0, 8, 15, 23, 30, 38]),  # 7.5 per step
    (29.97, 46, [0, 7, 15, 22, 30, 37, 45]),  # 7.4925 per step
    (30000 / 1001, 46, [0, 7, 15, 22, 30, 37, 45]),
    (12, 13, [0, 3, 6, 9, 12]),  # SSv2's frame rate
    (2, 4, [0, 1, 1, 2, 2, 3, 3]),  # slower than the sampling rate: frames repeat
])
def test_timeline_follows_the_videos_own_frame_rate(fps, num_frames, expected):
    assert sample_timeline(num_frames, fps, 0.25) == expected


def test_timeline_length_is_the_duration_divided_by_the_step():
    # 100 frames at 30 fps = 3.33 s -> samples at 0, 0.25, ..., 3.25 s
    assert len(sample_timeline(100, 30.0, 0.25)) == 14
    assert sample_timeline(0, 30.0) == []
    assert sample_timeline(1, 30.0) == [0]
    # no float drift on long videos: entry k is exactly round(k * step)
    timeline = sample_timeline(100_000, 29.97, 0.25)
    assert timeline[-1] == math.floor((len(timeline) - 1) * 0.25 * 29.97 + 0.5)


@pytest.mark.parametrize('fps', [0, -1, None, float('nan'), float('inf'), 'abc'])
def test_missing_or_invalid_fps_is_a_clear_error(fps):
    with pytest.raises(ValueError, match='frame rate'):
        sample_timeline(10, fps)
    with pytest.raises(ValueError, match='frame rate'):
        check_fps(fps, 'clip.mp4')


def test_window_starts():
    first = ClipSampler(4, clip_start='first')
    center = ClipSampler(4, clip_start='center')
    assert first.sample(10).positions == (0, 1, 2, 3)
    assert center.sample(10).positions == (3, 4, 5, 6)  # 7 starts, the middle one
    assert center.sample(11).positions == (3, 4, 5, 6)
    rand = ClipSampler(4, clip_start='random')
    starts = {rand.sample(10, rng=np.random.default_rng(s)).positions[0] for s in range(200)}
    assert starts == set(range(7))  # every full window, never a padded one
    np.random.seed(0)
    a = rand.sample(10)
    np.random.seed(0)
    assert rand.sample(10) == a  # global RNG: MMEngine's seeding makes it reproducible
    assert first.windows(10) == [first.sample(10)]
    with pytest.raises(RuntimeError):
        rand.windows(10)


def test_time_range_restricts_windows_and_splits_are_disjoint():
    train = ClipSampler(3, clip_start='first', time_range=(0, 0.8))
    val = ClipSampler(3, clip_start='first', time_range=(0.8, 1.0))
    assert train.sample(10).positions == (0, 1, 2)
    assert ClipSampler(3, clip_start='center', time_range=(0, 0.8)).sample(10).positions == \
        (2, 3, 4)
    assert val.sample(20).positions == (16, 17, 18)
    # random starts stay inside the range
    rand = ClipSampler(3, time_range=(0.5, 1.0))
    for seed in range(50):
        window = rand.sample(20, rng=np.random.default_rng(seed))
        assert 10 <= min(window.positions) and max(window.positions) < 20
    # complementary ranges partition every timeline
    for length in range(0, 40):
        for frac in (0.1, 0.25, 0.5, 0.8, 0.9):
            lo1, hi1 = time_range_bounds(length, (0, frac))
            lo2, hi2 = time_range_bounds(length, (frac, 1))
            assert (lo1, hi1, hi2) == (0, lo2, length)
    for bad in [(0.5, 0.5), (-0.1, 1), (0, 1.5), (0.2,)]:
        with pytest.raises(ValueError):
            ClipSampler(3, time_range=bad)


def test_short_video_pad_and_skip():
    pad = ClipSampler(5, clip_start='first', short_video='pad')
    window = pad.sample(3)
    assert window.positions == (0, 1, 2, 2, 2) and window.num_padded == 2
    assert window.frame_indices([0, 7, 15]) == [0, 7, 15, 15, 15]
    # a padded window inside a time range pads with the range's last position
    assert ClipSampler(4, time_range=(0.8, 1)).sample(10).positions == (8, 9, 9, 9)
    skip = ClipSampler(5, short_video='skip')
    with pytest.raises(VideoTooShortError, match="short_video='skip'"):
        skip.sample(3)
    assert 'clip_len=5' in skip.check(4) and skip.check(5) == ''
    assert skip.sample(5).num_padded == 0
    # fewer than min_frames is always skipped, whatever the policy
    with pytest.raises(VideoTooShortError, match='min_frames=2'):
        pad.sample(1)
    with pytest.raises(VideoTooShortError, match='time_range'):
        ClipSampler(5, time_range=(0.9, 1), min_frames=3).sample(10)
    assert ClipSampler(5, min_frames=1).sample(1).positions == (0, ) * 5


def test_sliding_windows():
    sampler = ClipSampler(4, clip_stride=3)
    assert [w.positions[0] for w in sampler.windows(10)] == [0, 3, 6]
    assert sampler.windows(10)[-1].positions == (6, 7, 8, 9)
    assert [w.positions[0] for w in ClipSampler(4, clip_stride=2).windows(10)] == [0, 2, 4, 6]
    assert [w.positions[0] for w in ClipSampler(4, clip_stride=1,
                                                time_range=(0.5, 1)).windows(10)] == [5, 6]
    short = ClipSampler(4, clip_stride=1).windows(3)
    assert len(short) == 1 and short[0].num_padded == 1
    with pytest.raises(VideoTooShortError):
        ClipSampler(4, clip_stride=1, short_video='skip').windows(3)
    assert sampler.deterministic and not ClipSampler(4).deterministic


@pytest.mark.parametrize('kwargs', [
    dict(clip_len=0), dict(clip_len=3, clip_start='middle'), dict(clip_len=3, short_video='x'),
    dict(clip_len=3, clip_stride=0), dict(clip_len=3, min_frames=0),
    dict(clip_len=3, time_between_frames=0)
])
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError):
        ClipSampler(**kwargs)

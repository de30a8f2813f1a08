"""Video transforms: loading, resizing, cropping (one crop per clip) and packing."""
import os.path as osp

import numpy as np
import pytest
import torch

from conftest import data_warnings, write_video
from ebtvision.datasets.transforms import (LoadVideoClip, PackVideoInputs, VideoCenterCrop,
                                           VideoRandomCrop, VideoResize)
from ebtvision.datasets.video_sampling import ClipSampler
from ebtvision.registry import TRANSFORMS
from ebtvision.structures import VideoDataSample


def ramp_clip(length=3, h=20, w=30):
    """Frames whose pixel (y, x) of frame t holds (t, y, x): crops are easy to check."""
    t, y, x = np.meshgrid(np.arange(length), np.arange(h), np.arange(w), indexing='ij')
    return np.stack([t * 50, y, x], axis=-1).astype(np.uint8)


def test_resize_short_side_keeps_aspect_and_dtype():
    frames = ramp_clip(2, 40, 60)
    out = VideoResize(short_side=20)(dict(frames=frames))
    assert out['frames'].shape == (2, 20, 30, 3) and out['frames'].dtype == np.uint8
    assert out['img_shape'] == (20, 30)
    tall = VideoResize(short_side=16)(dict(frames=ramp_clip(1, 50, 20)))['frames']
    assert tall.shape == (1, 40, 16, 3)
    up = VideoResize(short_side=60)(dict(frames=ramp_clip(1, 20, 30)))['frames']
    assert up.shape == (1, 60, 90, 3)
    # the same resize for every frame: frame t keeps its own value in channel 0
    assert [int(f[..., 0].mean()) for f in out['frames']] == [0, 50]
    with pytest.raises(ValueError):
        VideoResize(short_side=0)


def test_random_crop_uses_one_window_for_the_whole_clip():
    frames = ramp_clip(4, 20, 30)
    np.random.seed(3)
    seen = set()
    for _ in range(10):
        out = VideoRandomCrop(size=(8, 12))(dict(frames=frames.copy()))
        crop = out['frames']
        assert crop.shape == (4, 8, 12, 3)
        x0, y0, x1, y1 = out['crop_bbox']
        for t in range(4):  # every frame cut at the same place
            np.testing.assert_array_equal(crop[t], frames[t, y0:y1, x0:x1])
        seen.add((x0, y0))
    assert len(seen) > 1  # and the place is random


def test_center_crop_and_small_clips():
    frames = ramp_clip(2, 20, 30)
    out = VideoCenterCrop(size=10)(dict(frames=frames))
    assert out['crop_bbox'] == (10, 5, 20, 15)
    np.testing.assert_array_equal(out['frames'], frames[:, 5:15, 10:20])
    # a clip smaller than the crop is enlarged (keeping aspect) to cover it
    small = VideoCenterCrop(size=(24, 24))(dict(frames=ramp_clip(2, 12, 18)))['frames']
    assert small.shape == (2, 24, 24, 3)
    assert not VideoCenterCrop.is_random and VideoRandomCrop.is_random


def test_pack_pixels_and_latents():
    frames = ramp_clip(3, 4, 5)
    packed = PackVideoInputs()(
        dict(frames=frames, video_path='a.mp4', video_id='a', fps=30.0, frame_indices=[0, 8, 15],
             num_padded=0, sample_idx=7, label=3, template='x', num_frames=20))
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 3, 4, 5)
    assert inputs.is_contiguous()
    assert torch.equal(inputs[1, 2], torch.from_numpy(frames[1, :, :, 2]))  # RGB order kept
    assert isinstance(sample, VideoDataSample)
    assert sample.metainfo == dict(video_path='a.mp4', video_id='a', fps=30.0,
                                   frame_indices=[0, 8, 15], num_padded=0, sample_idx=7,
                                   label=3, template='x', input_kind='pixels')
    latents = torch.randn(3, 4, 2, 2, dtype=torch.float16)
    packed = PackVideoInputs()(dict(latents=latents, video_id='a', num_padded=1))
    assert packed['inputs'].dtype == torch.float32 and packed['inputs'].shape == (3, 4, 2, 2)
    assert packed['data_samples'].input_kind == 'latents'
    with pytest.raises(TypeError, match='uint8'):
        PackVideoInputs()(dict(frames=frames.astype(np.float32)))
    with pytest.raises(KeyError):
        PackVideoInputs()(dict(video_id='a'))


def test_load_video_clip_given_indices_or_sampler(tmp_path):
    path = str(tmp_path / 'v.avi')
    written = write_video(path, 20, fps=20.0, size=(24, 32))
    out = LoadVideoClip()(dict(video_path=path, frame_indices=[2, 5, 5]))
    assert out['frames'].shape == (3, 24, 32, 3) and out['frames'].dtype == np.uint8
    assert out['fps'] == 20.0 and out['num_frames'] == 20 and out['num_padded'] == 0
    err = np.abs(out['frames'].astype(int) - written[[2, 5, 5]].astype(int)).mean()
    assert err < 6  # the right frames (MJPG is lossy)
    # a sampler picks the window once the length and frame rate are known
    sampler = ClipSampler(4, time_between_frames=0.25, clip_start='first')  # 5 frames/step
    out = LoadVideoClip()(dict(video_path=path, clip_sampler=sampler))
    assert out['frame_indices'] == [0, 5, 10, 15] and 'clip_sampler' not in out
    out = LoadVideoClip()(dict(video_path=path, clip_sampler=ClipSampler(6, clip_start='first')))
    assert out['frame_indices'] == [0, 5, 10, 15, 15, 15] and out['num_padded'] == 2
    with pytest.raises(KeyError, match='clip_sampler'):
        LoadVideoClip()(dict(video_path=path))


def test_load_video_clip_skips_unusable_videos(tmp_path):
    bad = tmp_path / 'bad.mp4'
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    LoadVideoClip.reset_num_skipped()
    with data_warnings(match='bad.mp4.*decord cannot open'):
        assert LoadVideoClip()(dict(video_path=str(bad), frame_indices=[0])) is None
    assert LoadVideoClip.num_skipped == 1
    short = str(tmp_path / 'short.avi')
    write_video(short, 3, fps=10.0)
    with data_warnings(match='short.avi'):
        out = LoadVideoClip()(dict(video_path=short,
                                   clip_sampler=ClipSampler(4, short_video='skip')))
    assert out is None and LoadVideoClip.num_skipped == 2
    LoadVideoClip.reset_num_skipped()
    assert osp.exists(short)


def test_registered_and_repr():
    for cfg in [dict(type='LoadVideoClip'), dict(type='VideoResize', short_side=8),
                dict(type='VideoCenterCrop', size=8), dict(type='VideoRandomCrop', size=(8, 6)),
                dict(type='PackVideoInputs')]:
        transform = TRANSFORMS.build(cfg)
        assert repr(transform).startswith(cfg['type'] + '(')
    assert repr(VideoRandomCrop((8, 6))) == 'VideoRandomCrop(size=(8, 6))'


def test_load_video_clip_frame_cache_returns_the_same_frames(tmp_path):
    path = str(tmp_path / 'clip.mp4')
    write_video(path, 12, fps=10, size=32, seed=3)
    plain, cached = LoadVideoClip(), LoadVideoClip(cache_mb=0.01)  # ~3 frames of 32x32x3
    for indices in ([0, 2, 4], [2, 4, 6], [0, 2, 4], [9, 10, 11]):
        expected = plain(dict(video_path=path, frame_indices=indices))['frames']
        got = cached(dict(video_path=path, frame_indices=indices))['frames']
        np.testing.assert_array_equal(got, expected)
        assert cached._frames_bytes <= max(cached.cache_bytes, got.nbytes)
    assert {index for _, index in cached._frames} == {9, 10, 11}  # the oldest were dropped

"""Latent cache: extraction, resuming, and LatentClipDataset == encoded pixel clips."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from conftest import write_video
from log_capture import data_warnings
from ebtvision.datasets import (LatentCacheError, LatentCacheMismatchError, LatentClipDataset,
                                LoadVideoClip, VideoFolderDataset, extract_latent_cache,
                                read_index)
from ebtvision.datasets.transforms import PackVideoInputs, VideoCenterCrop, VideoResize
from ebtvision.registry import MODELS

TBF = 0.1
ENCODER_CFG = dict(type='PixelPatchEncoder', patch_size=4)


def build_encoder():
    return MODELS.build(dict(ENCODER_CFG)).eval()


def pipeline():
    return [LoadVideoClip(), VideoResize(short_side=16), VideoCenterCrop(size=16),
            PackVideoInputs()]


@pytest.fixture(scope='module')
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp('cache_videos')
    write_video(str(root / 'a.avi'), 30, fps=30.0, size=(24, 32), seed=1)  # 10 positions
    write_video(str(root / 'b.mp4'), 24, fps=20.0, size=(32, 24), seed=2)  # 12 positions
    write_video(str(root / 'c.avi'), 6, fps=20.0, size=(24, 32), seed=3)  # 3 positions
    (root / 'd_corrupt.mp4').write_bytes(b'\x00\x01' * 500)
    return str(root)


def list_videos(root):
    return VideoFolderDataset(root, lazy_init=True).list_videos()


def extract(root, cache_dir, dtype='float32', pipe=None, **kwargs):
    settings = dict(encoder=ENCODER_CFG, time_between_frames=TBF, dtype=dtype,
                    pipeline=[repr(t) for t in (pipe or pipeline())])
    kwargs.setdefault('shard_size', 2)
    with data_warnings(match='d_corrupt') if kwargs.pop('warns', True) else _nullcontext():
        return extract_latent_cache(str(cache_dir), dict(train=list_videos(root)),
                                    pipe or pipeline(), build_encoder(), settings,
                                    batch_size=5, progress=False, log=lambda msg: None,
                                    **kwargs)


class _nullcontext:

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return False


@pytest.fixture(scope='module')
def cache(videos, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp('cache') / 'latents'
    summary = extract(videos, cache_dir)
    return str(cache_dir), summary


def shard_contents(cache_dir):
    out = {}
    for name in sorted(os.listdir(cache_dir)):
        if name.endswith('.pt'):
            out[name] = torch.load(osp.join(cache_dir, name), weights_only=True)
    return out


def assert_same_shards(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys()
        for key in a[name]:
            if torch.is_tensor(a[name][key]):
                assert torch.equal(a[name][key], b[name][key]), (name, key)
            else:
                assert a[name][key] == b[name][key], (name, key)


def test_cache_format(cache, videos):
    cache_dir, summary = cache
    assert summary['encoded'] == 3 and summary['pending'] == []
    assert list(summary['skipped']) == [osp.join(videos, 'd_corrupt.mp4')]
    index = read_index(cache_dir)
    assert index['frame_size'] == [16, 16] and index['latent_shape'] == [48, 4, 4]
    assert index['time_between_frames'] == TBF and index['dtype'] == 'float32'
    assert index['encoder'] == ENCODER_CFG
    assert [s['file'] for s in index['shards']] == ['shard_00000.pt', 'shard_00001.pt']
    entry = index['videos'][osp.join(videos, 'b.mp4')]
    assert entry['id'] == 'b' and entry['fps'] == 20.0 and entry['status'] == 'ok'
    assert entry['timeline'] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    assert (entry['shard'], entry['position'], entry['length']) == (0, 1, 12)
    assert index['videos'][osp.join(videos, 'd_corrupt.mp4')]['status'] == 'skipped'
    # shards are plain data: loadable weights-only
    shard = torch.load(osp.join(cache_dir, 'shard_00000.pt'), weights_only=True)
    assert shard['video_ids'] == ['a', 'b'] and shard['offsets'] == [0, 10, 22]
    assert shard['latents'].shape == (22, 48, 4, 4) and shard['latents'].dtype == torch.float32
    assert not [n for n in os.listdir(cache_dir) if '.tmp-' in n]


@pytest.mark.parametrize('split_kwargs', [
    dict(time_range=(0, 0.8), clip_stride=1, clip_len=4),
    dict(time_range=(0.8, 1.0), clip_stride=2, clip_len=4, test_mode=True),
    dict(clip_len=5, clip_start='center', test_mode=True),
])
def test_cached_clips_equal_encoded_pixel_clips(cache, videos, split_kwargs):
    cache_dir, _ = cache
    encoder = build_encoder()
    with data_warnings(match='d_corrupt'):
        pixels = VideoFolderDataset(videos, time_between_frames=TBF, pipeline=pipeline(),
                                    **split_kwargs)
    with data_warnings(match='d_corrupt'):
        latents = LatentClipDataset(cache_dir, split='train', time_between_frames=TBF,
                                    **split_kwargs)
    assert len(pixels) == len(latents) > 0
    for i in range(len(pixels)):
        pix, lat = pixels[i], latents[i]
        pix_meta, lat_meta = pix['data_samples'].metainfo, lat['data_samples'].metainfo
        assert lat_meta['input_kind'] == 'latents' and pix_meta['input_kind'] == 'pixels'
        for key in ('video_id', 'video_path', 'fps', 'frame_indices', 'num_padded',
                    'sample_idx'):
            assert lat_meta[key] == pix_meta[key], key
        with torch.no_grad():
            expected = encoder.encode(pix['inputs'].float() / 127.5 - 1.0)
        assert lat['inputs'].dtype == torch.float32
        assert torch.equal(lat['inputs'], expected)


def test_random_windows_are_the_pixel_datasets_windows(cache, videos):
    cache_dir, _ = cache
    pixels = VideoFolderDataset(videos, time_between_frames=TBF, clip_len=4,
                                file_list=['a.avi', 'b.mp4'], pipeline=pipeline())
    with data_warnings(match='d_corrupt'):
        latents = LatentClipDataset(cache_dir, split='train', clip_len=4)
    assert len(latents) == 3  # a, b, c: random starts are drawn at fetch time
    for seed in range(4):
        np.random.seed(seed)
        pix = pixels[1]['data_samples']
        np.random.seed(seed)
        lat = latents[1]['data_samples']
        assert lat.video_id == pix.video_id == 'b'
        assert lat.frame_indices == pix.frame_indices


def test_short_videos_pad_with_the_last_latent_or_skip(cache):
    cache_dir, _ = cache
    with data_warnings(match='d_corrupt'):
        pad = LatentClipDataset(cache_dir, clip_len=5, test_mode=True)
    sample = pad[2]  # c: 3 positions
    assert sample['data_samples'].video_id == 'c' and sample['data_samples'].num_padded == 2
    assert sample['data_samples'].frame_indices == [0, 2, 4, 4, 4]
    assert torch.equal(sample['inputs'][2], sample['inputs'][4])
    with data_warnings(match='too short') as record:
        skip = LatentClipDataset(cache_dir, clip_len=5, short_video='skip', test_mode=True)
    assert len(skip) == 2 and 'd_corrupt' in record[-1]


def test_resume_after_interruption_gives_identical_shards(cache, videos, tmp_path):
    full_dir, _ = cache
    part = tmp_path / 'part'
    # "crash" after the first shard
    first = extract(videos, part, max_shards=1, warns=False)
    assert first['written'] == [0] and first['pending'] == [1]
    with pytest.raises(LatentCacheError, match='incomplete.*extract_latents.py'):
        LatentClipDataset(str(part), split='train')
    second = extract(videos, part)
    assert second['written'] == [1] and second['pending'] == []
    assert_same_shards(shard_contents(full_dir), shard_contents(str(part)))
    assert read_index(str(part)) == read_index(full_dir)  # same bookkeeping
    # a deleted shard is written again, the others are kept
    os.remove(part / 'shard_00001.pt')
    with pytest.warns(UserWarning) as record:
        third = extract(videos, part, warns=False)
    assert any('shard_00001.pt\' is missing' in str(w.message) for w in record)
    assert third['written'] == [1]
    assert_same_shards(shard_contents(full_dir), shard_contents(str(part)))
    # nothing to do on a complete cache
    assert extract(videos, part, warns=False)['written'] == []


def test_shards_written_but_not_yet_indexed_are_read_back(cache, videos, tmp_path):
    full_dir, _ = cache
    part = tmp_path / 'part'
    extract(videos, part, max_shards=0, warns=False)  # the plan only
    planned = json.loads((part / 'index.json').read_text())
    assert all(not s['complete'] for s in planned['shards'])
    for name in ('shard_00000.pt', 'shard_00001.pt'):
        shutil.copy(osp.join(full_dir, name), part / name)
    summary = extract(videos, part, warns=False)
    assert summary['recovered'] == [0, 1] and summary['written'] == []
    assert read_index(str(part)) == read_index(full_dir)


def test_changed_settings_are_refused(cache, videos):
    cache_dir, _ = cache
    with pytest.raises(LatentCacheMismatchError, match="dtype: cache has 'float32'"):
        extract(videos, cache_dir, dtype='float16', warns=False)
    other = [LoadVideoClip(), VideoResize(short_side=20), VideoCenterCrop(size=20),
             PackVideoInputs()]
    with pytest.raises(LatentCacheMismatchError, match='pipeline'):
        extract(videos, cache_dir, pipe=other, warns=False)


def test_float16_cache(videos, tmp_path):
    summary = extract(videos, tmp_path / 'half', dtype='float16')
    assert summary['pending'] == []
    with data_warnings(match='d_corrupt'):
        half = LatentClipDataset(str(tmp_path / 'half'), clip_len=4, test_mode=True)
    encoder = build_encoder()
    pixels = VideoFolderDataset(videos, time_between_frames=TBF, clip_len=4, test_mode=True,
                                file_list=['a.avi'], pipeline=pipeline())
    expected = encoder.encode(pixels[0]['inputs'].float() / 127.5 - 1.0)
    assert half[0]['inputs'].dtype == torch.float32
    torch.testing.assert_close(half[0]['inputs'], expected, atol=1e-3, rtol=1e-3)


def test_clear_errors_when_reading(cache, tmp_path):
    cache_dir, _ = cache
    with pytest.raises(LatentCacheError, match='does not exist.*tools/extract_latents.py'):
        LatentClipDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'no_index').mkdir()
    with pytest.raises(LatentCacheError, match='index.json.*not found.*extract_latents.py'):
        LatentClipDataset(str(tmp_path / 'no_index'))
    with pytest.raises(LatentCacheError, match="no split 'val'.*--split val"):
        LatentClipDataset(cache_dir, split='val')
    with pytest.raises(LatentCacheError, match='every 0.1 s.*time_between_frames=0.25'):
        LatentClipDataset(cache_dir, time_between_frames=0.25)


@pytest.mark.parametrize('model_type', ['EBTNextFrame', 'TransformerPPNextFrame'])
def test_training_from_the_cache_gives_the_on_the_fly_loss(cache, videos, model_type):
    from mmengine.dataset import pseudo_collate
    cache_dir, _ = cache
    split = dict(time_range=(0, 0.8), clip_stride=1, clip_len=4)
    with data_warnings(match='d_corrupt'):
        pixels = VideoFolderDataset(videos, time_between_frames=TBF, pipeline=pipeline(),
                                    **split)
    with data_warnings(match='d_corrupt'):
        latents = LatentClipDataset(cache_dir, split='train', time_between_frames=TBF, **split)
    arch = dict(depth=1, num_heads=2, embed_dims=16)
    options = dict(type=model_type, encoder=ENCODER_CFG, frame_size=16,
                   head=dict(type='NextFrameHead'))
    if model_type == 'EBTNextFrame':
        options.update(backbone=dict(type='CausalEBT', arch=arch, max_steps=2),
                       thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=1.0,
                                    random_step_size_scale=2.0))
    else:
        options.update(backbone=dict(type='CausalTransformer', arch=arch))
    torch.manual_seed(0)
    model = MODELS.build(options)
    losses = []
    for dataset in (pixels, latents):
        batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(4)]), True)
        torch.manual_seed(1)  # the same initial candidates and random step sizes
        losses.append(model(**batch, mode='loss')['loss'])
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-7)

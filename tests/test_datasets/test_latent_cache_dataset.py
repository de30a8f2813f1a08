"""LatentClipDataset: cached clips == encoded pixel clips, padding, errors, training."""
import numpy as np
import pytest
import torch

from conftest import (LATENT_ENCODER_CFG, LATENT_TBF, build_latent_encoder, data_warnings,
                      latent_pipeline)
from ebtvision.datasets import LatentCacheError, LatentClipDataset, VideoFolderDataset
from ebtvision.registry import MODELS


@pytest.mark.parametrize('split_kwargs', [
    dict(time_range=(0, 0.8), clip_stride=1, clip_len=4),
    dict(time_range=(0.8, 1.0), clip_stride=2, clip_len=4, test_mode=True),
    dict(clip_len=5, clip_start='center', test_mode=True),
])
def test_cached_clips_equal_encoded_pixel_clips(latent_cache, latent_videos, split_kwargs):
    cache_dir, _ = latent_cache
    encoder = build_latent_encoder()
    with data_warnings(match='d_corrupt'):
        pixels = VideoFolderDataset(latent_videos, time_between_frames=LATENT_TBF,
                                    pipeline=latent_pipeline(), **split_kwargs)
    with data_warnings(match='d_corrupt'):
        latents = LatentClipDataset(cache_dir, split='train', time_between_frames=LATENT_TBF,
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


def test_random_windows_are_the_pixel_datasets_windows(latent_cache, latent_videos):
    cache_dir, _ = latent_cache
    pixels = VideoFolderDataset(latent_videos, time_between_frames=LATENT_TBF, clip_len=4,
                                file_list=['a.avi', 'b.mp4'], pipeline=latent_pipeline())
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


def test_short_videos_pad_with_the_last_latent_or_skip(latent_cache):
    cache_dir, _ = latent_cache
    with data_warnings(match='d_corrupt'):
        pad = LatentClipDataset(cache_dir, clip_len=5, test_mode=True)
    sample = pad[2]  # c: 3 positions
    assert sample['data_samples'].video_id == 'c' and sample['data_samples'].num_padded == 2
    assert sample['data_samples'].frame_indices == [0, 2, 4, 4, 4]
    assert torch.equal(sample['inputs'][2], sample['inputs'][4])
    with data_warnings(match='too short') as record:
        skip = LatentClipDataset(cache_dir, clip_len=5, short_video='skip', test_mode=True)
    assert len(skip) == 2 and 'd_corrupt' in record[-1]


def test_clear_errors_when_reading(latent_cache, tmp_path):
    cache_dir, _ = latent_cache
    with pytest.raises(LatentCacheError, match='does not exist.*tools/extract_latents.py'):
        LatentClipDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'no_index').mkdir()
    with pytest.raises(LatentCacheError, match='index.json.*not found.*extract_latents.py'):
        LatentClipDataset(str(tmp_path / 'no_index'))
    with pytest.raises(LatentCacheError, match="no split 'val'.*--split val"):
        LatentClipDataset(cache_dir, split='val')
    with pytest.raises(LatentCacheError, match='every 0.1 s.*time_between_frames=0.25'):
        LatentClipDataset(cache_dir, time_between_frames=0.25)
    # The encoder a config names must be the one the cache was made with.
    assert len(LatentClipDataset(cache_dir, encoder=LATENT_ENCODER_CFG)) > 0
    with pytest.raises(LatentCacheError, match=r'another encoder \(patch_size: cache 4, '
                       r'config 8\)'):
        LatentClipDataset(cache_dir, encoder=dict(LATENT_ENCODER_CFG, patch_size=8))


@pytest.mark.parametrize('model_type', ['EBTNextFrame', 'TransformerPPNextFrame'])
def test_training_from_the_cache_gives_the_on_the_fly_loss(latent_cache, latent_videos,
                                                           model_type):
    from mmengine.dataset import pseudo_collate
    cache_dir, _ = latent_cache
    split = dict(time_range=(0, 0.8), clip_stride=1, clip_len=4)
    with data_warnings(match='d_corrupt'):
        pixels = VideoFolderDataset(latent_videos, time_between_frames=LATENT_TBF,
                                    pipeline=latent_pipeline(), **split)
    with data_warnings(match='d_corrupt'):
        latents = LatentClipDataset(cache_dir, split='train', time_between_frames=LATENT_TBF,
                                    **split)
    arch = dict(depth=1, num_heads=2, embed_dims=16)
    options = dict(type=model_type, encoder=LATENT_ENCODER_CFG, frame_size=16,
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

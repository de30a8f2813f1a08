"""Latent cache format: the index and the shards an extraction writes."""
import os
import os.path as osp

import torch

from conftest import LATENT_ENCODER_CFG, LATENT_TBF
from ebtvision.datasets import read_index


def test_cache_format(latent_cache, latent_videos):
    cache_dir, summary = latent_cache
    assert summary['encoded'] == 3 and summary['pending'] == []
    assert list(summary['skipped']) == [osp.join(latent_videos, 'd_corrupt.mp4')]
    index = read_index(cache_dir)
    assert index['frame_size'] == [16, 16] and index['latent_shape'] == [48, 4, 4]
    assert index['time_between_frames'] == LATENT_TBF and index['dtype'] == 'float32'
    assert index['encoder'] == LATENT_ENCODER_CFG
    assert [s['file'] for s in index['shards']] == ['shard_00000.pt', 'shard_00001.pt']
    entry = index['videos'][osp.join(latent_videos, 'b.mp4')]
    assert entry['id'] == 'b' and entry['fps'] == 20.0 and entry['status'] == 'ok'
    assert entry['timeline'] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]
    assert (entry['shard'], entry['position'], entry['length']) == (0, 1, 12)
    assert index['videos'][osp.join(latent_videos, 'd_corrupt.mp4')]['status'] == 'skipped'
    # shards are plain data: loadable weights-only
    shard = torch.load(osp.join(cache_dir, 'shard_00000.pt'), weights_only=True)
    assert shard['video_ids'] == ['a', 'b'] and shard['offsets'] == [0, 10, 22]
    assert shard['latents'].shape == (22, 48, 4, 4) and shard['latents'].dtype == torch.float32
    assert not [n for n in os.listdir(cache_dir) if '.tmp-' in n]

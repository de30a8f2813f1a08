"""Latent cache writer: resuming after an interruption, and refusing other settings."""
import json
import os
import os.path as osp
import shutil

import pytest

from conftest import assert_same_shards, extract_latents, latent_shard_contents
from ebtvision.datasets import (LatentCacheError, LatentCacheMismatchError, LatentClipDataset,
                                LoadVideoClip, read_index)
from ebtvision.datasets.transforms import PackVideoInputs, VideoCenterCrop, VideoResize


def test_resume_after_interruption_gives_identical_shards(latent_cache, latent_videos,
                                                          tmp_path):
    full_dir, _ = latent_cache
    part = tmp_path / 'part'
    # "crash" after the first shard
    first = extract_latents(latent_videos, part, max_shards=1, warns=False)
    assert first['written'] == [0] and first['pending'] == [1]
    with pytest.raises(LatentCacheError, match='incomplete.*extract_latents.py'):
        LatentClipDataset(str(part), split='train')
    second = extract_latents(latent_videos, part)
    assert second['written'] == [1] and second['pending'] == []
    assert_same_shards(latent_shard_contents(full_dir), latent_shard_contents(str(part)))
    assert read_index(str(part)) == read_index(full_dir)  # same bookkeeping
    # a deleted shard is written again, the others are kept
    os.remove(part / 'shard_00001.pt')
    with pytest.warns(UserWarning) as record:
        third = extract_latents(latent_videos, part, warns=False)
    assert any('shard_00001.pt\' is missing' in str(w.message) for w in record)
    assert third['written'] == [1]
    assert_same_shards(latent_shard_contents(full_dir), latent_shard_contents(str(part)))
    # nothing to do on a complete cache
    assert extract_latents(latent_videos, part, warns=False)['written'] == []


def test_shards_written_but_not_yet_indexed_are_read_back(latent_cache, latent_videos,
                                                          tmp_path):
    full_dir, _ = latent_cache
    part = tmp_path / 'part'
    extract_latents(latent_videos, part, max_shards=0, warns=False)  # the plan only
    planned = json.loads((part / 'index.json').read_text())
    assert all(not s['complete'] for s in planned['shards'])
    for name in ('shard_00000.pt', 'shard_00001.pt'):
        shutil.copy(osp.join(full_dir, name), part / name)
    summary = extract_latents(latent_videos, part, warns=False)
    assert summary['recovered'] == [0, 1] and summary['written'] == []
    assert read_index(str(part)) == read_index(full_dir)


def test_changed_settings_are_refused(latent_cache, latent_videos):
    cache_dir, _ = latent_cache
    with pytest.raises(LatentCacheMismatchError, match="dtype: cache has 'float32'"):
        extract_latents(latent_videos, cache_dir, dtype='float16', warns=False)
    other = [LoadVideoClip(), VideoResize(short_side=20), VideoCenterCrop(size=20),
             PackVideoInputs()]
    with pytest.raises(LatentCacheMismatchError, match='pipeline'):
        extract_latents(latent_videos, cache_dir, pipe=other, warns=False)

"""Latent cache: frame latents of every video encoded once, and clips drawn from them.

``tools/extract_latents.py CONFIG`` encodes, for every video of the config's
datasets, *all* frames of its timeline (every ``time_between_frames`` seconds, see
:mod:`ebtvision.datasets.video_sampling`) with the config's frozen encoder.
:class:`LatentClipDataset` then draws clip windows from these timelines with the
same :class:`~ebtvision.datasets.video_sampling.ClipSampler` as the pixel datasets,
so random starts still work in training and one cache serves the training and the
held-out time ranges.

Modules:

- :mod:`.format`: the cache layout (``index.json`` and shards), its constants and
  errors, reading the index and loading shards.
- :mod:`.writer`: :class:`LatentCacheWriter` (planning, resuming, recording) and
  the atomic writes of shards and index.
- :mod:`.extraction`: decoding timelines and encoding them into a cache
  (:func:`extract_latent_cache`).
- :mod:`.dataset`: :class:`LatentClipDataset`, clips read from a cache.
"""
from .dataset import LatentClipDataset
from .extraction import TimelineFrames, encode_frames, extract_latent_cache
from .format import (CACHE_DTYPES, CACHE_FORMAT_VERSION, INDEX_NAME, SETTINGS_KEYS,
                     LatentCacheError, LatentCacheMismatchError, load_shard, read_index,
                     shard_file)
from .writer import LatentCacheWriter, save_shard

__all__ = [
    'CACHE_FORMAT_VERSION', 'INDEX_NAME', 'SETTINGS_KEYS', 'CACHE_DTYPES', 'LatentCacheError',
    'LatentCacheMismatchError', 'shard_file', 'load_shard', 'read_index', 'save_shard',
    'LatentCacheWriter', 'TimelineFrames', 'encode_frames', 'extract_latent_cache',
    'LatentClipDataset'
]

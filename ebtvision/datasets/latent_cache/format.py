"""Latent cache format: the files of a cache folder and how they are read.

Cache layout (``cache_dir``)::

    index.json          # see below
    shard_00000.pt      # torch.save of a plain dict, loadable with weights_only=True
    shard_00001.pt
    ...

A shard holds up to ``shard_size`` videos::

    {'format_version': 1, 'shard': int, 'settings': {...}, 'frame_size': [H, W],
     'video_keys': [str], 'video_ids': [str],      # videos encoded in this shard
     'latents': Tensor (sum of timeline lengths, C, h, w),  # dtype of the cache
     'offsets': [int] (len = videos + 1),          # video i is latents[offsets[i]:offsets[i+1]]
     'fps': [float], 'num_frames': [int], 'timelines': [[int]],
     'skipped_keys': [str], 'skipped_reasons': [str]}  # unusable videos of the shard

``index.json``::

    {'format_version': 1,
     'encoder': {...config...}, 'time_between_frames': 0.25, 'dtype': 'float32',
     'pipeline': ['LoadVideoClip(...)', 'VideoResize(...)', ...],   # frames as encoded
     'frame_size': [H, W], 'latent_shape': [C, h, w], 'shard_size': 64,
     'splits': {'train': [video key, ...], 'val': [...]},         # dataset order
     'shards': [{'file': 'shard_00000.pt', 'split': 'train', 'videos': [key, ...],
                 'complete': bool}],
     'videos': {key: {'id', 'path', 'label'?, 'template'?, 'caption'?, 'shard',
                      'status': 'pending'|'ok'|'skipped', 'position', 'offset',
                      'length', 'fps', 'num_frames', 'timeline', 'reason'?}}}

A video's key is its absolute path (a video shared by two splits is encoded once);
``position`` is its place among the encoded videos of its shard and ``offset`` /
``length`` locate its latents in the shard. Moving the videos after extraction is
fine for training from the cache, but a later extraction run would treat them as
new videos: extract into a new folder then.
"""
import json
import os.path as osp

import torch

#: Version of the cache layout; bumped on incompatible changes.
CACHE_FORMAT_VERSION = 1
#: Name of the index file in a cache folder.
INDEX_NAME = 'index.json'
#: Index entries that must match between runs writing into the same cache.
SETTINGS_KEYS = ('encoder', 'time_between_frames', 'dtype', 'pipeline')
#: Storage dtypes a cache may use.
CACHE_DTYPES = {'float32': torch.float32, 'float16': torch.float16}

_EXTRACT_HINT = 'run `python tools/extract_latents.py CONFIG` (CONFIG: the pixel config)'


class LatentCacheError(RuntimeError):
    """A latent cache is missing, incomplete or unreadable."""


class LatentCacheMismatchError(LatentCacheError):
    """A cache was written with other settings than the ones asked for."""


def shard_file(index: int) -> str:
    """File name of shard ``index``: ``shard_00000.pt``."""
    return f'shard_{index:05d}.pt'


def load_shard(path: str, mmap: bool = False) -> dict:
    """Load a shard weights-only (no code runs), optionally memory-mapped.

    Raises:
        LatentCacheError: The file is missing or not a readable shard.
    """
    if not osp.isfile(path):
        raise LatentCacheError(f'latent cache shard {path!r} is missing; {_EXTRACT_HINT} '
                               'again to write it')
    try:
        shard = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
    except Exception as err:  # pickle/zip errors of a damaged file
        raise LatentCacheError(f'latent cache shard {path!r} cannot be read ({err}); delete it '
                               f'and {_EXTRACT_HINT} again') from err
    if not isinstance(shard, dict) or shard.get('format_version') != CACHE_FORMAT_VERSION:
        raise LatentCacheError(f'{path!r} is not a version-{CACHE_FORMAT_VERSION} latent '
                               'cache shard')
    return shard


def read_index(cache_dir: str) -> dict:
    """Read ``cache_dir/index.json``.

    Raises:
        LatentCacheError: The folder or index is missing, unreadable or of another
            format version (the message says how to build the cache).
    """
    path = osp.join(cache_dir, INDEX_NAME)
    if not osp.isdir(cache_dir):
        raise LatentCacheError(f'latent cache folder {cache_dir!r} does not exist; '
                               f'{_EXTRACT_HINT} to build it (or set cache_dir)')
    if not osp.isfile(path):
        raise LatentCacheError(f'latent cache index {path!r} not found; {_EXTRACT_HINT} '
                               'to build the cache')
    try:
        with open(path, encoding='utf-8') as f:
            index = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise LatentCacheError(f'latent cache index {path!r} cannot be read ({err}); '
                               f'{_EXTRACT_HINT} again') from err
    version = index.get('format_version') if isinstance(index, dict) else None
    if version != CACHE_FORMAT_VERSION:
        raise LatentCacheError(f'latent cache index {path!r} has format version {version!r}, '
                               f'this code reads version {CACHE_FORMAT_VERSION}; extract '
                               'the cache again into a new folder')
    return index


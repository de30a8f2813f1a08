"""Latent cache writer: plans, resumes and records a cache, writing files atomically.

Resuming: the assignment of videos to shards is written to ``index.json`` before
anything is encoded, and only appended to (videos new to a split get new shards),
so a re-run encodes exactly the shards that are missing. Shards are written to a
temporary file and renamed. ``index.json`` is rewritten at most every
``flush_interval`` seconds (it lists every video, so rewriting it per shard would
cost more than the shards on a large dataset), at the end and on interruption; a
shard present on disk but not yet recorded in the index is read back instead of
being encoded again. A
change of encoder, frame pipeline, ``time_between_frames`` or dtype raises
:class:`LatentCacheMismatchError` instead of mixing latents.
"""
import json
import os
import os.path as osp
import warnings
from typing import Any, Dict, List, Sequence

import torch

from .format import (CACHE_DTYPES, CACHE_FORMAT_VERSION, INDEX_NAME, SETTINGS_KEYS,
                     LatentCacheError, LatentCacheMismatchError, load_shard, read_index,
                     shard_file)


def _json_normalise(value: Any) -> Any:
    """Round-trip through JSON so that tuples/lists and ConfigDicts compare equal."""
    return json.loads(json.dumps(value, default=lambda o: o.to_dict()
                                 if hasattr(o, 'to_dict') else str(o)))


def _save_atomic_json(obj: Any, path: str) -> None:
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def save_shard(shard: dict, path: str) -> None:
    """``torch.save`` to a temporary file, then rename (a crash leaves no half shard)."""
    tmp = f'{path}.tmp-{os.getpid()}'
    torch.save(shard, tmp)
    os.replace(tmp, path)


class LatentCacheWriter:
    """Plan, resume and record a latent cache (the bookkeeping of extraction).

    Args:
        cache_dir: Output folder (created if needed).
        settings: ``encoder`` (config dict), ``time_between_frames``, ``dtype``
            (``'float32'``/``'float16'``) and ``pipeline`` (transform reprs).
        shard_size: Videos per shard for newly planned shards (an existing cache
            keeps its own).

    Raises:
        LatentCacheMismatchError: The folder holds a cache with other settings.
    """

    def __init__(self, cache_dir: str, settings: dict, shard_size: int = 64) -> None:
        missing = [k for k in SETTINGS_KEYS if k not in settings]
        if missing:
            raise ValueError(f'settings lack {missing}')
        if settings['dtype'] not in CACHE_DTYPES:
            raise ValueError(f'dtype must be one of {sorted(CACHE_DTYPES)}, '
                             f'got {settings["dtype"]!r}')
        if int(shard_size) < 1:
            raise ValueError(f'shard_size must be >= 1, got {shard_size}')
        self.cache_dir = cache_dir
        self.index_path = osp.join(cache_dir, INDEX_NAME)
        settings = _json_normalise({k: settings[k] for k in SETTINGS_KEYS})
        os.makedirs(cache_dir, exist_ok=True)
        self._remove_temp_files()
        if osp.isfile(self.index_path):
            self.index = read_index(cache_dir)
            changed = [k for k in SETTINGS_KEYS if self.index.get(k) != settings[k]]
            if changed:
                lines = '\n'.join(f'  {k}: cache has {self.index.get(k)!r}, now {settings[k]!r}'
                                  for k in changed)
                raise LatentCacheMismatchError(
                    f'the latent cache in {cache_dir!r} was written with other settings:\n'
                    f'{lines}\nMixing them would give inconsistent latents: extract into a '
                    'new folder (--out) or delete this one.')
            if self.index['shard_size'] != int(shard_size):
                warnings.warn(f'{cache_dir!r} uses shard_size={self.index["shard_size"]}; '
                              f'keeping it instead of {shard_size}')
        else:
            self.index = dict(format_version=CACHE_FORMAT_VERSION, **settings,
                              frame_size=None, latent_shape=None, shard_size=int(shard_size),
                              splits={}, shards=[], videos={})
        self.dtype = CACHE_DTYPES[self.index['dtype']]
        self.settings = {k: self.index[k] for k in SETTINGS_KEYS}

    def _remove_temp_files(self) -> None:
        # Leftovers of a crash while writing (ours only: shard/index temp names).
        for name in os.listdir(self.cache_dir):
            if '.tmp-' in name and (name.startswith('shard_') or name.startswith(INDEX_NAME)):
                os.remove(osp.join(self.cache_dir, name))

    # -- planning ---------------------------------------------------------------------
    def add_split(self, split: str, videos: Sequence[dict]) -> int:
        """Record ``split``'s videos (in dataset order); plan shards for new ones.

        Args:
            split: Split name (``'train'``, ``'val'``, ``'test'``).
            videos: ``[{'video_path', 'video_id', 'label'?, 'template'?, 'caption'?}]``.

        Returns:
            Number of videos new to the cache.
        """
        keys, new = [], []
        entries = self.index['videos']
        for video in videos:
            key = osp.abspath(video['video_path'])
            if key in keys:
                continue
            keys.append(key)
            if key not in entries:
                entry = dict(id=str(video['video_id']), path=key, status='pending')
                for name in ('label', 'template', 'caption'):
                    if name in video:
                        entry[name] = video[name]
                entries[key] = entry
                new.append(key)
        self.index['splits'][split] = keys
        size = self.index['shard_size']
        for start in range(0, len(new), size):
            number = len(self.index['shards'])
            group = new[start:start + size]
            self.index['shards'].append(
                dict(file=shard_file(number), split=split, videos=group, complete=False))
            for key in group:
                entries[key]['shard'] = number
        return len(new)

    def recover(self) -> List[int]:
        """Reconcile the index with the shard files on disk.

        A shard file that exists but is not recorded (crash after the rename) is read
        back; a shard recorded as complete whose file is gone is planned again.

        Returns:
            Numbers of the shards read back.
        """
        recovered = []
        for number, shard in enumerate(self.index['shards']):
            path = osp.join(self.cache_dir, shard['file'])
            exists = osp.isfile(path)
            if shard['complete'] and not exists:
                warnings.warn(f'latent cache shard {path!r} is missing; encoding it again')
                shard['complete'] = False
                for key in shard['videos']:
                    entry = self.index['videos'][key]
                    for name in ('position', 'offset', 'length', 'fps', 'num_frames',
                                 'timeline', 'reason'):
                        entry.pop(name, None)
                    entry['status'] = 'pending'
            elif exists and not shard['complete']:
                data = load_shard(path)
                if data.get('settings') != self.settings:
                    raise LatentCacheMismatchError(
                        f'{path!r} was written with other settings than {self.index_path!r} '
                        'records; delete the cache folder and extract again')
                if data.get('shard') != number or sorted(data['video_keys'] +
                                                         data['skipped_keys']) != sorted(
                                                             shard['videos']):
                    raise LatentCacheError(f'{path!r} does not hold the videos the index plans '
                                           'for it; delete the cache folder and extract again')
                self._record(number, data)
                recovered.append(number)
        return recovered

    def pending_shards(self, splits: Sequence[str]) -> List[int]:
        """Incomplete shards holding videos of ``splits``, in order."""
        wanted = set()
        for split in splits:
            for key in self.index['splits'].get(split, []):
                wanted.add(self.index['videos'][key]['shard'])
        return [n for n in sorted(wanted) if not self.index['shards'][n]['complete']]

    # -- recording --------------------------------------------------------------------
    def _check_shape(self, name: str, value: List[int], video: str) -> None:
        known = self.index[name]
        if known is None:
            self.index[name] = list(value)
        elif list(known) != list(value):
            raise LatentCacheMismatchError(
                f'{name} of {video!r} is {list(value)}, but the cache in {self.cache_dir!r} has '
                f'{known}: the frame pipeline must give one fixed size (add a crop), and one '
                'cache holds one encoder output size; extract into a new folder (--out)')

    def _record(self, number: int, data: dict) -> None:
        entries = self.index['videos']
        for position, key in enumerate(data['video_keys']):
            start, stop = data['offsets'][position], data['offsets'][position + 1]
            entries[key].update(
                status='ok', shard=number, position=position, offset=start,
                length=stop - start, fps=float(data['fps'][position]),
                num_frames=int(data['num_frames'][position]),
                timeline=[int(i) for i in data['timelines'][position]])
            entries[key].pop('reason', None)
        for key, reason in zip(data['skipped_keys'], data['skipped_reasons']):
            entries[key].update(status='skipped', shard=number, reason=reason)
        if len(data['video_keys']):
            self._check_shape('frame_size', list(data['frame_size']), data['video_keys'][0])
            self._check_shape('latent_shape', list(data['latents'].shape[1:]),
                              data['video_keys'][0])
        self.index['shards'][number]['complete'] = True

    def write_shard(self, number: int, results: Dict[str, dict]) -> dict:
        """Write shard ``number`` from per-video results and record it.

        Args:
            number: Shard number.
            results: For each video key of the shard, either ``{'latents': (T, C, h, w),
                'fps', 'num_frames', 'timeline', 'frame_size'}`` or ``{'reason': str}``.

        Returns:
            The shard dict that was saved.
        """
        plan = self.index['shards'][number]
        keys, latents, offsets = [], [], [0]
        fps, num_frames, timelines, skipped, reasons = [], [], [], [], []
        for key in plan['videos']:
            result = results[key]
            if result.get('reason'):
                skipped.append(key)
                reasons.append(result['reason'])
                continue
            self._check_shape('frame_size', list(result['frame_size']), key)
            self._check_shape('latent_shape', list(result['latents'].shape[1:]), key)
            keys.append(key)
            latents.append(result['latents'].to(self.dtype))
            offsets.append(offsets[-1] + result['latents'].shape[0])
            fps.append(float(result['fps']))
            num_frames.append(int(result['num_frames']))
            timelines.append([int(i) for i in result['timeline']])
        if latents:
            stacked = torch.cat(latents).contiguous()
        else:
            shape = self.index['latent_shape'] or [0, 0, 0]
            stacked = torch.zeros((0, *shape), dtype=self.dtype)
        shard = dict(format_version=CACHE_FORMAT_VERSION, shard=number,
                     settings=self.settings, frame_size=self.index['frame_size'], video_keys=keys,
                     video_ids=[self.index['videos'][k]['id'] for k in keys], latents=stacked,
                     offsets=offsets, fps=fps, num_frames=num_frames, timelines=timelines,
                     skipped_keys=skipped, skipped_reasons=reasons)
        save_shard(shard, osp.join(self.cache_dir, plan['file']))
        self._record(number, shard)
        return shard

    def flush(self) -> None:
        """Write ``index.json`` (temporary file, then rename)."""
        _save_atomic_json(self.index, self.index_path)

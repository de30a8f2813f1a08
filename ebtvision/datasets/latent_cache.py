"""Latent cache: frame latents of every video encoded once, and clips drawn from them.

``tools/extract_latents.py CONFIG`` encodes, for every video of the config's
datasets, *all* frames of its timeline (every ``time_between_frames`` seconds, see
:mod:`ebtvision.datasets.video_sampling`) with the config's frozen encoder.
:class:`LatentClipDataset` then draws clip windows from these timelines with the
same :class:`~ebtvision.datasets.video_sampling.ClipSampler` as the pixel datasets,
so random starts still work in training and one cache serves the training and the
held-out time ranges.

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
import time
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS, TRANSFORMS
from .skip_report import log_data_warning
from .transforms.video import LoadVideoClip, PackVideoInputs
from .video_reader import VideoReader, VideoReadError, VideoTruncatedError
from .video_sampling import ClipSampler, VideoTooShortError, sample_timeline

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


# ----------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------
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


def _pipeline_frames(results: Optional[dict], path: str) -> torch.Tensor:
    """uint8 (T, 3, H, W) frames from a pipeline's output."""
    if results is None:
        raise VideoReadError(path, 'the frame pipeline returned None')
    if 'inputs' in results:
        inputs = results['inputs']
    elif 'frames' in results:
        inputs = torch.from_numpy(np.ascontiguousarray(results['frames'].transpose(0, 3, 1, 2)))
    else:
        raise KeyError('the frame pipeline must output "inputs" (PackVideoInputs) or "frames"')
    if inputs.dtype != torch.uint8 or inputs.dim() != 4 or inputs.shape[1] != 3:
        raise ValueError(f'the frame pipeline must give uint8 (T, 3, H, W) frames, got '
                         f'{inputs.dtype} {tuple(inputs.shape)}')
    return inputs


class TimelineFrames(torch.utils.data.Dataset):
    """The frames of each video's full timeline, through a deterministic pipeline.

    Decoding happens here so that a ``DataLoader`` can spread it over workers.
    Each item is ``{'key', 'frames': uint8 (T, 3, H, W), 'fps', 'num_frames',
    'timeline'}`` or ``{'key', 'reason'}`` for an unusable video.

    Args:
        videos: ``[(key, {'path', 'id', ...})]``.
        pipeline: Transforms starting with :class:`LoadVideoClip`.
        time_between_frames: Seconds between sampled frames.
    """

    def __init__(self, videos: Sequence[tuple], pipeline: Sequence[Callable],
                 time_between_frames: float) -> None:
        self.videos = list(videos)
        self.pipeline = list(pipeline)
        self.time_between_frames = time_between_frames

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        key, entry = self.videos[i]
        try:
            return self._get(key, entry)
        except VideoTruncatedError:
            # Reading found the decodable end of a truncated file: the reader opened
            # again knows it, so the timeline is sampled from the frames that decode.
            try:
                return self._get(key, entry)
            except VideoTruncatedError as err:
                return dict(key=key, reason=err.reason)

    def _get(self, key: str, entry: dict) -> dict:
        """One attempt of ``__getitem__``; raises ``VideoTruncatedError``."""
        path = entry['path']
        try:
            reader = VideoReader(path)
            timeline = sample_timeline(reader.num_frames, reader.fps, self.time_between_frames)
            results: Optional[dict] = dict(video_path=path, video_id=entry['id'],
                                           frame_indices=timeline, num_padded=0)
            for transform in self.pipeline:
                if isinstance(transform, LoadVideoClip):
                    results = transform.load(results)  # raise: the reason goes in the shard
                else:
                    results = transform(results)
                if results is None:
                    raise VideoReadError(path, f'{transform!r} returned None')
            frames = _pipeline_frames(results, path)
        except VideoTruncatedError:
            raise
        except (VideoReadError, VideoTooShortError) as err:
            return dict(key=key, reason=getattr(err, 'reason', str(err)))
        return dict(key=key, frames=frames, fps=reader.fps, num_frames=reader.num_frames,
                    timeline=timeline)


def _identity(item: Any) -> Any:
    return item


@torch.no_grad()
def encode_frames(encoder: torch.nn.Module, frames: torch.Tensor, batch_size: int,
                  device: str) -> torch.Tensor:
    """Encode uint8 frames exactly as the model would on the fly.

    Args:
        encoder: Module with ``encode(float (N, 3, H, W) in [-1, 1]) -> (N, C, h, w)``.
        frames: uint8 (N, 3, H, W).
        batch_size: Frames per ``encode`` call.
        device: Device to encode on.

    Returns:
        float32 CPU latents (N, C, h, w).
    """
    out = []
    for start in range(0, frames.shape[0], batch_size):
        # The same arithmetic as VideoDataPreprocessor: x / 127.5 - 1 in float32.
        x = frames[start:start + batch_size].to(device).float() / 127.5 - 1.0
        out.append(encoder.encode(x).float().cpu())
    return torch.cat(out)


def extract_latent_cache(cache_dir: str,
                         videos_by_split: Dict[str, Sequence[dict]],
                         pipeline: Sequence[Callable],
                         encoder: torch.nn.Module,
                         settings: dict,
                         shard_size: int = 64,
                         batch_size: int = 64,
                         device: str = 'cpu',
                         num_workers: int = 0,
                         max_shards: Optional[int] = None,
                         flush_interval: float = 30.0,
                         progress: bool = True,
                         log: Callable[[str], None] = print) -> dict:
    """Encode the full timelines of videos into a (resumable) latent cache.

    Args:
        cache_dir: Output folder.
        videos_by_split: For each split to extract, its videos in dataset order
            (``list_videos()`` of a video dataset).
        pipeline: Deterministic frame pipeline (``LoadVideoClip`` first).
        encoder: Frozen encoder (``encode`` method), already on ``device`` and in
            eval mode.
        settings: See :class:`LatentCacheWriter`.
        shard_size: Videos per shard.
        batch_size: Frames per encoder call.
        device: Encoding device.
        num_workers: Decoding worker processes (0 decodes in this process).
        max_shards: Stop after writing this many shards (split the work over runs).
        flush_interval: Seconds between rewrites of ``index.json`` (always written at
            the end and when interrupted).
        progress: Show a tqdm progress bar.
        log: Where progress messages go.

    Returns:
        ``{'cache_dir', 'written' (shard numbers), 'recovered', 'encoded', 'skipped':
        {path: reason}, 'pending' (shards still missing)}``.
    """
    writer = LatentCacheWriter(cache_dir, settings, shard_size)
    for split, videos in videos_by_split.items():
        new = writer.add_split(split, videos)
        log(f'{split}: {len(videos)} video(s), {new} new to the cache')
    recovered = writer.recover()
    if recovered:
        log(f'read back {len(recovered)} shard(s) written before an interruption')
    pending = writer.pending_shards(list(videos_by_split))
    if max_shards is not None:
        pending = pending[:max(0, int(max_shards))]
    writer.flush()  # the plan is on disk before anything is encoded
    todo = [(key, writer.index['videos'][key]) for n in pending
            for key in writer.index['shards'][n]['videos']]
    log(f'{len(pending)} shard(s) to write ({len(todo)} video(s)) into {cache_dir}')

    written, encoded, skipped = [], 0, {}
    loader = torch.utils.data.DataLoader(
        TimelineFrames(todo, pipeline, writer.index['time_between_frames']),
        batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(todo), desc='Encoding videos', unit='video', dynamic_ncols=True)
    last_flush = time.monotonic()
    try:
        results: Dict[str, dict] = {}
        order = iter(pending)
        number = next(order, None)
        for item in loader:
            key = item.pop('key')
            if 'reason' in item:
                skipped[key] = item['reason']
                log_data_warning(f'Skipping video {key!r}: {item["reason"]}')
            else:
                frames = item.pop('frames')
                item['frame_size'] = list(frames.shape[2:])
                item['latents'] = encode_frames(encoder, frames, batch_size, device)
                encoded += 1
            results[key] = item
            if bar is not None:
                bar.update(1)
            # Videos arrive in plan order: a shard is done when all of its videos are.
            plan = writer.index['shards'][number]
            if all(k in results for k in plan['videos']):
                writer.write_shard(number, {k: results.pop(k) for k in plan['videos']})
                written.append(number)
                number = next(order, None)
                if time.monotonic() - last_flush > flush_interval:
                    writer.flush()
                    last_flush = time.monotonic()
    finally:
        if bar is not None:
            bar.close()
        writer.flush()
    remaining = writer.pending_shards(list(videos_by_split))
    return dict(cache_dir=cache_dir, written=written, recovered=recovered, encoded=encoded,
                skipped=skipped, pending=remaining)


# ----------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------
@DATASETS.register_module()
class LatentClipDataset(BaseDataset):
    """Clips of cached frame latents (see the module docstring for the cache).

    Windows are chosen by the same :class:`ClipSampler` as the pixel video datasets
    (``clip_len``, ``clip_start``, ``time_range``, ``clip_stride``, ``short_video``,
    ``min_frames`` mean the same), on the timelines stored in the cache, so a cached
    clip is exactly the encoded pixel clip of the same window. Padding repeats the
    last latent.

    Output (default pipeline ``[PackVideoInputs()]``): ``inputs`` float32
    (L, C, h, w) latents and a ``VideoDataSample`` with metainfo video_path,
    video_id, fps, frame_indices, num_padded, ``input_kind='latents'``, sample_idx,
    and label/template when annotated. Before the pipeline the results hold
    ``latents`` (float32 tensor) and those keys.

    Shards are loaded lazily (memory-mapped) and the most recently used
    ``max_cached_shards`` stay open in each worker.

    Args:
        cache_dir: Folder written by ``tools/extract_latents.py``.
        split: Which of the cache's splits (``'train'``, ``'val'``, ``'test'``) to
            use, in the pixel dataset's order; ``None`` uses every cached video.
        clip_len: Frames per clip (context + 1).
        time_between_frames: If given, must equal the cache's (a guard against
            configs that disagree with the cache).
        clip_start: ``'random'``, ``'first'`` or ``'center'``; ``None`` means
            ``'random'`` in training and ``'first'`` in test mode.
        time_range: Optional ``(start_frac, end_frac)`` of each timeline.
        clip_stride: List every window with this stride instead of one per video.
        short_video: ``'pad'`` or ``'skip'``.
        min_frames: Fewest sampled frames a video needs.
        pipeline: Transforms after loading; ``None`` means ``[PackVideoInputs()]``.
        max_cached_shards: Open shards kept per worker.
        test_mode: Evaluation dataset.
        **kwargs: Passed to ``mmengine.dataset.BaseDataset``.

    Raises:
        LatentCacheError: The cache is missing, incomplete for ``split``, or was
            written with another ``time_between_frames``.
    """

    METAINFO: dict = dict(task='next_frame', dataset_type='latent_cache')

    def __init__(self,
                 cache_dir: str,
                 split: Optional[str] = None,
                 clip_len: int = 17,
                 time_between_frames: Optional[float] = None,
                 clip_start: Optional[str] = None,
                 time_range: Optional[Sequence[float]] = None,
                 clip_stride: Optional[int] = None,
                 short_video: str = 'pad',
                 min_frames: int = 2,
                 pipeline: Optional[Sequence[Any]] = None,
                 max_cached_shards: int = 4,
                 test_mode: bool = False,
                 **kwargs) -> None:
        self.cache_dir = osp.abspath(osp.expanduser(cache_dir))
        self.split = split
        self.time_between_frames = time_between_frames
        self.clip_sampler = ClipSampler(
            clip_len=clip_len,
            time_between_frames=time_between_frames or 0.25,
            clip_start=clip_start or ('first' if test_mode else 'random'),
            time_range=time_range,
            clip_stride=clip_stride,
            short_video=short_video,
            min_frames=min_frames)
        self.max_cached_shards = max(1, int(max_cached_shards))
        self.skipped_videos: Dict[str, str] = {}
        self._shards: 'OrderedDict[str, dict]' = OrderedDict()
        if pipeline is None:
            pipeline = [PackVideoInputs()]
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(data_root=self.cache_dir, pipeline=built, test_mode=test_mode,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the index into one data info per clip (or per video for random starts)."""
        index = read_index(self.cache_dir)
        cached_tbf = float(index['time_between_frames'])
        if self.time_between_frames is not None and \
                abs(float(self.time_between_frames) - cached_tbf) > 1e-9:
            raise LatentCacheError(
                f'the latent cache {self.cache_dir!r} samples frames every {cached_tbf} s, '
                f'but time_between_frames={self.time_between_frames} was asked; extract a '
                'cache with the same setting')
        self.clip_sampler.time_between_frames = cached_tbf
        videos = index['videos']
        if self.split is None:
            keys = list(videos)
        elif self.split in index['splits']:
            keys = index['splits'][self.split]
        else:
            raise LatentCacheError(
                f'the latent cache {self.cache_dir!r} has no split {self.split!r} (it has '
                f'{sorted(index["splits"])}); {_EXTRACT_HINT} --split {self.split}')
        pending = [k for k in keys if videos[k]['status'] == 'pending']
        if pending:
            raise LatentCacheError(
                f'the latent cache {self.cache_dir!r} is incomplete: {len(pending)} of '
                f'{len(keys)} video(s)' + (f' of split {self.split!r}' if self.split else '') +
                f' are not extracted yet (e.g. {pending[0]!r}); {_EXTRACT_HINT} --out '
                f'{self.cache_dir} to finish it (it resumes)')

        infos = []
        for key in keys:
            entry = videos[key]
            if entry['status'] != 'ok':
                self.skipped_videos[key] = entry.get('reason', 'unusable when extracted')
                continue
            base = dict(video_path=entry['path'], video_id=entry['id'], fps=entry['fps'],
                        num_frames=entry['num_frames'], timeline=entry['timeline'],
                        shard=index['shards'][entry['shard']]['file'],
                        offset=entry['offset'], length=entry['length'])
            for name in ('label', 'template', 'caption'):
                if name in entry:
                    base[name] = entry[name]
            try:
                windows = (self.clip_sampler.windows(entry['length'])
                           if self.clip_sampler.deterministic else None)
                if windows is None:
                    reason = self.clip_sampler.check(entry['length'])
                    if reason:
                        raise VideoTooShortError(reason)
            except VideoTooShortError as err:
                self.skipped_videos[key] = f'too short: {err}'
                continue
            if windows is None:
                infos.append(base)
            else:
                infos.extend(dict(base, positions=list(w.positions), num_padded=w.num_padded)
                             for w in windows)
        if self.skipped_videos:
            LoadVideoClip.num_skipped += len(self.skipped_videos)
            shown = [f'{k} ({r})' for k, r in list(self.skipped_videos.items())[:10]]
            log_data_warning(f'Skipped {len(self.skipped_videos)} video(s) of the latent cache '
                             f'{self.cache_dir!r}: ' + '; '.join(shown))
        if not infos:
            raise LatentCacheError(f'no usable clip in the latent cache {self.cache_dir!r} '
                                   f'({self.clip_sampler})')
        return infos

    def _shard(self, name: str) -> dict:
        shard = self._shards.get(name)
        if shard is None:
            # Memory-mapped: a clip reads only its own pages of the shard.
            shard = load_shard(osp.join(self.cache_dir, name), mmap=True)
            self._shards[name] = shard
            while len(self._shards) > self.max_cached_shards:
                self._shards.popitem(last=False)
        else:
            self._shards.move_to_end(name)
        return shard

    def __getstate__(self) -> dict:
        # Workers open their own shards; do not pickle open mmaps into them.
        state = self.__dict__.copy()
        state['_shards'] = OrderedDict()
        return state

    def prepare_data(self, idx: int) -> Any:
        """Load the window's latents and run the pipeline."""
        info = self.get_data_info(idx)
        if 'positions' in info:
            positions, num_padded = info.pop('positions'), info['num_padded']
        else:
            window = self.clip_sampler.sample(info['length'])
            positions, num_padded = list(window.positions), window.num_padded
        shard = self._shard(info.pop('shard'))
        offset = info.pop('offset')
        rows = torch.as_tensor([offset + p for p in positions])
        timeline = info.pop('timeline')
        info.pop('length')
        info['latents'] = shard['latents'][rows].float()
        info['frame_indices'] = [int(timeline[p]) for p in positions]
        info['num_padded'] = num_padded
        return self.pipeline(info)


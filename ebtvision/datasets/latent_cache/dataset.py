"""LatentClipDataset: clips drawn from the frame latents of a latent cache."""
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.dataset import BaseDataset

from ebtvision.registry import DATASETS, TRANSFORMS
from ..skip_report import log_data_warning
from ..transforms.video import LoadVideoClip, PackVideoInputs
from ..video_sampling import ClipSampler, VideoTooShortError
from .format import _EXTRACT_HINT, LatentCacheError, load_shard, read_index


def _plain(config) -> dict:
    """A config dict as plain data (ConfigDict, tuples), for comparing with the JSON
    the cache's index holds."""
    import json
    to_dict = getattr(config, 'to_dict', None)
    return json.loads(json.dumps(to_dict() if to_dict else dict(config)))


@DATASETS.register_module()
class LatentClipDataset(BaseDataset):
    """Clips of cached frame latents (the cache is described in :mod:`.format`).

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
        encoder: If given (the config's ``model.encoder``), must equal the encoder the
            cache was extracted with: latents of another encoder or scaling (e.g. SD-VAE
            latents x 0.18215 for a model trained on unscaled ones) would train without
            any error, on the wrong numbers.
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
            written with another ``time_between_frames`` or ``encoder``.
    """

    METAINFO: dict = dict(task='next_frame', dataset_type='latent_cache')

    def __init__(self,
                 cache_dir: str,
                 split: Optional[str] = None,
                 clip_len: int = 17,
                 time_between_frames: Optional[float] = None,
                 encoder: Optional[dict] = None,
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
        self.encoder = None if encoder is None else _plain(encoder)
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
        cached_encoder = _plain(index.get('encoder') or {})
        if self.encoder is not None and self.encoder != cached_encoder:
            keys = sorted(k for k in set(self.encoder) | set(cached_encoder)
                          if self.encoder.get(k) != cached_encoder.get(k))
            changes = ', '.join(f'{k}: cache {cached_encoder.get(k)!r}, config '
                                f'{self.encoder.get(k)!r}' for k in keys)
            raise LatentCacheError(
                f'the latent cache {self.cache_dir!r} was extracted with another encoder '
                f'({changes}); extract a cache with this config\'s encoder')
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

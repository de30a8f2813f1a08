"""Latent cache extraction: every frame of each video's timeline through the encoder.

Videos are decoded (optionally in ``DataLoader`` workers) by :class:`TimelineFrames`,
encoded by :func:`encode_frames` and written shard by shard by
:class:`~ebtvision.datasets.latent_cache.writer.LatentCacheWriter`;
:func:`extract_latent_cache` runs it all (``tools/extract_latents.py``).
"""
import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch

from ..skip_report import log_data_warning
from ..transforms.video import LoadVideoClip
from ..video_reader import VideoReader, VideoReadError, VideoTruncatedError
from ..video_sampling import VideoTooShortError, sample_timeline
from .writer import LatentCacheWriter


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

"""Read one clip from a video with a next-frame config's own validation data settings.

    from ebtvision.apis import clip_dataset_cfg, read_video_clip
    ds_cfg, ds_cls = clip_dataset_cfg(cfg)
    clip = read_video_clip(ds_cfg, ds_cls, 'walk.mp4', context=4, frames=8)
    clip.inputs, clip.times, clip.context, clip.frames

The frames are sampled and transformed as the config's validation dataset does (frame
spacing ``time_between_frames``, resize / crop pipeline): ``context + frames``
consecutive sampled frames from ``start_fraction`` of the video's timeline on (default:
where the validation ``time_range`` starts, i.e. held-out footage).
"""
import copy
import inspect
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict

from ebtvision.models.thinking.options import positive_int

#: Predicted frames when ``frames`` is not given (fewer if the video is too short).
DEFAULT_FRAMES = 8
#: Keys of a video dataset config that decide which frames a clip holds and how they
#: look; the one-video dataset that reads the clip keeps them and nothing else.
CLIP_KEYS = ('time_between_frames', 'min_frames', 'pipeline')
#: How the arguments are named in messages (a command line passes its flags).
ARGUMENT_NAMES = dict(video='video', context='context', frames='frames',
                      start_fraction='start_fraction')


class VideoClipError(ValueError):
    """No clip can be read as asked: the message says why."""


@dataclass
class VideoClip:
    """A clip read from a video, ready for :class:`NextFrameInferencer`.

    Attributes:
        inputs: ``(context + frames, 3, H, W)`` uint8 frames, as the dataset packs them.
        data_sample: Its ``VideoDataSample`` (``fps``, ``frame_indices``... in metainfo).
        video: The video file.
        context: Real frames the model conditions on.
        frames: Frames to predict after them (their ground truth ends the clip).
        start_fraction: Where the clip starts, as a fraction of the video's timeline.
        time_between_frames: Seconds between sampled frames.
        trained_context: Context length the config trains with (``clip_len - 1``).
        available: Sampled frames the video has from ``start_fraction`` on.
        times: Seconds into the video of each frame of the clip.
    """
    inputs: torch.Tensor
    data_sample: object
    video: str
    context: int
    frames: int
    start_fraction: float
    time_between_frames: float
    trained_context: int
    available: int
    times: List[float]

    @property
    def item(self) -> dict:
        """The clip as a dataset item: ``inputs`` and ``data_samples``."""
        return dict(inputs=self.inputs, data_samples=self.data_sample)


def _plain(node):
    return node.to_dict() if isinstance(node, ConfigDict) else copy.deepcopy(node)


def clip_dataset_cfg(cfg: Config, config_path: Optional[str] = None) -> Tuple[dict, type]:
    """The config's validation (else test) video dataset config and its class.

    Raises:
        VideoClipError: The config has no such dataset, or one that does not read pixel
            frames (e.g. a latent cache).
    """
    from ebtvision.datasets import BaseVideoClipDataset
    from ebtvision.registry import DATASETS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    config_path = config_path or getattr(cfg, 'filename', None) or 'the config'
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise VideoClipError(f'{config_path} defines no val_dataloader.dataset to take the '
                             'video settings from')
    ds_cfg = _plain(loader['dataset'])
    ds_type = ds_cfg.get('type')
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    if not (isinstance(ds_cls, type) and issubclass(ds_cls, BaseVideoClipDataset)):
        raise VideoClipError(
            f'{config_path}: val_dataloader.dataset is {ds_type!r}; reading a clip needs a '
            'pixel video dataset (VideoFolderDataset, SSv2Dataset) to read frames with. For '
            'a config that trains from the latent cache, use the pixel config it was '
            'extracted from.')
    return ds_cfg, ds_cls


def default_video(ds_cfg: dict, config_path: str = 'the config',
                  names: Optional[Dict[str, str]] = None) -> str:
    """The first video of the dataset (listed without probing)."""
    from ebtvision.registry import DATASETS
    video = dict(ARGUMENT_NAMES, **(names or {}))['video']
    lazy = dict(ds_cfg, pipeline=[], lazy_init=True)
    lazy.pop('indices', None)
    try:
        videos = DATASETS.build(lazy).list_videos()
    except (FileNotFoundError, OSError, ValueError) as error:
        raise VideoClipError(f'cannot list the validation videos of {config_path} ({error}); '
                             f'pass a video with {video}') from None
    if not videos:
        raise VideoClipError(f'{config_path}: the validation dataset lists no video; pass '
                             f'{video}')
    return videos[0]['video_path']


def _default_of(cls: type, name: str):
    for klass in cls.__mro__:
        try:
            parameter = inspect.signature(klass.__init__).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def available_frames(video: str, time_between_frames: float, start_fraction: float) -> dict:
    """How many sampled frames the video has from ``start_fraction`` of its timeline on:
    ``available``, ``total`` (sampled), ``num_frames`` (decoded) and ``fps``."""
    from ebtvision.datasets import VideoReader, VideoReadError, sample_timeline
    from ebtvision.datasets.video_sampling import time_range_bounds
    try:
        reader = VideoReader(video)
    except VideoReadError as error:
        raise VideoClipError(str(error)) from None
    timeline = sample_timeline(reader.num_frames, reader.fps, time_between_frames)
    lo, hi = time_range_bounds(len(timeline), (start_fraction, 1.0))
    return dict(available=hi - lo, total=len(timeline), num_frames=reader.num_frames,
                fps=reader.fps)


def read_video_clip(ds_cfg: dict,
                    ds_cls: type,
                    video: Optional[str] = None,
                    context: Optional[int] = None,
                    frames: Optional[int] = None,
                    start_fraction: Optional[float] = None,
                    config_path: str = 'the config',
                    names: Optional[Dict[str, str]] = None) -> VideoClip:
    """Read a clip of ``context + frames`` frames with a dataset config's settings.

    Args:
        ds_cfg: A video dataset config (see :func:`clip_dataset_cfg`).
        ds_cls: Its class (for the defaults the config leaves out).
        video: The video file (default: the dataset's first video).
        context: Real frames to condition on (default: the dataset's ``clip_len - 1``).
        frames: Frames to predict (default :data:`DEFAULT_FRAMES`, fewer when the
            video has fewer after the context).
        start_fraction: Where the clip starts, in [0, 1) of the video's timeline
            (default: the start of the dataset's ``time_range``, else 0).
        config_path: How messages name the config.
        names: How messages name the arguments (default :data:`ARGUMENT_NAMES`; a
            command line passes its flags).

    Raises:
        VideoClipError: The video is missing, unreadable or too short.
        ThinkingOptionError: (a ``ValueError``) ``context`` or ``frames`` below 1.
    """
    from ebtvision.registry import DATASETS
    from ebtvision.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    names = dict(ARGUMENT_NAMES, **(names or {}))
    context = None if context is None else positive_int(names['context'], context)
    frames = None if frames is None else positive_int(names['frames'], frames)
    if start_fraction is not None and not 0 <= start_fraction < 1:
        raise VideoClipError(f'{names["start_fraction"]} must be in [0, 1), got '
                             f'{start_fraction}')
    video = osp.abspath(osp.expanduser(str(video))) if video else default_video(
        ds_cfg, config_path, names)
    if not osp.isfile(video):
        raise VideoClipError(f'video {video} does not exist')
    tbf = ds_cfg.get('time_between_frames', _default_of(ds_cls, 'time_between_frames'))
    val_range = ds_cfg.get('time_range')
    start = start_fraction
    if start is None:
        start = float(val_range[0]) if val_range else 0.0
    clip_len = ds_cfg.get('clip_len', _default_of(ds_cls, 'clip_len'))
    context = context or max(1, int(clip_len) - 1)
    found = available_frames(video, tbf, start)
    available = found['available']
    if frames is None and available > context:
        frames = min(DEFAULT_FRAMES, available - context)
    frames = frames or DEFAULT_FRAMES
    if context + frames > available:
        raise VideoClipError(
            f'video {video} is too short for {names["context"]} {context} + '
            f'{names["frames"]} {frames} = {context + frames} frames: sampled every {tbf} s '
            f'it has {found["total"]} frames ({found["num_frames"]} at {found["fps"]:.2f} '
            f'fps), {available} of them from {names["start_fraction"]} {start:g} on. Use '
            f'fewer frames, a smaller {names["start_fraction"]} or a longer video.')
    one_video = {k: _plain(ds_cfg[k]) for k in CLIP_KEYS if k in ds_cfg}
    one_video.update(
        type='VideoFolderDataset', data_root=osp.dirname(video), file_list=[osp.basename(video)],
        clip_len=context + frames, time_between_frames=tbf, clip_start='first',
        time_range=(start, 1.0), clip_stride=None, short_video='skip', test_mode=True)
    try:
        dataset = DATASETS.build(one_video)
        item = dataset[0]
    except (FileNotFoundError, OSError, ValueError) as error:
        raise VideoClipError(f'cannot read a clip from {video}: {error}') from None
    got = item['inputs'].shape[0]
    if got != context + frames:  # the pipeline must keep every frame
        raise VideoClipError(f'the validation pipeline gave {got} frames from {video}, '
                             f'expected {context + frames}')
    meta = item['data_samples'].metainfo
    fps = float(meta.get('fps') or 0)
    times = ([i / fps for i in meta['frame_indices']] if fps and 'frame_indices' in meta
             else [i * tbf for i in range(context + frames)])
    return VideoClip(inputs=item['inputs'], data_sample=item['data_samples'], video=video,
                     context=context, frames=frames, start_fraction=start,
                     time_between_frames=tbf, trained_context=int(clip_len) - 1,
                     available=available, times=times)

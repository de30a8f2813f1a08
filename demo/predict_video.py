"""Roll a next-frame model out on a video: ground truth beside prediction, plus energies.

    python demo/predict_video.py CONFIG CHECKPOINT [--video PATH] [--context K]
        [--frames N] [--num-candidates M] [--thinking-steps S] [--start-fraction F]
        [--out PATH.mp4|.gif] [--device cpu|cuda]

One clip of K + N frames is read from the video with the config's own validation
data settings (frame spacing, resize/crop pipeline), starting at fraction F of the
video's timeline (default: where the config's validation range starts, i.e. held-out
footage). The model sees the first K real frames and predicts the next N one at a
time, each prediction appended to its context (``model.rollout``). EBTs can think
longer (``--thinking-steps``) and self-verify (``--num-candidates``: the lowest-energy
of M candidates is kept per frame).

Writes (default ``work_dirs/<config name>/rollout.mp4``):

* ``OUT``: video at the data's frame rate (1 / time_between_frames), ground truth on
  the left, prediction on the right; context frames are on both sides with a blue
  border, predicted frames orange, their ground truth green.
* ``OUT_STEM_energy.png``: per predicted frame, the final energy (the EBT's
  uncertainty; absent for Transformer++) and the latent smooth-L1 against the ground
  truth next to the copy-the-last-context-frame baseline.
* ``OUT_STEM_metrics.json``: the same numbers.

The checkpoint is loaded weights-only (nothing in it is executed).
"""
import copy
import json
import os.path as osp
import sys
import time
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.models.thinking.options import cli_type, positive_int  # noqa: E402
from ebtvision.utils import ArgumentParser, register_all_modules  # noqa: E402

#: Predicted frames when --frames is not given (fewer if the video is too short).
DEFAULT_FRAMES = 8
#: Keys of a video dataset config that decide which frames a clip holds and how they
#: look; the one-video dataset of the demo keeps them and nothing else.
CLIP_KEYS = ('time_between_frames', 'min_frames', 'pipeline')


class DemoError(RuntimeError):
    """A problem with the inputs, reported as ``error: ...`` without a traceback."""


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Predict a video with a next-frame model (EBT or Transformer++)')
    parser.add_argument('config', help='next-frame config file')
    parser.add_argument('checkpoint', help='checkpoint file (loaded weights-only)')
    parser.add_argument('--video', help='video file (default: the first video of the '
                        "config's validation dataset)")
    parser.add_argument('--context', type=cli_type(positive_int), help='real frames to condition on (default: the '
                        "config's context length, clip_len - 1)")
    parser.add_argument('--frames', type=cli_type(positive_int), help=f'frames to predict (default: '
                        f'{DEFAULT_FRAMES}, fewer if the video is too short)')
    parser.add_argument('--num-candidates', type=cli_type(positive_int), default=1,
                        help='EBT: self-verification over M candidates per frame')
    parser.add_argument('--thinking-steps', type=cli_type(positive_int),
                        help="EBT: energy-minimisation steps (default: the config's)")
    parser.add_argument('--start-fraction', type=float,
                        help='where the clip starts, as a fraction of the video timeline '
                        "(default: the start of the config's validation time_range, else 0)")
    parser.add_argument('--out', help='output .mp4 or .gif (default: '
                        'work_dirs/<config name>/rollout.mp4)')
    parser.add_argument('--height', type=int, default=192, help='displayed frame height (px)')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:N]')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- checks
def check_options(cfg: Config, args) -> type:
    """Validate the command line against the config's model; return the model class."""
    from ebtvision.models import EBTNextFrame
    from ebtvision.models.algorithms.next_frame_predictor import NextFramePredictor
    from ebtvision.registry import MODELS
    model_type = cfg.model.get('type')
    model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    if not (isinstance(model_cls, type) and issubclass(model_cls, NextFramePredictor)):
        raise DemoError(f'{args.config}: model type {model_type!r} is not a next-frame '
                        'model (EBTNextFrame, TransformerPPNextFrame)')
    is_ebt = issubclass(model_cls, EBTNextFrame)
    if args.num_candidates < 1:
        raise DemoError(f'--num-candidates must be >= 1, got {args.num_candidates}')
    if not is_ebt and args.num_candidates > 1:
        raise DemoError(f'--num-candidates {args.num_candidates}: self-verification needs '
                        f'energies, which only EBTs have; {model_cls.__name__} predicts each '
                        'frame in one pass (use --num-candidates 1)')
    if args.thinking_steps is not None:
        if not is_ebt:
            raise DemoError(f'--thinking-steps applies to EBTs; {model_cls.__name__} does '
                            'not think')
        if args.thinking_steps < 1:
            raise DemoError(f'--thinking-steps must be >= 1, got {args.thinking_steps}')
    if args.context is not None and args.context < 1:
        raise DemoError(f'--context must be >= 1, got {args.context}')
    if args.frames is not None and args.frames < 1:
        raise DemoError(f'--frames must be >= 1, got {args.frames}')
    if args.start_fraction is not None and not 0 <= args.start_fraction < 1:
        raise DemoError(f'--start-fraction must be in [0, 1), got {args.start_fraction}')
    if args.height < 16:
        raise DemoError(f'--height must be >= 16, got {args.height}')
    if args.out and osp.splitext(args.out)[1].lower() not in ('.mp4', '.gif'):
        raise DemoError(f'--out {args.out}: write an .mp4 or a .gif')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        raise DemoError('--device cuda but no CUDA device is available; use --device cpu')
    return model_cls


def load_model(cfg: Config, checkpoint: str, device: str) -> torch.nn.Module:
    """Build the config's model, load the checkpoint weights-only, check it can decode."""
    from ebtvision.apis import ModelLoadError, init_model
    try:
        model = init_model(cfg, checkpoint, device)
    except ModelLoadError as error:
        raise DemoError(str(error)) from None
    if not model.can_decode:
        encoder = type(model.encoder).__name__ if model.encoder is not None else 'no encoder'
        raise DemoError(f'the model of this config ({encoder}) cannot decode latents back to '
                        'frames, so there is nothing to show; use a config whose encoder '
                        'decodes (PixelPatchEncoder, FrozenVAEEncoder), not one that only '
                        'reads cached latents')
    return model


# ----------------------------------------------------------------------------- data
def _plain(node):
    return node.to_dict() if isinstance(node, ConfigDict) else copy.deepcopy(node)


def val_dataset_cfg(cfg: Config, config_path: str) -> Tuple[dict, type]:
    """The config's validation video dataset config and its class."""
    from ebtvision.datasets import BaseVideoClipDataset
    from ebtvision.registry import DATASETS
    loader = cfg.get('val_dataloader') or cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise DemoError(f'{config_path} defines no val_dataloader.dataset to take the video '
                        'settings from')
    ds_cfg = _plain(loader['dataset'])
    ds_type = ds_cfg.get('type')
    ds_cls = DATASETS.get(ds_type) if isinstance(ds_type, str) else ds_type
    if not (isinstance(ds_cls, type) and issubclass(ds_cls, BaseVideoClipDataset)):
        raise DemoError(f'{config_path}: val_dataloader.dataset is {ds_type!r}; the demo needs '
                        'a pixel video dataset (VideoFolderDataset, SSv2Dataset) to read frames '
                        'with. For a config that trains from the latent cache, use the pixel '
                        'config it was extracted from.')
    return ds_cfg, ds_cls


def default_video(ds_cfg: dict, config_path: str) -> str:
    """The first video of the validation dataset (listed without probing)."""
    from ebtvision.registry import DATASETS
    lazy = dict(ds_cfg, pipeline=[], lazy_init=True)
    lazy.pop('indices', None)
    try:
        videos = DATASETS.build(lazy).list_videos()
    except (FileNotFoundError, OSError, ValueError) as error:
        raise DemoError(f'cannot list the validation videos of {config_path} ({error}); pass '
                        'a video with --video') from None
    if not videos:
        raise DemoError(f'{config_path}: the validation dataset lists no video; pass --video')
    return videos[0]['video_path']


def _default_of(cls: type, name: str):
    import inspect
    for klass in cls.__mro__:
        try:
            parameter = inspect.signature(klass.__init__).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if parameter is not None and parameter.default is not inspect.Parameter.empty:
            return parameter.default
    return None


def available_frames(video: str, time_between_frames: float, start_fraction: float) -> dict:
    """How many sampled frames the video has from ``start_fraction`` of its timeline on."""
    from ebtvision.datasets import VideoReader, VideoReadError, sample_timeline
    from ebtvision.datasets.video_sampling import time_range_bounds
    try:
        reader = VideoReader(video)
    except VideoReadError as error:
        raise DemoError(str(error)) from None
    timeline = sample_timeline(reader.num_frames, reader.fps, time_between_frames)
    lo, hi = time_range_bounds(len(timeline), (start_fraction, 1.0))
    return dict(available=hi - lo, total=len(timeline), num_frames=reader.num_frames,
                fps=reader.fps)


def read_clip(args, ds_cfg: dict, ds_cls: type) -> Tuple[dict, dict]:
    """Read the demo's clip with the validation data settings.

    Args:
        args: The parsed command line.
        ds_cfg: The config's validation dataset config.
        ds_cls: Its class (for defaults the config leaves out).

    Returns:
        ``(item, info)``: the dataset item (``inputs`` uint8 (L, 3, H, W),
        ``data_samples``) and ``context``, ``frames``, ``video``, ``start_fraction``,
        ``time_between_frames``, ``trained_context``.

    Raises:
        DemoError: The video is missing, unreadable or too short.
    """
    from ebtvision.registry import DATASETS
    video = osp.abspath(osp.expanduser(args.video)) if args.video else default_video(
        ds_cfg, args.config)
    if not osp.isfile(video):
        raise DemoError(f'video {video} does not exist')
    tbf = ds_cfg.get('time_between_frames', _default_of(ds_cls, 'time_between_frames'))
    val_range = ds_cfg.get('time_range')
    start = args.start_fraction
    if start is None:
        start = float(val_range[0]) if val_range else 0.0
    clip_len = ds_cfg.get('clip_len', _default_of(ds_cls, 'clip_len'))
    context = args.context or max(1, int(clip_len) - 1)
    found = available_frames(video, tbf, start)
    available = found['available']
    frames = args.frames
    if frames is None and available > context:
        frames = min(DEFAULT_FRAMES, available - context)
        if frames < DEFAULT_FRAMES:
            print(f'note: the video has {available} frames from {start:.0%} of its timeline '
                  f'on; predicting {frames} instead of {DEFAULT_FRAMES}')
    frames = frames or DEFAULT_FRAMES
    if context + frames > available:
        raise DemoError(
            f'video {video} is too short for --context {context} + --frames {frames} = '
            f'{context + frames} frames: sampled every {tbf} s it has {found["total"]} frames '
            f'({found["num_frames"]} at {found["fps"]:.2f} fps), {available} of them from '
            f'--start-fraction {start:g} on. Use fewer frames, a smaller --start-fraction or '
            'a longer video.')
    one_video = {k: _plain(ds_cfg[k]) for k in CLIP_KEYS if k in ds_cfg}
    one_video.update(
        type='VideoFolderDataset', data_root=osp.dirname(video), file_list=[osp.basename(video)],
        clip_len=context + frames, time_between_frames=tbf, clip_start='first',
        time_range=(start, 1.0), clip_stride=None, short_video='skip', test_mode=True)
    try:
        dataset = DATASETS.build(one_video)
        item = dataset[0]
    except (FileNotFoundError, OSError, ValueError) as error:
        raise DemoError(f'cannot read a clip from {video}: {error}') from None
    got = item['inputs'].shape[0]
    if got != context + frames:  # the pipeline must keep every frame
        raise DemoError(f'the validation pipeline gave {got} frames from {video}, expected '
                        f'{context + frames}')
    return item, dict(video=video, context=context, frames=frames, start_fraction=start,
                      time_between_frames=tbf, trained_context=int(clip_len) - 1)


# ----------------------------------------------------------------------------- rollout
@torch.no_grad()
def rollout(model, item: dict, context: int, frames: int, num_candidates: int,
            thinking_steps: Optional[int]) -> dict:
    """Encode the clip, condition on ``context`` real frames, predict ``frames``.

    Returns:
        ``truth`` / ``prediction``: uint8 (H, W, 3) frames (all real ones; the
        predicted ones), ``energies`` (list or None), ``errors`` and
        ``copy_last_errors`` (latent smooth-L1 per predicted frame).
    """
    from ebtvision.models.heads import frame_errors
    from ebtvision.visualization import to_uint8_hwc
    batch = model.data_preprocessor(
        dict(inputs=[item['inputs']], data_samples=[item['data_samples']]), False)
    inputs, samples = batch['inputs'], batch['data_samples']
    latents = model.encode_inputs(inputs, samples)
    real, future = latents[:, :context], latents[:, context:]
    options = dict(num_candidates=num_candidates)
    if thinking_steps is not None:
        options['num_steps'] = thinking_steps
    predicted, energies = model.rollout(real, frames, **options)
    errors = frame_errors(predicted, future, 'smooth_l1')[0]
    copy_last = frame_errors(real[:, -1:].expand_as(future), future, 'smooth_l1')[0]
    decoded = model.decode_latents(predicted)[0]
    return dict(truth=[to_uint8_hwc(f) for f in inputs[0]],
                prediction=[to_uint8_hwc(f) for f in decoded],
                energies=None if energies is None else energies[0].float().cpu().tolist(),
                errors=errors.float().cpu().tolist(),
                copy_last_errors=copy_last.float().cpu().tolist())


def print_table(result: dict, times: List[float], context: int) -> None:
    """One row per predicted frame: energy, smooth-L1, copy-last smooth-L1."""
    energies = result['energies']
    print(f'{"frame":>7}{"time (s)":>10}{"energy":>12}{"smooth-L1":>12}{"copy-last":>12}')
    for index, (error, copy_last) in enumerate(zip(result['errors'],
                                                   result['copy_last_errors'])):
        energy = f'{energies[index]:12.4f}' if energies is not None else f'{"-":>12}'
        print(f'{"+" + str(index + 1):>7}{times[context + index]:10.2f}{energy}'
              f'{error:12.4f}{copy_last:12.4f}')
    mean = sum(result['errors']) / len(result['errors'])
    mean_copy = sum(result['copy_last_errors']) / len(result['copy_last_errors'])
    print(f'{"mean":>7}{"":>10}{"":>12}{mean:12.4f}{mean_copy:12.4f}')


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    from ebtvision.engine import atomic_write
    from ebtvision.visualization.video import (plot_rollout_curves, save_video,
                                               side_by_side_frames)
    try:
        if not osp.isfile(args.config):
            raise DemoError(f'config {args.config} does not exist')
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        model_cls = check_options(cfg, args)
        ds_cfg, ds_cls = val_dataset_cfg(cfg, args.config)
        config_name = osp.splitext(osp.basename(args.config))[0]
        out = args.out or osp.join('work_dirs', config_name, 'rollout.mp4')

        started = time.perf_counter()
        # The clip first: data problems show up before the (slow, for a VAE) model build.
        item, info = read_clip(args, ds_cfg, ds_cls)
        print(f'building {model_cls.__name__} from {args.config} and loading {args.checkpoint}',
              flush=True)
        model = load_model(cfg, args.checkpoint, args.device)
    except DemoError as error:
        sys.exit(f'error: {error}')
    context, frames = info['context'], info['frames']
    meta = item['data_samples'].metainfo
    fps = float(meta.get('fps') or 0)
    times = ([i / fps for i in meta['frame_indices']] if fps and 'frame_indices' in meta
             else [i * info['time_between_frames'] for i in range(context + frames)])
    print(f'clip: {info["video"]}, {context} context + {frames} predicted frames every '
          f'{info["time_between_frames"]} s from {times[0]:.2f} s (start fraction '
          f'{info["start_fraction"]:g}), frames {tuple(item["inputs"].shape[-2:])}', flush=True)
    if context + frames - 1 > info['trained_context']:
        print(f'note: the rollout reaches {context + frames - 1} frames of context, beyond the '
              f'{info["trained_context"]} the config trains with (positions extrapolate)')
    is_ebt = hasattr(model, 'thinker')
    how = (f'{args.thinking_steps or model.test_cfg.get("num_steps") or model.thinker.num_steps}'
           f' thinking step(s), {args.num_candidates} candidate(s) per frame'
           if is_ebt else 'one forward pass per frame')
    print(f'rolling out {frames} frame(s) on {args.device} ({how})...', flush=True)
    result = rollout(model, item, context, frames, args.num_candidates, args.thinking_steps)

    stem = osp.splitext(out)[0]
    truth = result['truth']
    video_frames = side_by_side_frames(truth, result['prediction'], context, args.height,
                                       times=times)
    save_video(video_frames, out, 1.0 / info['time_between_frames'])
    plot_path = plot_rollout_curves(
        f'{stem}_energy.png', result['errors'], result['copy_last_errors'], result['energies'],
        times=[t - times[context - 1] for t in times[context:]],
        title=f'{config_name}: {osp.basename(info["video"])}, context {context}, '
        f'{"M=" + str(args.num_candidates) if is_ebt else "Transformer++"}')
    metrics_path = f'{stem}_metrics.json'
    atomic_write(json.dumps(dict(
        config=args.config, checkpoint=args.checkpoint, video=info['video'], context=context,
        frames=frames, start_fraction=info['start_fraction'],
        time_between_frames=info['time_between_frames'], num_candidates=args.num_candidates,
        thinking_steps=args.thinking_steps, frame_times=times, energies=result['energies'],
        smooth_l1=result['errors'], copy_last_smooth_l1=result['copy_last_errors']),
        indent=2).encode(), metrics_path)

    print()
    print_table(result, times, context)
    if result['energies'] is None:
        print('(Transformer++ has no energy: only the error curve is plotted)')
    print()
    print(f'wrote {out} ({len(video_frames)} frames, {video_frames[0].shape[1]}x'
          f'{video_frames[0].shape[0]}, {1.0 / info["time_between_frames"]:.2f} fps; left: '
          'ground truth, right: prediction; blue border: context)')
    print(f'wrote {plot_path}')
    print(f'wrote {metrics_path}')
    print(f'done in {time.perf_counter() - started:.1f} s')


if __name__ == '__main__':
    main()

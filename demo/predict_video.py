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

The checkpoint is loaded weights-only (nothing in it is executed). The Python API
behind the demo: ``ebtvision.apis.NextFrameInferencer``.
"""
import json
import os.path as osp
import sys
import time
from typing import List, Optional, Tuple

import torch
from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.apis import (DEFAULT_FRAMES, EnergyBasedModel, ModelLoadError,  # noqa: E402
                            NextFrameInferencer, NextFrameResult, VideoClip, VideoClipError,
                            atomic_write, check_video_writer, clip_dataset_cfg, load_config,
                            plot_rollout_curves, read_video_clip, rollout_clip, save_video,
                            side_by_side_frames)
from ebtvision.apis.options import cli_type, positive_int  # noqa: E402
from ebtvision.utils import (ArgumentParser, exit_on_missing_extra,  # noqa: E402
                             register_all_modules)

#: How the clip's messages name the arguments: by their flags.
FLAGS = dict(video='--video', context='--context', frames='--frames',
             start_fraction='--start-fraction')


class DemoError(RuntimeError):
    """A problem with the inputs, reported as ``error: ...`` without a traceback."""


def parse_args(argv=None):
    parser = ArgumentParser(
        description='Predict a video with a next-frame model (EBT or Transformer++)')
    parser.add_argument('config', help='next-frame config file')
    parser.add_argument('checkpoint', help='checkpoint file (loaded weights-only)')
    parser.add_argument('--video', help='video file (default: the first video of the '
                        "config's validation dataset)")
    parser.add_argument('--context', type=cli_type(positive_int),
                        help='real frames to condition on (default: the '
                        "config's context length, clip_len - 1)")
    parser.add_argument('--frames', type=cli_type(positive_int),
                        help=f'frames to predict (default: '
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
    try:
        model_cls = NextFrameInferencer.model_class(cfg)
    except ModelLoadError as error:
        raise DemoError(f'{args.config}: {error}') from None
    is_ebt = issubclass(model_cls, EnergyBasedModel)
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


def load_model(cfg: Config, checkpoint: str, device: str) -> NextFrameInferencer:
    """The inferencer: the config's model with the checkpoint loaded weights-only (it
    must be able to decode)."""
    try:
        return NextFrameInferencer(cfg, checkpoint, device)
    except ModelLoadError as error:
        raise DemoError(str(error)) from None


# ----------------------------------------------------------------------------- data
def val_dataset_cfg(cfg: Config, config_path: str) -> Tuple[dict, type]:
    """The config's validation video dataset config and its class."""
    try:
        return clip_dataset_cfg(cfg, config_path)
    except VideoClipError as error:
        raise DemoError(str(error)) from None


def load_clip(args, ds_cfg: dict, ds_cls: type) -> VideoClip:
    """Read the demo's clip with the validation data settings (see
    :func:`ebtvision.apis.read_video_clip`); notes a shortened rollout.

    Raises:
        DemoError: The video is missing, unreadable or too short.
    """
    try:
        clip = read_video_clip(ds_cfg, ds_cls, args.video, args.context, args.frames,
                               args.start_fraction, args.config, FLAGS)
    except VideoClipError as error:
        raise DemoError(str(error)) from None
    if args.frames is None and clip.frames < DEFAULT_FRAMES:
        print(f'note: the video has {clip.available} frames from {clip.start_fraction:.0%} of '
              f'its timeline on; predicting {clip.frames} instead of {DEFAULT_FRAMES}')
    return clip


def read_clip(args, ds_cfg: dict, ds_cls: type) -> Tuple[dict, dict]:
    """:func:`load_clip` as ``(item, info)``: the dataset item (``inputs`` uint8
    (L, 3, H, W), ``data_samples``) and ``context``, ``frames``, ``video``,
    ``start_fraction``, ``time_between_frames``, ``trained_context``."""
    clip = load_clip(args, ds_cfg, ds_cls)
    return clip.item, dict(video=clip.video, context=clip.context, frames=clip.frames,
                           start_fraction=clip.start_fraction,
                           time_between_frames=clip.time_between_frames,
                           trained_context=clip.trained_context)


# ----------------------------------------------------------------------------- rollout
def rollout(model, item: dict, context: int, frames: int, num_candidates: int,
            thinking_steps: Optional[int]) -> dict:
    """Encode the clip, condition ``model`` on ``context`` real frames, predict ``frames``
    (:func:`ebtvision.apis.rollout_clip`, for a model at hand).

    Returns:
        ``truth`` / ``prediction``: uint8 (H, W, 3) frames (all real ones; the
        predicted ones), ``energies`` (list or None), ``errors`` and
        ``copy_last_errors`` (latent smooth-L1 per predicted frame).
    """
    options = dict(num_candidates=num_candidates)
    if thinking_steps is not None:
        options['num_steps'] = thinking_steps
    result = rollout_clip(model, item['inputs'], item['data_samples'], context, frames,
                          **options)
    return dict(truth=result.truth, prediction=result.prediction, energies=result.energies,
                errors=result.errors, copy_last_errors=result.copy_last_errors)


def print_table(result: NextFrameResult, times: List[float], context: int) -> None:
    """One row per predicted frame: energy, smooth-L1, copy-last smooth-L1."""
    energies = result.energies
    print(f'{"frame":>7}{"time (s)":>10}{"energy":>12}{"smooth-L1":>12}{"copy-last":>12}')
    for index, (error, copy_last) in enumerate(zip(result.errors, result.copy_last_errors)):
        energy = f'{energies[index]:12.4f}' if energies is not None else f'{"-":>12}'
        print(f'{"+" + str(index + 1):>7}{times[context + index]:10.2f}{energy}'
              f'{error:12.4f}{copy_last:12.4f}')
    mean = sum(result.errors) / len(result.errors)
    mean_copy = sum(result.copy_last_errors) / len(result.copy_last_errors)
    print(f'{"mean":>7}{"":>10}{"":>12}{mean:12.4f}{mean_copy:12.4f}')


@exit_on_missing_extra
def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    try:
        if not osp.isfile(args.config):
            raise DemoError(f'config {args.config} does not exist')
        try:
            cfg = load_config(args.config, args.cfg_options)
        except ModelLoadError as error:
            raise DemoError(str(error)) from None
        model_cls = check_options(cfg, args)
        ds_cfg, ds_cls = val_dataset_cfg(cfg, args.config)
        config_name = osp.splitext(osp.basename(args.config))[0]
        out = args.out or osp.join('work_dirs', config_name, 'rollout.mp4')
        try:  # before the slow part: a missing H.264 encoder ends here, in one line
            check_video_writer(out)
        except RuntimeError as error:
            raise DemoError(str(error)) from None

        started = time.perf_counter()
        # The clip first: data problems show up before the (slow, for a VAE) model build.
        clip = load_clip(args, ds_cfg, ds_cls)
        print(f'building {model_cls.__name__} from {args.config} and loading {args.checkpoint}',
              flush=True)
        inferencer = load_model(cfg, args.checkpoint, args.device)
    except DemoError as error:
        sys.exit(f'error: {error}')
    context, frames, times = clip.context, clip.frames, clip.times
    print(f'clip: {clip.video}, {context} context + {frames} predicted frames every '
          f'{clip.time_between_frames} s from {times[0]:.2f} s (start fraction '
          f'{clip.start_fraction:g}), frames {tuple(clip.inputs.shape[-2:])}', flush=True)
    if context + frames - 1 > clip.trained_context:
        print(f'note: the rollout reaches {context + frames - 1} frames of context, beyond the '
              f'{clip.trained_context} the config trains with (positions extrapolate)')
    is_ebt = inferencer.is_ebt
    how = (f'{args.thinking_steps or inferencer.default_steps}'
           f' thinking step(s), {args.num_candidates} candidate(s) per frame'
           if is_ebt else 'one forward pass per frame')
    print(f'rolling out {frames} frame(s) on {args.device} ({how})...', flush=True)
    result = inferencer(clip, num_steps=args.thinking_steps, num_candidates=args.num_candidates)

    stem = osp.splitext(out)[0]
    video_frames = side_by_side_frames(result.truth, result.prediction, context, args.height,
                                       times=times)
    save_video(video_frames, out, 1.0 / clip.time_between_frames)
    plot_path = plot_rollout_curves(
        f'{stem}_energy.png', result.errors, result.copy_last_errors, result.energies,
        times=[t - times[context - 1] for t in times[context:]],
        title=f'{config_name}: {osp.basename(clip.video)}, context {context}, '
        f'{"M=" + str(args.num_candidates) if is_ebt else "Transformer++"}')
    metrics_path = f'{stem}_metrics.json'
    atomic_write(json.dumps(dict(
        config=args.config, checkpoint=args.checkpoint, video=clip.video, context=context,
        frames=frames, start_fraction=clip.start_fraction,
        time_between_frames=clip.time_between_frames, num_candidates=args.num_candidates,
        thinking_steps=args.thinking_steps, frame_times=times, energies=result.energies,
        smooth_l1=result.errors, copy_last_smooth_l1=result.copy_last_errors),
        indent=2).encode(), metrics_path)

    print()
    print_table(result, times, context)
    if result.energies is None:
        print('(Transformer++ has no energy: only the error curve is plotted)')
    print()
    print(f'wrote {out} ({len(video_frames)} frames, {video_frames[0].shape[1]}x'
          f'{video_frames[0].shape[0]}, {1.0 / clip.time_between_frames:.2f} fps; left: '
          'ground truth, right: prediction; blue border: context)')
    print(f'wrote {plot_path}')
    print(f'wrote {metrics_path}')
    print(f'done in {time.perf_counter() - started:.1f} s')


if __name__ == '__main__':
    main()

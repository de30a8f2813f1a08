"""Evaluate a checkpoint: python tools/test.py CONFIG CHECKPOINT [options].

The checkpoint (a file, or a URL MMEngine knows) is loaded weights-only: nothing in it is
executed. Thinking options are checked before anything is built: a value out of range or an
unknown ``test_cfg`` key ends in one ``error:`` line and exit code 2.

Outputs, as in OpenMMLab's tools: the metrics in ``<work_dir>/metrics.json`` (and printed);
``--out FILE.pkl`` the predictions (MMEngine's ``DumpResults``, made plain data);
``--show-dir DIR`` the visualisation hooks' grids; ``--no-vis`` drops those hooks only.
"""
import argparse
import json
import os
import os.path as osp
import sys


from mmengine.config import Config, DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.fileio import (CheckpointLoadError, atomic_write,  # noqa: E402
                              install_safe_checkpoint_io)
from ebtvision.models.thinking.options import (cli_type, noise_level, non_negative,  # noqa
                                               non_negative_int, positive_int, step_size)
from ebtvision.utils import (ArgumentParser, DataNotFoundError, build_runner,  # noqa: E402
                             check_data_roots, check_model_config, exit_with_error,
                             read_config, register_all_modules, setup_cpu_distributed,
                             teardown_distributed)
from ebtvision.utils.optional import exit_on_missing_extra  # noqa: E402
from ebtvision.utils.vis_backends import add_vis_backend_argument, use_vis_backends  # noqa

#: ``--out`` suffixes of the prediction dump (those MMEngine's ``DumpResults`` accepts).
PREDICTION_SUFFIXES = ('.pkl', '.pickle')


def parse_args(argv=None):
    parser = ArgumentParser(description='Test an ebtvision model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL (http(s)://, s3://...; loaded '
                        'weights-only), or "none" to evaluate the randomly initialised model '
                        '(e.g. the linear-probe floor)')
    parser.add_argument('--work-dir', help='where logs, grids and metrics go')
    parser.add_argument('--out', metavar='FILE.pkl',
                        help='dump the predictions to this .pkl / .pickle file: a list of one '
                        'dict per sample, tensors as numpy arrays (pickle and numpy read it, '
                        'no ebtvision needed). The metrics always go to '
                        '<work_dir>/metrics.json. Deprecated: FILE.json also gets the metrics')
    parser.add_argument('--noise-levels', type=cli_type(noise_level), nargs='+',
                        help='noise levels to evaluate, each in (0, 1], e.g. 0.1 0.2 0.3')
    parser.add_argument('--thinking-steps', type=cli_type(positive_int),
                        help='EBT: energy-minimisation steps at inference (think longer), >= 1')
    parser.add_argument('--alpha', type=cli_type(step_size),
                        help='EBT: step size at inference, > 0')
    parser.add_argument('--num-candidates', type=cli_type(positive_int),
                        help='EBT: self-verification over M candidates per image / clip (the '
                        'lowest final energy is kept, per frame for video)')
    parser.add_argument('--candidate-noise', type=cli_type(non_negative),
                        help='EBT: std of the start perturbation of the extra candidates')
    parser.add_argument('--tolerance', type=cli_type(non_negative),
                        help='EBT: adaptive compute, stop a sample once its energy changes by '
                        'less than this fraction per step (--thinking-steps is the budget)')
    parser.add_argument('--reverse-steps', type=cli_type(positive_int),
                        help='DiT: network evaluations of the reverse process')
    parser.add_argument('--reverse-method', choices=['ddpm', 'ddim'],
                        help='DiT: reverse process')
    parser.add_argument('--respace', action=argparse.BooleanOptionalAction, default=None,
                        help="DiT: the reference's protocol, the schedule stretched so that it "
                        'starts at a trained timestep (--no-respace: start at the real '
                        "level's timestep)")
    parser.add_argument('--recurse', type=cli_type(non_negative_int),
                        help='DiT: run the reverse process N more times on its own output at '
                        'levels above the training level')
    vis = parser.add_mutually_exclusive_group()
    vis.add_argument('--show-dir', metavar='DIR',
                     help="write the visualisation hooks' grids to DIR (relative to the work "
                     "dir, or absolute) instead of each hook's folder; adds the model's "
                     'visualisation hook when the config has none')
    vis.add_argument('--no-vis', action='store_true',
                     help='drop the visualisation hooks (no grids); the other custom hooks '
                     '(EMAHook...) stay')
    add_vis_backend_argument(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out is not None:
        if args.out.endswith('.json'):
            print('note: --out FILE.json is deprecated: the metrics always go to '
                  '<work_dir>/metrics.json; --out FILE.pkl dumps the predictions',
                  file=sys.stderr)
        elif not args.out.endswith(PREDICTION_SUFFIXES):
            parser.error(f'argument --out: {args.out} must end with .pkl or .pickle (the '
                         'predictions; the metrics go to <work_dir>/metrics.json)')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_test_options(cfg: Config, args) -> None:
    """Map the command-line test options onto the model config, refusing mismatches.

    Which options apply is asked of the config's model class (from the registry):
    thinking options of EBTs (``EnergyBasedModel``), reverse-process options of the DiT,
    noise levels of denoisers.
    """
    from ebtvision.models import BaseDenoiser, DiTDenoiser, EnergyBasedModel
    from ebtvision.registry import MODELS
    model_type = cfg.model.get('type')
    model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type

    def is_a(base: type) -> bool:
        return isinstance(model_cls, type) and issubclass(model_cls, base)

    restricted = [
        ({'--thinking-steps': args.thinking_steps, '--alpha': args.alpha,
          '--num-candidates': args.num_candidates, '--candidate-noise': args.candidate_noise,
          '--tolerance': args.tolerance}, EnergyBasedModel, 'EBT models'),
        ({'--reverse-steps': args.reverse_steps, '--reverse-method': args.reverse_method,
          '--respace': args.respace, '--recurse': args.recurse},
         DiTDenoiser, 'DiT models'),
        ({'--noise-levels': args.noise_levels}, BaseDenoiser, 'denoisers'),
    ]
    for flags, base, what in restricted:
        for flag, value in flags.items():
            if value is not None and not is_a(base):
                exit_with_error(f'{flag} applies to {what}, not {model_type}')
    cfg.model.setdefault('test_cfg', {})
    if args.noise_levels:
        cfg.model.eval_noise_levels = args.noise_levels
    if args.thinking_steps is not None:
        cfg.model.test_cfg.num_steps = args.thinking_steps
    if args.alpha is not None:
        cfg.model.test_cfg.alpha = args.alpha
    for option in ('num_candidates', 'candidate_noise', 'tolerance'):
        if getattr(args, option) is not None:
            cfg.model.test_cfg[option] = getattr(args, option)
    if args.reverse_steps is not None:
        cfg.model.test_cfg.num_steps = args.reverse_steps
    if args.reverse_method is not None:
        cfg.model.test_cfg.method = args.reverse_method
    for option in ('respace', 'recurse'):
        if getattr(args, option) is not None:
            cfg.model.test_cfg[option] = getattr(args, option)


def plain_data(value):
    """A prediction as plain data that unpickles without torch or ebtvision: tensors
    become numpy arrays, data elements and ebtvision records become dicts."""
    import torch
    from mmengine.structures import BaseDataElement
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    if isinstance(value, BaseDataElement):
        value = value.to_dict()
    elif hasattr(value, '_asdict'):  # a named tuple
        value = value._asdict()
    elif type(value).__module__.startswith('ebtvision') and hasattr(value, '__dict__'):
        value = vars(value)
    if isinstance(value, dict):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(item) for item in value)
    return value


def dump_predictions_metric(out_file: str):
    """MMEngine's ``DumpResults`` (gathers every rank's predictions, rank 0 writes them
    through the atomic file backend) storing :func:`plain_data` of each prediction."""
    from mmengine.evaluator import DumpResults

    class DumpPredictions(DumpResults):

        def process(self, data_batch, predictions) -> None:
            self.results.extend(plain_data(prediction) for prediction in predictions)

    return DumpPredictions(out_file_path=out_file)


def _hook_name(hook) -> str:
    """The class name of a hook config's type (registered or not)."""
    from ebtvision.registry import HOOKS
    kind = hook.get('type') if isinstance(hook, dict) else type(hook)
    if isinstance(kind, str):
        kind = HOOKS.get(kind) or kind
    return kind.__name__ if isinstance(kind, type) else str(kind).rpartition('.')[2]


def configure_visualization(cfg: Config, args) -> None:
    """``--no-vis`` drops the visualisation hooks, and only them (an ``EMAHook`` or any
    other custom hook stays); ``--show-dir`` points them at one folder. Visualisation
    hooks are those named ``*VisualizationHook`` (OpenMMLab's naming), in
    ``custom_hooks`` or in ``default_hooks.visualization`` (mmdet's slot)."""
    custom = list(cfg.get('custom_hooks') or [])
    vis_hooks = [hook for hook in custom if _hook_name(hook).endswith('VisualizationHook')]
    default_hooks = cfg.get('default_hooks') or {}
    if default_hooks.get('visualization') is not None:
        vis_hooks.append(default_hooks['visualization'])
    if args.no_vis:
        cfg.custom_hooks = [hook for hook in custom if not any(hook is v for v in vis_hooks)]
        if default_hooks.get('visualization') is not None:
            cfg.default_hooks.visualization = None
        return
    if args.show_dir is None:
        return
    if not vis_hooks:
        vis_hooks.append(default_visualization_hook(cfg, args.config))
        custom.append(vis_hooks[-1])
    for hook in vis_hooks:
        if not isinstance(hook, dict):
            exit_with_error(f'--show-dir: {_hook_name(hook)} is given built; give it as a dict')
        hook['out_dir'] = args.show_dir  # hooks join it to the work dir: absolute stays
    cfg.custom_hooks = custom


def default_visualization_hook(cfg: Config, config_path: str) -> dict:
    """The hook that draws ``cfg.model``'s predictions, for ``--show-dir`` on a config
    without one."""
    from ebtvision.models import BaseDenoiser, NextFramePredictor
    from ebtvision.registry import MODELS
    model_type = cfg.model.get('type')
    model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    for base, hook in ((BaseDenoiser, 'DenoiseVisualizationHook'),
                       (NextFramePredictor, 'NextFrameVisualizationHook')):
        if isinstance(model_cls, type) and issubclass(model_cls, base):
            return dict(type=hook)
    exit_with_error(f'--show-dir: {config_path} has no visualisation hook, and {model_type} '
                    'has no grids to draw (denoisers and next-frame models have)')


@exit_on_missing_extra  # a missing optional package: one error line naming its extra
def main(argv=None) -> None:
    args = parse_args(argv)
    install_safe_checkpoint_io()  # weights-only loading, atomic writes
    register_all_modules()
    cfg = read_config(args.config, args.cfg_options)
    use_vis_backends(cfg, args.vis_backend)
    cfg.launcher = args.launcher
    apply_test_options(cfg, args)
    try:
        check_model_config(cfg)
    except ValueError as error:
        exit_with_error(f'{args.config}: {error}')
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.checkpoint.lower() == 'none':
        print('note: no checkpoint; evaluating the randomly initialised model', file=sys.stderr)
        cfg.load_from = None
    elif '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        exit_with_error(f'checkpoint {args.checkpoint} does not exist')
    else:
        cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.setdefault('data_skip', dict(type='DataSkipHook'))  # skipped files, counted
    configure_visualization(cfg, args)
    try:
        check_data_roots(cfg, ('test_dataloader', 'test_cfg.train_dataloader'))
    except DataNotFoundError as error:
        exit_with_error(str(error))
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg, args.config)
    if args.out is not None and args.out.endswith(PREDICTION_SUFFIXES):
        runner.test_evaluator.metrics.append(dump_predictions_metric(args.out))
    try:
        metrics = runner.test()
    except CheckpointLoadError as error:
        exit_with_error(str(error))
    text = json.dumps(metrics, indent=2, sort_keys=True)
    for out in {osp.join(cfg.work_dir, 'metrics.json'), args.out}:
        if out is not None and out.endswith('.json'):  # --out FILE.json: deprecated
            atomic_write(text.encode(), out)
    print(text)
    del runner  # its DDP wrapper holds the process group
    teardown_distributed()  # last: a distributed process exits here


if __name__ == '__main__':
    main()

"""Train a model from a config: python tools/train.py CONFIG [options].

Beyond MMEngine's runner: checkpoints load weights-only from any source and are written
atomically (``last_checkpoint`` too); a bare ``--resume`` names every checkpoint it skips and
stops rather than start over when none of the work dir's loads; a diverging run stops with
one line naming the iteration (or skips such steps with ``optim_wrapper.nonfinite='skip'``);
mistakes in the command line or config end in one ``error:`` line and exit code 2.
"""
import logging
import os
import os.path as osp
import sys

# OpenMP keeps its own wait policy (spin a while, then sleep): forcing PASSIVE was slower
# where it matters, measured on 2 cores with 2 threads (tools/train.py on the quick-start
# data, batch 16): the xs EBT took 57.9-59.4 s for 20 iterations with PASSIVE, 52.7-54.1 s
# with ACTIVE and 52.4 s with the default; the 4xs quick-start 21.1-26.4 s for 100
# iterations with PASSIVE, 25.1-26.0 s with ACTIVE, 24.6 s with the default. Set
# OMP_WAIT_POLICY yourself to choose another.

from mmengine.config import Config, DictAction
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.engine import (AMP_DTYPES, check_amp_dtype, default_amp_dtype,  # noqa: E402
                              enable_divergence_checks, search_resumable_checkpoint, set_aside)
from ebtvision.fileio import CheckpointLoadError, install_safe_checkpoint_io  # noqa: E402
from ebtvision.utils import (ArgumentParser, DataNotFoundError, build_runner,  # noqa: E402
                             check_data_roots, check_model_config, exit_with_error,
                             read_config, register_all_modules, setup_cpu_distributed,
                             teardown_distributed)
from ebtvision.utils.optional import exit_on_missing_extra  # noqa: E402
from ebtvision.utils.vis_backends import add_vis_backend_argument, use_vis_backends  # noqa: E402


def parse_args(argv=None):
    parser = ArgumentParser(description='Train an ebtvision model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
        help='resume from CHECKPOINT, or with no value from the newest readable '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (autocast, on CPU or CUDA)')
    parser.add_argument('--amp-dtype', choices=AMP_DTYPES,
                        help='with --amp: the autocast dtype (default: the config\'s '
                        'optim_wrapper.dtype, else bfloat16 where the device supports it, '
                        'else float16 with a dynamic loss scaler)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    add_vis_backend_argument(parser)
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale the learning rate linearly by the global batch (processes "
                        'x batch_size x optim_wrapper.accumulative_counts) over the config\'s '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.amp_dtype and not args.amp:
        parser.error('--amp-dtype needs --amp')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    cfg = read_config(args.config, args.cfg_options)
    use_vis_backends(cfg, args.vis_backend)
    cfg.launcher = args.launcher
    try:
        check_model_config(cfg)
    except ValueError as error:
        exit_with_error(f'{args.config}: {error}')
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    # Needed for every run: checkpoints that resume exactly and load weights-only.
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.setdefault('resume_state', dict(type='ResumeStateHook'))
    # Unreadable files skipped by the data pipeline are counted and named in the log.
    cfg.default_hooks.setdefault('data_skip', dict(type='DataSkipHook'))
    use_atomic_checkpoint_hook(cfg)
    if args.amp:
        use_amp(cfg, args.amp_dtype)
    # Stop a diverged run with one clear line, never checkpoint non-finite weights, flag
    # validation results worse than the noisy input's.
    try:
        enable_divergence_checks(cfg)
    except ValueError as error:
        exit_with_error(f'{args.config}: {error}')
    if args.resume == 'auto':
        checkpoint = resume_from_work_dir(cfg.work_dir)
        if checkpoint is not None:  # else a first run: the config's own load_from applies
            cfg.resume, cfg.load_from = True, checkpoint
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            exit_with_error(f'--resume: checkpoint {args.resume} does not exist')
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg, args.config)
    return cfg


def enable_auto_scale_lr(cfg: Config, config_path: str) -> None:
    """``--auto-scale-lr``: MMEngine's linear scaling rule, lr x global batch /
    ``auto_scale_lr.base_batch_size``, with accumulated micro-batches counted in the
    global batch (MMEngine's ``Runner.scale_lr`` counts processes x ``batch_size`` only)."""
    scale = cfg.get('auto_scale_lr')
    base = scale.get('base_batch_size') if isinstance(scale, dict) else None
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
        exit_with_error(f'--auto-scale-lr: {config_path} needs auto_scale_lr = dict('
                        'base_batch_size=N), N > 0 the global batch its learning rate is for')
    scale.enable = True
    counts = cfg.get('optim_wrapper', {}).get('accumulative_counts', 1)
    if counts > 1:
        # MMEngine divides processes x batch_size by the base: take the accumulation out of it.
        scale.base_batch_size = base / counts
        print_log(f'--auto-scale-lr: {counts} accumulated micro-batches per update: the '
                  f'base batch of {base} is compared with processes x batch_size as '
                  f'{base / counts:g}', logger='current')


def use_amp(cfg: Config, dtype=None) -> None:
    """``--amp``: mixed precision through ``AmpOptimWrapper`` (made
    ``FiniteCheckAmpOptimWrapper`` below, which runs on CPU too) with autocast to ``dtype``,
    else the config's ``optim_wrapper.dtype``, else bfloat16 where the device supports it;
    float16 gets a dynamic loss scaler unless the config sets ``loss_scale``."""
    dtype = dtype or cfg.optim_wrapper.get('dtype') or default_amp_dtype()
    try:
        dtype = str(check_amp_dtype(dtype)).replace('torch.', '')
    except ValueError as error:
        exit_with_error(f'--amp: {error}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = dtype
    if dtype == 'float16':
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def use_atomic_checkpoint_hook(cfg: Config) -> None:
    """MMEngine's CheckpointHook -> AtomicCheckpointHook (same arguments), so that
    ``last_checkpoint`` is never left empty by a kill; a disabled hook stays disabled."""
    hooks = cfg.default_hooks
    if 'checkpoint' not in hooks:
        hooks.checkpoint = dict(type='AtomicCheckpointHook', interval=1)
    elif hooks.checkpoint is not None and hooks.checkpoint.get('type') in (
            'CheckpointHook', 'mmengine.CheckpointHook', CheckpointHook):
        hooks.checkpoint.type = 'AtomicCheckpointHook'


def resume_from_work_dir(work_dir: str):
    """The checkpoint a bare ``--resume`` continues from (None: a first run).

    Every checkpoint skipped is named with its reason. Unreadable ones in the work dir
    are renamed ``*.unreadable`` so that the resumed run can neither overwrite nor
    rotate them away. When the work dir holds checkpoints and none loads, training
    stops instead of silently starting over.
    """
    search = search_resumable_checkpoint(work_dir)
    for path, reason in search.skipped:
        print_log(f'--resume: skipping {path}: {reason}', logger='current',
                  level=logging.WARNING)
    if search.checkpoint is None and search.present:
        listing = '; '.join(f'{osp.basename(path)}: {reason}' for path, reason in search.skipped)
        exit_with_error(
            f'--resume: none of the {len(search.present)} checkpoint(s) in {work_dir} can be '
            f'loaded ({listing}). To resume from a given file, pass --resume FILE; to start '
            'fresh on purpose, use another --work-dir or move these files away', code=1)
    if search.checkpoint is None:
        print_log(f'--resume: no checkpoint in {work_dir} yet; starting fresh',
                  logger='current')
        return None
    for path, _ in search.skipped:
        if osp.dirname(osp.abspath(path)) == osp.abspath(work_dir) and osp.isfile(path) and (
                path in search.present):
            print_log(f'--resume: kept the unreadable {osp.basename(path)} as '
                      f'{osp.basename(set_aside(path))}', logger='current',
                      level=logging.WARNING)
    return search.checkpoint


@exit_on_missing_extra  # a missing optional package: one error line naming its extra
def main(argv=None) -> None:
    args = parse_args(argv)
    install_safe_checkpoint_io()  # weights-only loading, atomic writes
    register_all_modules()
    cfg = build_config(args)
    try:
        check_data_roots(cfg, ('train_dataloader', 'val_dataloader'))
    except DataNotFoundError as error:
        exit_with_error(str(error))
    setup_cpu_distributed(cfg)
    runner = build_runner(cfg, args.config)
    try:
        runner.train()
    except CheckpointLoadError as error:
        exit_with_error(str(error))
    except FloatingPointError as error:  # NonFiniteError, or a non-finite energy gradient
        exit_with_error(str(error), code=1)
    del runner  # its DDP wrapper holds the process group
    teardown_distributed()


if __name__ == '__main__':
    main()

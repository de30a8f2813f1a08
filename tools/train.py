"""Train a model from a config: python tools/train.py CONFIG [options]."""
import argparse
import os
import os.path as osp
import sys

# Idle OpenMP threads sleep instead of spinning: on a CPU shared with other processes a
# spinning thread starves its partner (measured on the 2-core quick-start: 60 iterations in
# 23.6 s instead of 28.2 s). Read when torch loads OpenMP; the user's own value wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from ebtvision.engine import find_resumable_checkpoint  # noqa: E402
from ebtvision.utils import (DataNotFoundError, check_data_roots, register_all_modules,  # noqa
                             setup_cpu_distributed, teardown_distributed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train an ebtvision model')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CHECKPOINT',
        help='resume from CHECKPOINT, or with no value from the newest readable '
        'checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a CUDA device)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    # Needed for every run: checkpoints that resume exactly and load weights-only.
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.setdefault('resume_state', dict(type='ResumeStateHook'))
    if args.amp:
        if not torch.cuda.is_available():
            sys.exit('error: --amp needs a CUDA device (MMEngine\'s AmpOptimWrapper does not '
                     'run on CPU); train without --amp here')
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type != 'AmpOptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        checkpoint = find_resumable_checkpoint(cfg.work_dir)
        if checkpoint is None:
            print_log(f'--resume: no readable checkpoint in {cfg.work_dir}; starting fresh',
                      logger='current')
        else:
            cfg.resume, cfg.load_from = True, checkpoint
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    register_all_modules()
    cfg = build_config(args)
    try:
        check_data_roots(cfg, ('train_dataloader', 'val_dataloader'))
    except DataNotFoundError as error:
        sys.exit(f'error: {error}')
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    teardown_distributed()


if __name__ == '__main__':
    main()

"""Print a config with its ``_base_`` files merged: python tools/misc/print_config.py CONFIG.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--vis-backend NAME ...]
        [--save-path FILE.py]

What the tools run, as OpenMMLab's print_config shows it: every inherited key resolved,
``--cfg-options`` (and ``--vis-backend``) applied; stdout is the config alone, a file that
loads on its own (no ``_base_``), which ``--save-path`` also writes. A missing config or an
option that cannot be merged ends in one ``error:`` line (exit 2).
"""
import os
import os.path as osp
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.fileio import atomic_write  # noqa: E402
from ebtvision.utils import ArgumentParser, exit_with_error, read_config  # noqa: E402
from ebtvision.utils.vis_backends import add_vis_backend_argument, use_vis_backends  # noqa


def parse_args(argv=None):
    parser = ArgumentParser(description='Print a config with its _base_ files merged')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    add_vis_backend_argument(parser)
    parser.add_argument('--save-path', metavar='FILE.py',
                        help='also write the resolved config to this file')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.save_path is not None and not args.save_path.endswith('.py'):
        exit_with_error(f'--save-path: {args.save_path} must end with .py')
    cfg = read_config(args.config)
    if args.cfg_options:
        # MMEngine raises on an index past a list's end or a dict merged into a scalar.
        try:
            cfg.merge_from_dict(args.cfg_options)
        except (KeyError, TypeError, ValueError) as error:
            exit_with_error(f'--cfg-options: {error.args[0] if error.args else error}')
    use_vis_backends(cfg, args.vis_backend)
    text = cfg.pretty_text
    try:
        print(text)  # only the config: `print_config.py C > resolved.py` loads
    except BrokenPipeError:  # piped into head
        sys.stdout = open(os.devnull, 'w')
    if args.save_path is not None:
        atomic_write(text.encode(), args.save_path)
        print(f'saved to {args.save_path}', file=sys.stderr)


if __name__ == '__main__':
    main()

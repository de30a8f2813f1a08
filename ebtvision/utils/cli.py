"""What the command lines share: one-line errors and a config read that fails clearly.

A mistake in what the user typed (a config that does not exist, an option with a value
it cannot take, a misspelt ``test_cfg`` key) ends in ``error: ...`` on stderr and exit
code 2, as argparse does, instead of a traceback after MMEngine's config dump.
"""
import argparse
import os
import os.path as osp
import sys
from typing import NoReturn, Optional

from mmengine.config import Config

#: Set to 1 to get the traceback behind an ``error:`` line (for bug reports).
DEBUG_ENV = 'EBTVISION_DEBUG'


def exit_with_error(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: a usage mistake)."""
    print(f'error: {message}', file=sys.stderr)
    raise SystemExit(code)


def debugging() -> bool:
    """Whether the user asked for tracebacks instead of one-line errors."""
    return os.environ.get(DEBUG_ENV, '') not in ('', '0')


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and merge ``--cfg-options``; exit 2 with one line on a mistake."""
    if not osp.isfile(path):
        exit_with_error(f'config {path} does not exist')
    try:
        cfg = Config.fromfile(path)
    except Exception as error:  # noqa: BLE001  syntax errors, bad _base_ paths...
        if debugging():
            raise
        exit_with_error(f'config {path} cannot be read: {type(error).__name__}: {error}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def check_model_config(cfg: Config) -> None:
    """Check the options of ``cfg.model`` that the model validates, before a runner
    is built (and dumps the whole config): ``test_cfg`` keys and values, noise levels.

    Raises:
        ValueError: (:class:`ThinkingOptionError`) naming the option and the problem.
    """
    from ebtvision.models.thinking.options import check_test_cfg, noise_level
    from ebtvision.registry import MODELS
    model = cfg.get('model')
    if not model:
        return
    model_type = model.get('type')
    model_cls = MODELS.get(model_type) if isinstance(model_type, str) else model_type
    keys = getattr(model_cls, 'TEST_CFG_KEYS', None)
    if keys is not None:
        check_test_cfg(model.get('test_cfg'), keys, model_cls.__name__)
    for level in model.get('eval_noise_levels') or ():
        noise_level('model.eval_noise_levels', level)


def build_runner(cfg: Config, config_path: str):
    """``Runner.from_cfg`` with a one-line error for a config that builds nothing (an
    unknown type, a wrong argument); ``EBTVISION_DEBUG=1`` keeps the traceback."""
    from mmengine.runner import Runner
    try:
        return Runner.from_cfg(cfg)
    except (KeyError, TypeError, ValueError) as error:
        if debugging():
            raise
        exit_with_error(f'{config_path}: cannot build the run: {type(error).__name__}: '
                        f'{error} (set {DEBUG_ENV}=1 for the traceback)')


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage mistakes end in one ``error:`` line (exit 2), not the whole
    usage text first."""

    def error(self, message: str) -> NoReturn:
        exit_with_error(f'{message} (see {self.prog} --help)')

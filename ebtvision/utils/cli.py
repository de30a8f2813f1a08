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
    """Build the run's runner: MMEngine's ``Runner``, or the one ``cfg.runner_type`` names
    (``'FlexibleRunner'`` with a ``strategy``, see ``configs/_base_/strategies/``).

    A config that builds nothing (an unknown type, a wrong argument, a strategy that the
    runner would ignore or whose package is missing) ends in one ``error:`` line;
    ``EBTVISION_DEBUG=1`` keeps the traceback.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    _check_strategy(cfg, config_path)
    try:
        if cfg.get('runner_type', 'Runner') in ('Runner', Runner):
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)  # RUNNERS' builder calls runner_type's from_cfg
    except (KeyError, TypeError, ValueError) as error:
        if debugging():
            raise
        exit_with_error(f'{config_path}: cannot build the run: {type(error).__name__}: '
                        f'{error} (set {DEBUG_ENV}=1 for the traceback)')


#: Strategies whose package is optional: strategy type -> (module, pip name).
_STRATEGY_PACKAGES = {'DeepSpeedStrategy': ('deepspeed', 'deepspeed'),
                      'ColossalAIStrategy': ('colossalai', 'colossalai')}
#: Strategies that need a process group (several processes).
_DISTRIBUTED_STRATEGIES = ('DDPStrategy', 'FSDPStrategy', 'DeepSpeedStrategy',
                           'ColossalAIStrategy')


def _check_strategy(cfg: Config, config_path: str) -> None:
    """Refuse a ``strategy`` the runner would not use; drop a distributed strategy
    in a run without a launcher (MMEngine's Runner likewise wraps nothing then)."""
    import importlib.util

    from mmengine.logging import print_log
    from mmengine.runner import FlexibleRunner

    from ebtvision.engine.strategies import check_fsdp_config
    from ebtvision.registry import MODELS, RUNNERS
    runner_type = cfg.get('runner_type', 'Runner')
    runner_cls = RUNNERS.get(runner_type) if isinstance(runner_type, str) else runner_type
    flexible = isinstance(runner_cls, type) and issubclass(runner_cls, FlexibleRunner)
    strategy = cfg.get('strategy')
    if strategy is not None and not flexible:
        shown = strategy.get('type') if isinstance(strategy, dict) else strategy
        exit_with_error(f"{config_path}: strategy {shown!r} is used by "
                        f"runner_type='FlexibleRunner' only, not {runner_type!r}: set "
                        "runner_type='FlexibleRunner' (or _base_ a file of "
                        'configs/_base_/strategies/)')
    if not flexible:
        return
    if cfg.get('model_wrapper_cfg') is not None:
        exit_with_error(f'{config_path}: FlexibleRunner ignores model_wrapper_cfg; give '
                        'the wrapper as strategy.model_wrapper instead')
    strategy_type = strategy.get('type') if isinstance(strategy, dict) else None
    name = strategy_type if isinstance(strategy_type, str) else getattr(
        strategy_type, '__name__', '')
    name = name.rpartition('.')[2]  # 'mmengine.DDPStrategy'
    module, pip_name = _STRATEGY_PACKAGES.get(name, (None, None))
    if module is not None and importlib.util.find_spec(module) is None:
        exit_with_error(f'{config_path}: strategy {name} needs the {module} package, which '
                        f'is not installed (pip install {pip_name})')
    model_type = (cfg.get('model') or {}).get('type')
    try:
        check_fsdp_config(strategy, MODELS.get(model_type) if isinstance(model_type, str)
                          else model_type)
    except ValueError as error:
        exit_with_error(f'{config_path}: {error}')
    if name in _DISTRIBUTED_STRATEGIES and cfg.get('launcher', 'none') == 'none':
        print_log(f'{name} needs several processes (--launcher pytorch under torchrun); '
                  'without a launcher this run is one process: SingleDeviceStrategy',
                  logger='current')
        cfg.strategy = dict(type='SingleDeviceStrategy')


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage mistakes end in one ``error:`` line (exit 2), not the whole
    usage text first."""

    def error(self, message: str) -> NoReturn:
        exit_with_error(f'{message} (see {self.prog} --help)')

"""One validator for every inference option: ``test_cfg`` keys, tool flags, API arguments.

A wrong value must never run silently (``--thinking-steps 0`` used to mean "as trained",
``--alpha nan`` wrote NaN metrics) and a misspelt ``test_cfg`` key must not be ignored.
Models declare the keys they read (``TEST_CFG_KEYS``) and check their ``test_cfg`` with
:func:`check_test_cfg`; they resolve per-call arguments with :func:`resolve_option`;
command lines use :func:`cli_type` so that argparse reports a bad value in one line.
"""
import argparse
import math
from typing import Any, Callable, Dict, Iterable, Optional

import torch


class ThinkingOptionError(ValueError):
    """An inference option with a value it cannot take; the message names it."""


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ThinkingOptionError(f'{name} must be a number, got {value!r}') from None
    if not math.isfinite(value):
        raise ThinkingOptionError(f'{name} must be finite, got {value}')
    return value


def positive_int(name: str, value: Any) -> int:
    """An integer >= 1 (steps, candidates)."""
    if isinstance(value, bool) or not isinstance(value, int) and not (
            isinstance(value, float) and value.is_integer()):
        raise ThinkingOptionError(f'{name} must be an integer >= 1, got {value!r}')
    if value < 1:
        raise ThinkingOptionError(f'{name} must be an integer >= 1, got {value}')
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """An integer >= 0 (repetitions)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ThinkingOptionError(f'{name} must be an integer >= 0, got {value!r}')
    return value


def step_size(name: str, value: Any):
    """A finite step size > 0: a number, or a tensor of them (one per sample)."""
    if isinstance(value, torch.Tensor):
        if not bool(torch.isfinite(value).all()) or not bool((value > 0).all()):
            raise ThinkingOptionError(f'{name} must be finite and > 0 everywhere')
        return value
    value = _number(name, value)
    if value <= 0:
        raise ThinkingOptionError(f'{name} must be > 0, got {value}')
    return value


def non_negative(name: str, value: Any) -> float:
    """A finite number >= 0 (tolerance, noise std)."""
    value = _number(name, value)
    if value < 0:
        raise ThinkingOptionError(f'{name} must be >= 0, got {value}')
    return value


def at_least_one(name: str, value: Any) -> float:
    """A finite number >= 1 (the spread of the candidates' step sizes)."""
    value = _number(name, value)
    if value < 1:
        raise ThinkingOptionError(f'{name} must be >= 1, got {value}')
    return value


def noise_level(name: str, value: Any) -> float:
    """A noise level in (0, 1] (the share of the DDPM schedule)."""
    value = _number(name, value)
    if not 0 < value <= 1:
        raise ThinkingOptionError(f'{name} must lie in (0, 1], got {value}')
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ThinkingOptionError(f'{name} must be True or False, got {value!r}')
    return value


def one_of(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise ThinkingOptionError(f'{name} must be one of {list(choices)}, got {value!r}')
        return value
    return check


#: Every ``test_cfg`` key a model may read, with its check. ``None`` always means "the
#: model's default" (e.g. the trained step count).
CHECKS: Dict[str, Callable[[str, Any], Any]] = dict(
    num_steps=positive_int,
    alpha=step_size,
    num_candidates=positive_int,
    candidate_noise=non_negative,
    candidate_step_scale=at_least_one,
    tolerance=non_negative,
    energy_maps=flag,
    decode=flag,
    complete=flag,
    method=one_of('ddpm', 'ddim'),
    start_from=one_of('true', 'train'),
    respace=flag,
    recurse=non_negative_int,
)

#: The keys of EBT inference shared by every task.
THINKING_KEYS = ('num_steps', 'alpha', 'num_candidates', 'tolerance')


def check_option(name: str, value: Any, where: str = 'test_cfg'):
    """Check one option (``None`` passes: the default applies); returns the clean value."""
    if value is None:
        return None
    return CHECKS[name](f'{where}.{name}', value)


def check_test_cfg(test_cfg: Optional[dict], allowed: Iterable[str], owner: str) -> dict:
    """Check a model's ``test_cfg``: every key known to ``owner``, every value valid.

    Raises:
        ThinkingOptionError: An unknown key (the message lists the valid ones) or a bad
            value.
    """
    test_cfg = dict(test_cfg or {})
    allowed = sorted(allowed)
    unknown = sorted(set(test_cfg) - set(allowed))
    if unknown:
        raise ThinkingOptionError(
            f'{owner}: unknown test_cfg key(s) {unknown}; valid keys: {allowed or "none"}')
    return {name: check_option(name, value, f'{owner}.test_cfg')
            for name, value in test_cfg.items()}


def resolve_option(name: str, given: Any, test_cfg: dict, default: Any = None):
    """The value to use: ``given`` when not None (checked), else ``test_cfg``'s, else
    ``default``. Unlike ``given or test_cfg[name]``, 0 is an error, not "unset"."""
    if given is not None:
        return check_option(name, given, 'argument')
    value = check_option(name, test_cfg.get(name))
    return default if value is None else value


def cli_type(check: Callable[[str, Any], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` from a check of this module (e.g. ``cli_type(positive_int)``):
    a bad value ends in argparse's one-line error and exit code 2."""
    def parse(text: str):
        try:
            value = int(text) if check in (positive_int, non_negative_int) else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        try:
            return check('value', value)
        except ThinkingOptionError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse.__name__ = check.__name__  # argparse names the type in some messages
    return parse


def resolve_thinking(test_cfg: dict, num_steps=None, alpha=None, num_candidates=None,
                     tolerance=None):
    """``(num_steps, alpha, num_candidates, tolerance)`` of one EBT inference call: each
    argument given, else ``test_cfg``'s; steps and alpha stay None for the thinker's
    trained values, candidates default to 1."""
    return (resolve_option('num_steps', num_steps, test_cfg),
            resolve_option('alpha', alpha, test_cfg),
            resolve_option('num_candidates', num_candidates, test_cfg, 1),
            resolve_option('tolerance', tolerance, test_cfg))

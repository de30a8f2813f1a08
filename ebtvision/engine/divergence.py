"""Turn the divergence protection on for a config (see ``tools/train.py``)."""
from mmengine.config import Config

from .optimizers.finite_optim_wrapper import NONFINITE_MODES

# MMEngine's wrappers -> the ones that check for non-finite losses and gradients
FINITE_CHECK_WRAPPERS = {
    'OptimWrapper': 'FiniteCheckOptimWrapper',
    'AmpOptimWrapper': 'FiniteCheckAmpOptimWrapper',
}


def _check_options(optim_wrapper) -> None:
    nonfinite = optim_wrapper.get('nonfinite', 'error')
    if nonfinite not in NONFINITE_MODES:
        raise ValueError(f'optim_wrapper.nonfinite must be one of {NONFINITE_MODES}, got '
                         f'{nonfinite!r}')
    skips = optim_wrapper.get('max_consecutive_skips', 0)
    if not isinstance(skips, int) or skips < 0:
        raise ValueError(f'optim_wrapper.max_consecutive_skips must be an integer >= 0, got '
                         f'{skips!r}')
    ratio = optim_wrapper.get('max_loss_ratio', None)
    if ratio is not None and not (isinstance(ratio, (int, float)) and ratio > 1):
        raise ValueError(f'optim_wrapper.max_loss_ratio must be a number > 1 or None, got '
                         f'{ratio!r}')


def enable_divergence_checks(cfg: Config) -> Config:
    """Use the finite-checking optimizer wrapper and add :class:`DivergenceHook`.

    ``optim_wrapper.type`` ``'OptimWrapper'`` / ``'AmpOptimWrapper'`` (or unset) becomes
    ``'FiniteCheckOptimWrapper'`` / ``'FiniteCheckAmpOptimWrapper'`` (other wrapper types
    are left alone); ``optim_wrapper.nonfinite`` (``'error'`` or ``'skip'``) and
    ``optim_wrapper.max_consecutive_skips`` then configure them. ``DivergenceHook`` is
    appended to ``custom_hooks`` unless the config has one. Returns ``cfg``, changed in
    place. Raises ``ValueError`` for a wrong ``nonfinite`` / ``max_consecutive_skips`` /
    ``max_loss_ratio`` (checked here, not only when the wrapper is built in ``train()``).
    """
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is not None:
        kind = optim_wrapper.get('type', 'OptimWrapper')
        name = (kind if isinstance(kind, str) else getattr(kind, '__name__', '')).rpartition(
            '.')[2]
        if name in FINITE_CHECK_WRAPPERS:
            optim_wrapper['type'] = name = FINITE_CHECK_WRAPPERS[name]
        if name in FINITE_CHECK_WRAPPERS.values():
            _check_options(optim_wrapper)
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(hook.get('type') in ('DivergenceHook', 'ebtvision.DivergenceHook')
               for hook in hooks if isinstance(hook, dict)):
        hooks.append(dict(type='DivergenceHook'))
    cfg.custom_hooks = hooks
    return cfg

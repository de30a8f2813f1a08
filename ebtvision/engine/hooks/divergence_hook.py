"""Divergence checks around checkpoints and validation.

- No checkpoint with non-finite weights is written: ``before_save_checkpoint`` raises
  :class:`NonFiniteError` (MMEngine calls it before writing the file).
- Validation results worse than the trivial baseline the metrics report next to them
  (``denoise/noisy_psnr@0.1`` for ``denoise/psnr@0.1``: the noisy input itself;
  ``nextframe/copy_last_mse`` for ``nextframe/mse``: repeating the last frame) are
  flagged with a WARNING: the model makes things worse than doing nothing, so it is
  likely diverged or still untrained.
"""
import logging
import math
from typing import Dict, List, NamedTuple, Optional

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from ebtvision.registry import HOOKS
from ..optimizers.finite_optim_wrapper import NonFiniteError, divergence_hint

# (key prefix of the baseline's score, what being below it means)
BASELINES = (
    ('noisy_', 'the model makes the images worse than the noisy input'),
    ('copy_last_', 'the model predicts worse than repeating the last frame'),
)
# metric name -> whether higher is better (other names are not compared)
HIGHER_IS_BETTER = {'psnr': True, 'ssim': True, 'mse': False, 'smooth_l1': False,
                    'lpips': False}


class BelowFloor(NamedTuple):
    key: str
    value: float
    floor_key: str
    floor: float
    meaning: str

    def __str__(self) -> str:
        sign = '<' if HIGHER_IS_BETTER[_metric_name(self.key)] else '>'
        return f'{self.key} = {self.value:.4g} {sign} {self.floor_key} = {self.floor:.4g}'


def _metric_name(key: str) -> str:
    return key.rpartition('/')[2].split('@')[0]


def below_floor(metrics: Dict[str, float]) -> List[BelowFloor]:
    """The metrics that are worse than their baseline's score in ``metrics``.

    A metric ``<prefix>/<name>[@<k>]`` is compared with ``<prefix>/noisy_<name>[@<k>]``
    or ``<prefix>/copy_last_<name>[@<k>]`` when both are present and ``<name>`` is one of
    :data:`HIGHER_IS_BETTER`. A NaN score counts as worse.
    """
    found = []
    for floor_key, floor in metrics.items():
        head, slash, tail = floor_key.rpartition('/')
        for prefix, meaning in BASELINES:
            if not tail.startswith(prefix):
                continue
            key = head + slash + tail[len(prefix):]
            higher = HIGHER_IS_BETTER.get(_metric_name(key))
            if higher is None or metrics.get(key) is None or floor is None:
                continue
            value, floor = float(metrics[key]), float(floor)
            if math.isnan(value) or (value < floor if higher else value > floor):
                found.append(BelowFloor(key, value, floor_key, floor, meaning))
    return found


def nonfinite_weights(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the floating-point tensors of ``state_dict`` with a NaN or Inf."""
    return [name for name, tensor in state_dict.items()
            if isinstance(tensor, torch.Tensor)
            and (tensor.is_floating_point() or tensor.is_complex())
            and not bool(torch.isfinite(tensor).all())]


@HOOKS.register_module()
class DivergenceHook(Hook):
    """Refuse to checkpoint non-finite weights; flag validation results below the floor.

    Args:
        check_checkpoints: Raise :class:`NonFiniteError` instead of writing a checkpoint
            whose ``state_dict`` holds a NaN or Inf.
        best_below_floor: What to do when the ``CheckpointHook``'s ``save_best`` metric is
            below its floor: ``'warn'`` (default: say so; MMEngine still keeps the best of
            the results seen) or ``'skip'`` (that result never becomes the "best"
            checkpoint; runs whose every validation is below the floor then have none).
    """

    # After LoggerHook (BELOW_NORMAL) printed the metrics, before CheckpointHook (VERY_LOW)
    # saves the best checkpoint.
    priority = 'LOW'

    def __init__(self, check_checkpoints: bool = True, best_below_floor: str = 'warn') -> None:
        if best_below_floor not in ('warn', 'skip'):
            raise ValueError(f"best_below_floor must be 'warn' or 'skip', got "
                             f'{best_below_floor!r}')
        self.check_checkpoints = check_checkpoints
        self.best_below_floor = best_below_floor

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.check_checkpoints:
            return
        state_dict = checkpoint.get('state_dict') or {}
        bad = nonfinite_weights(state_dict)
        if not bad:
            return
        iteration = (checkpoint.get('meta') or {}).get('iter', runner.iter)
        shown = ', '.join(bad[:3]) + (', ...' if len(bad) > 3 else '')
        message = (f'refusing to save a checkpoint after iteration {iteration}: {len(bad)} of '
                   f'{len(state_dict)} weight tensors are non-finite ({shown}); training '
                   f'diverged; {divergence_hint(runner.model, runner.optim_wrapper)}')
        print_log(message, logger='current', level=logging.ERROR)
        raise NonFiniteError(message)

    def _best_keys(self, runner) -> List[str]:
        keys = []
        for hook in getattr(runner, 'hooks', []):
            if isinstance(hook, CheckpointHook) and getattr(hook, 'save_best', None):
                keys += [key for key in getattr(hook, 'key_indicators', []) if key != 'auto']
        return keys

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        findings = below_floor(metrics or {})
        if not findings:
            return
        best_keys = self._best_keys(runner)
        for _, meaning in BASELINES:
            group = [finding for finding in findings if finding.meaning == meaning]
            if not group:
                continue
            message = (f'Validation at iteration {runner.iter}: {meaning} (likely diverged or '
                       f'untrained): ' + '; '.join(str(finding) for finding in group))
            best = [finding.key for finding in group if finding.key in best_keys]
            if best and self.best_below_floor == 'skip':
                for key in best:
                    metrics[key] = None  # CheckpointHook skips a None score
                message += f'. Not saved as the best checkpoint by {", ".join(best)}'
            elif best:
                message += (f'. A best checkpoint by {", ".join(best)} saved from this '
                            'validation is worse than that baseline')
            print_log(message, logger='current', level=logging.WARNING)

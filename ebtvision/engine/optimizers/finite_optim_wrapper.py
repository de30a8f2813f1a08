"""Optimizer wrappers that refuse to apply non-finite updates.

MMEngine's :class:`~mmengine.optim.OptimWrapper` backpropagates and steps whatever the
loss is: a diverged run (a too large learning rate, or for an EBT a too large thinking
step size ``alpha``) keeps training on NaN / Inf and exits 0. The wrappers here check
the loss before ``backward`` (non-finite, or exploded: more than ``max_loss_ratio`` times
the smallest loss of the run's first updates) and the gradients' total norm before
``optimizer.step()`` (non-finite):

- ``nonfinite='error'`` (default): stop with :class:`NonFiniteError`, a one-line message
  naming the iteration, the quantity and the likely cause (also logged at ERROR level
  into the work dir's log).
- ``nonfinite='skip'``: the update is not applied (no ``optimizer.step()``, the
  parameters and the optimizer state stay as they were), the skip is logged as a
  WARNING and counted (``train/skipped_steps`` in the training log); more than
  ``max_consecutive_skips`` skipped steps in a row stop training anyway.

:class:`FiniteCheckAmpOptimWrapper` is the same for mixed precision, on CPU and CUDA
(:mod:`.amp_optim_wrapper`). With float16 an overflowing gradient is normal (the GradScaler
skips the step and lowers its scale), and so is an occasional overflowing loss, so both
are skipped in either mode; training stops only when more than ``max_consecutive_skips``
steps in a row were skipped (the loss scale has then been halved that many times:
divergence). bfloat16 has float32's exponent range and no scaler: it is checked as float32.
"""
import logging
import math
import weakref
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from ebtvision.registry import OPTIM_WRAPPERS
from .amp_optim_wrapper import DeviceAmpOptimWrapper

NONFINITE_MODES = ('error', 'skip')
FINE, EXPLODED, NONFINITE = 0, 1, 2  # verdicts on a loss, worst last


class NonFiniteError(FloatingPointError):
    """Training produced a non-finite loss, gradient norm or weight (divergence)."""


def _unwrap(model: Optional[nn.Module]) -> Optional[nn.Module]:
    return getattr(model, 'module', model) if model is not None else None


def _number(value) -> str:
    value = float(value)
    return str(value) if not math.isfinite(value) else f'{value:.4g}'


def divergence_hint(model: Optional[nn.Module] = None, optim_wrapper=None) -> str:
    """``'likely cause: ...'``: what usually makes training diverge, with current values.

    Names the EBT thinking step size ``model.thinker.alpha`` when the model has one and
    the learning rate ``optim_wrapper.optimizer.lr`` (the config's base value).
    """
    from ebtvision.models import EnergyBasedModel
    knobs = []
    model = _unwrap(model)
    alpha = model.thinker.alpha if isinstance(model, EnergyBasedModel) else None
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        knobs.append('the thinking step size model.thinker.alpha '
                     f'(now {_number(alpha.detach())})')
    optimizer = getattr(optim_wrapper, 'optimizer', None)
    lr = getattr(optimizer, 'defaults', {}).get('lr') if optimizer is not None else None
    if lr is not None:
        knobs.append(f'the learning rate optim_wrapper.optimizer.lr ({_number(lr)})')
    else:
        knobs.append('the learning rate')
    return 'likely cause: too large steps; lower ' + ' or '.join(knobs)


def current_iteration(message_hub) -> Optional[int]:
    """The 1-based training iteration being run (as the training log counts), or None."""
    iteration = message_hub.get_info('iter') if message_hub is not None else None
    return None if iteration is None else int(iteration) + 1


class FiniteCheckMixin:
    """Checks of loss and gradient norm for an :class:`OptimWrapper` subclass.

    Args:
        nonfinite: ``'error'`` (stop training) or ``'skip'`` (leave the parameters as they
            are and go on) when the loss or the gradient norm is NaN or Inf.
        max_consecutive_skips: More skipped steps in a row than this stop training even
            with ``nonfinite='skip'`` (and with AMP).
        max_loss_ratio: A finite loss more than this many times the smallest loss of the
            first 10 updates of the run (an untrained model's, or the resumed one's) has
            exploded, and is treated like a non-finite one. ``None`` turns this off.
    """

    #: Whether a non-finite loss is skipped even with ``nonfinite='error'`` (AMP).
    tolerates_nonfinite_loss = False
    #: How many first updates of a run set the loss reference of ``max_loss_ratio``.
    reference_updates = 10

    def __init__(self, *args, nonfinite: str = 'error', max_consecutive_skips: int = 20,
                 max_loss_ratio: Optional[float] = 1e4, **kwargs) -> None:
        if nonfinite not in NONFINITE_MODES:
            raise ValueError(f'nonfinite must be one of {NONFINITE_MODES}, got {nonfinite!r}')
        if int(max_consecutive_skips) < 0:
            raise ValueError(f'max_consecutive_skips must be >= 0, got {max_consecutive_skips}')
        if max_loss_ratio is not None and not max_loss_ratio > 1:
            raise ValueError(f'max_loss_ratio must be > 1 or None, got {max_loss_ratio}')
        super().__init__(*args, **kwargs)
        self.nonfinite = nonfinite
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.max_loss_ratio = max_loss_ratio
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self._skip_reason: Optional[str] = None  # set: the pending update is skipped
        self._last_grad_norm: Optional[float] = None
        self._model_ref = None
        self._losses_seen = 0  # of this run, for the loss reference
        self._loss_reference: Optional[float] = None

    # -- context --------------------------------------------------------------------------
    @contextmanager
    def optim_context(self, model: nn.Module):
        # Remember the model (weakly) to name its step size in error messages.
        self._model_ref = weakref.ref(model)
        with super().optim_context(model):
            yield

    @property
    def model(self) -> Optional[nn.Module]:
        return self._model_ref() if self._model_ref is not None else None

    def _where(self) -> str:
        iteration = current_iteration(self.message_hub)
        return f'iteration {iteration}' if iteration is not None else 'this step'

    def fail(self, what: str, suggest_skip: bool = False) -> None:
        """Log ``what`` (with the iteration and the likely cause) at ERROR and raise."""
        message = (f'training diverged at {self._where()}: {what}; '
                   f'{divergence_hint(self.model, self)}')
        if suggest_skip:
            message += " (or set optim_wrapper.nonfinite='skip' to skip such steps)"
        print_log(message, logger='current', level=logging.ERROR)
        raise NonFiniteError(message)

    # -- the checks -----------------------------------------------------------------------
    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        value = loss.detach()
        if not bool(torch.isfinite(value).all()):
            kind, reason = NONFINITE, f'the loss is {_number(value.float().sum())} (non-finite)'
        else:
            reason = self._exploded(value)
            kind = FINE if reason is None else EXPLODED
        kind = self._agree(kind, value.device)
        if kind == FINE:
            return super().update_params(loss, step_kwargs, zero_kwargs)
        if reason is None:  # this process's loss is fine, another one's is not
            reason = ('the loss of another process is non-finite' if kind == NONFINITE else
                      'the loss of another process exploded')
        self._diverged(reason, tolerable=kind == NONFINITE and self.tolerates_nonfinite_loss)
        # Skip: no backward for this loss; the update of this (accumulation) window is
        # dropped as a whole when it is due.
        self._skip_reason = self._skip_reason or reason
        self._inner_count += 1
        if self.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    @staticmethod
    def _agree(kind: int, device) -> int:
        """The worst verdict of all processes, so that all of them skip (or stop) alike.

        Gradients are averaged across processes, so the gradient check agrees by itself;
        the loss is each process's own.
        """
        if get_world_size() <= 1:
            return kind
        flag = torch.tensor([float(kind)], device=device)
        all_reduce(flag, op='max')
        return int(flag.item())

    def _exploded(self, loss: torch.Tensor) -> Optional[str]:
        """Why a finite loss is a divergence (None if it is not).

        The reference is the smallest positive loss of the first
        :attr:`reference_updates` updates of this run (start or resume): a loss more
        than ``max_loss_ratio`` times larger than an untrained model's has exploded.
        """
        if self.max_loss_ratio is None or loss.numel() != 1:
            return None
        value, reference = float(loss), self._loss_reference
        if reference is not None and value > self.max_loss_ratio * reference:
            return (f'the loss is {_number(value)}, more than optim_wrapper.max_loss_ratio='
                    f'{_number(self.max_loss_ratio)} times its smallest value in the first '
                    f'iterations of this run ({_number(reference)})')
        if self._losses_seen < self.reference_updates:
            self._losses_seen += 1
            if value > 0:
                self._loss_reference = value if reference is None else min(reference, value)
        return None

    def _diverged(self, reason: str, tolerable: bool = False) -> None:
        """Raise in error mode (unless ``tolerable``); return (the caller skips) otherwise."""
        if self.nonfinite == 'error' and not tolerable:
            self.fail(reason, suggest_skip=True)

    def _skip_step(self, reason: str, warn: bool = True) -> None:
        """Account for one skipped update; stop after too many in a row."""
        if not self.skipped_steps and 'train/skipped_steps' in self.message_hub.log_scalars:
            # a resumed run goes on counting
            self.skipped_steps = int(self.message_hub.get_scalar('train/skipped_steps').current())
        self.skipped_steps += 1
        self.consecutive_skips += 1
        self.message_hub.update_scalar('train/skipped_steps', self.skipped_steps)
        if self.consecutive_skips > self.max_consecutive_skips:
            self.fail(f'{reason}, and {self.consecutive_skips} steps in a row were skipped '
                      f'(more than optim_wrapper.max_consecutive_skips='
                      f'{self.max_consecutive_skips})')
        if warn:
            print_log(f'{self._where()}: {reason}; skipped this optimizer step (parameters '
                      f'unchanged): {self.consecutive_skips} in a row, {self.skipped_steps} '
                      'in total', logger='current', level=logging.WARNING)

    def _take_skip_reason(self) -> Optional[str]:
        reason, self._skip_reason = self._skip_reason, None
        return reason

    def _grad_params(self) -> List[torch.Tensor]:
        return [param for group in self.optimizer.param_groups for param in group['params']
                if param.requires_grad and param.grad is not None]

    def _clip_grad(self) -> None:
        """MMEngine's clipping, keeping the total norm (before clipping) for the check."""
        params = self._grad_params()
        self._last_grad_norm = None
        if params:
            grad = self.clip_func(params, **self.clip_grad_kwargs)
            if grad is not None:  # clip_grad_value_ returns None
                self._last_grad_norm = float(grad)
                self.message_hub.update_scalar(f'train/{self.grad_name}', float(grad))

    def grad_norm(self) -> float:
        """Total 2-norm of the current gradients (before any clipping)."""
        params = self._grad_params()
        if not params:
            return 0.0
        grads = [param.grad for param in params]
        if hasattr(torch.nn.utils, 'get_total_norm'):  # torch >= 2.6
            return float(torch.nn.utils.get_total_norm(grads))
        return float(torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(grad.float()) for grad in grads])))


    def _step_if_finite(self, **kwargs) -> None:
        """Clip, then ``optimizer.step()`` unless the gradient norm is non-finite."""
        reason = self._take_skip_reason()
        if reason is None:
            if self.clip_grad_kwargs and self.grad_name == 'grad_norm':
                self._clip_grad()  # computes (and logs) the norm anyway
                norm = self._last_grad_norm if self._last_grad_norm is not None else 0.0
            else:
                norm = self.grad_norm()
                if self.clip_grad_kwargs:
                    self._clip_grad()
            if math.isfinite(norm):
                self.optimizer.step(**kwargs)
                self.consecutive_skips = 0
                return
            reason = f'the gradient norm is {_number(norm)} (non-finite)'
            self._diverged(reason)
        self._skip_step(reason)


@OPTIM_WRAPPERS.register_module()
class FiniteCheckOptimWrapper(FiniteCheckMixin, OptimWrapper):
    """:class:`OptimWrapper` that never applies a non-finite loss or gradient.

    Config: ``optim_wrapper = dict(type='FiniteCheckOptimWrapper', nonfinite='error',
    max_consecutive_skips=20, optimizer=..., clip_grad=...)``. See the module docstring.
    """

    def step(self, **kwargs) -> None:
        self._step_if_finite(**kwargs)


@OPTIM_WRAPPERS.register_module()
class FiniteCheckAmpOptimWrapper(FiniteCheckMixin, DeviceAmpOptimWrapper):
    """Mixed precision (CPU or CUDA) that stops when float16's GradScaler keeps skipping.

    float16: a non-finite loss is not backpropagated and its step is skipped (in both
    modes, as fp16 overflow is expected now and then); steps the GradScaler skips for
    inf / NaN gradients are counted too (``train/skipped_steps``); more than
    ``max_consecutive_skips`` skipped steps in a row stop training. bfloat16 (no scaler)
    is checked exactly like :class:`FiniteCheckOptimWrapper`.
    """

    @property
    def tolerates_nonfinite_loss(self) -> bool:
        return self.loss_scaler.is_enabled()

    def _scaler_skipped(self) -> bool:
        """Whether the GradScaler's last ``step`` skipped the optimizer (call before update)."""
        found = self.loss_scaler._found_inf_per_device(self.optimizer)  # torch's own record
        return bool(sum(float(value) for value in found.values()))

    def step(self, **kwargs) -> None:
        if not self.loss_scaler.is_enabled():
            return self._step_if_finite(**kwargs)
        reason = self._take_skip_reason()
        if reason is not None:  # the GradScaler never saw this window: leave it alone
            return self._skip_step(reason)
        if self.clip_grad_kwargs:
            self.loss_scaler.unscale_(self.optimizer)
            self._clip_grad()
        scale = float(self.loss_scaler.get_scale())
        self.loss_scaler.step(self.optimizer, **kwargs)
        skipped = self._scaler_skipped()
        self.loss_scaler.update(self._scale_update_param)
        if not skipped:
            self.consecutive_skips = 0
            return
        # Normal for fp16 now and then: not worth a warning each time, but counted.
        self._skip_step(f'the gradients overflowed at loss scale {_number(scale)}',
                        warn=False)

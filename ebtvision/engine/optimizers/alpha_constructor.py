"""The optimizer-wrapper constructor that gives a thinker's learnable step size its own lr.

An EBT's thinker (:class:`~ebtvision.models.thinking.EnergyMinimizer`) learns its step
size ``alpha`` as the parameter ``thinker.alpha``. ``alpha`` is in the units of the
candidate (thousands for the image configs) while the network's weights are near one, so
it needs a far larger learning rate than the rest of the model, and no weight decay. The
paper's settings (and every shipped config) use

    lr_mult = 3 * alpha        i.e.  lr(alpha) = 3 * alpha * optimizer.lr

whatever the base learning rate: alpha 3000 -> 9000 (denoising, the S2 video config),
30000 -> 90000 (video S1), 500 -> 1500 (text), 100 -> 300 (video quick-start).

:class:`ThinkerAlphaOptimWrapperConstructor` applies that rule when it builds the
optimizer, from the alpha the model was built with, so a config states alpha once::

    optim_wrapper = dict(constructor='ThinkerAlphaOptimWrapperConstructor',
                         type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, ...))

is the same as the hand-kept pair::

    optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, ...),
                         paramwise_cfg=dict(custom_keys={
                             'thinker.alpha': dict(lr_mult=3 * alpha, decay_mult=0.0)}))

Everything else is MMEngine's :class:`~mmengine.optim.DefaultOptimWrapperConstructor`:

- an explicit ``paramwise_cfg.custom_keys`` entry that matches the alpha parameter (the
  key ``'thinker.alpha'`` itself, or any key contained in its name such as ``'thinker'``)
  wins: nothing is added then;
- a model without a learnable ``thinker.alpha`` (no thinker, or ``learnable_alpha=False``)
  gets exactly what the default constructor gives;
- with no ``optimizer.weight_decay`` (so no ``decay_mult`` is allowed) alpha's group
  gets ``weight_decay=0.0`` instead.

The rule reads alpha's value from the model (a float32 parameter) when the optimizer is
built: MMEngine's runner builds it before loading a checkpoint, so it is the configured
alpha, exactly for the shipped values (multiples of 100); a value that float32 rounds
(e.g. 0.1) gives ``3 * float32(alpha)``. Set the key explicitly to pin another multiplier.
"""
from typing import List, Optional, Tuple

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS

ALPHA_KEY = 'thinker.alpha'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ThinkerAlphaOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`~mmengine.optim.DefaultOptimWrapperConstructor` plus the thinker's alpha
    lr multiplier ``lr_mult = alpha_lr_mult_per_alpha * alpha`` (3, the paper's rule) and
    ``decay_mult=0``, unless ``paramwise_cfg.custom_keys`` already covers alpha (see the
    module docstring).

    Args:
        optim_wrapper_cfg: As for the default constructor.
        paramwise_cfg: As for the default constructor; it is not modified.
    """

    alpha_lr_mult_per_alpha = 3.0

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        self.explicit_paramwise_cfg = self.paramwise_cfg

    @staticmethod
    def learnable_alphas(model: nn.Module) -> List[Tuple[str, nn.Parameter]]:
        """The trainable parameters that the custom key ``'thinker.alpha'`` matches."""
        return [(name, param) for name, param in model.named_parameters()
                if ALPHA_KEY in name and param.requires_grad]

    def alpha_custom_key(self, model: nn.Module) -> Optional[dict]:
        """The ``custom_keys`` entry for ``'thinker.alpha'``, or None to add nothing."""
        alphas = self.learnable_alphas(model)
        explicit = self.explicit_paramwise_cfg.get('custom_keys', {})
        if not alphas or any(key in name for key in explicit for name, _ in alphas):
            return None
        values = sorted({float(param.detach()) for _, param in alphas})
        if len(values) > 1:
            raise ValueError(
                f'{type(self).__name__}: the thinkers start from different alphas '
                f'{values} ({", ".join(name for name, _ in alphas)}); set '
                "optim_wrapper.paramwise_cfg.custom_keys for each explicitly")
        if self.base_lr is None:
            raise ValueError(f'{type(self).__name__} needs optim_wrapper.optimizer.lr to '
                             'derive the learning rate of thinker.alpha')
        lr_mult = self.alpha_lr_mult_per_alpha * values[0]
        if self.base_wd is None:
            return dict(lr_mult=lr_mult, weight_decay=0.0)
        return dict(lr_mult=lr_mult, decay_mult=0.0)

    def __call__(self, model: nn.Module) -> OptimWrapper:
        inner = model.module if hasattr(model, 'module') else model
        entry = self.alpha_custom_key(inner)
        if entry is None:
            self.paramwise_cfg = self.explicit_paramwise_cfg
        else:
            custom_keys = dict(self.explicit_paramwise_cfg.get('custom_keys', {}))
            custom_keys[ALPHA_KEY] = entry
            self.paramwise_cfg = dict(self.explicit_paramwise_cfg, custom_keys=custom_keys)
        try:
            return super().__call__(model)
        finally:
            self.paramwise_cfg = self.explicit_paramwise_cfg

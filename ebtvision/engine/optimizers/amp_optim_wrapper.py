"""Mixed precision on CPU and CUDA: MMEngine's :class:`AmpOptimWrapper`, device-general.

MMEngine's wrapper refuses to be built without an accelerator, and its autocast allows
only bfloat16 on CPU. Both dtypes work there with PyTorch's own ``torch.autocast``
(float16 on CPU is slow but correct, double backward included), so the base class here
uses that directly on ``'cpu'`` and ``'cuda'`` (other devices keep MMEngine's code).

The loss scaler is on only for float16: bfloat16 has float32's exponent range, so its
gradients neither overflow nor underflow where float32's would not, and scaling would
only cost time. A disabled scaler makes ``backward`` / ``step`` the plain ones and saves
an empty state. The wrapper that ``tools/train.py --amp`` uses is
:class:`~.finite_optim_wrapper.FiniteCheckAmpOptimWrapper`, built on this one.
"""
from contextlib import contextmanager
from typing import Optional, Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper

AMP_DTYPES = ('bfloat16', 'float16')
#: Devices whose autocast this module runs itself (others: MMEngine's AmpOptimWrapper).
AMP_DEVICES = ('cpu', 'cuda')
#: The dtype of ``dtype=None``: MMEngine's (and torch's) autocast default.
TORCH_DEFAULT_DTYPES = {'cpu': 'bfloat16', 'cuda': 'float16'}


def _cuda_bf16(fast_only: bool) -> bool:
    try:
        return torch.cuda.is_bf16_supported(including_emulation=not fast_only)
    except TypeError:  # PyTorch < 2.3: no emulation to exclude
        return torch.cuda.is_bf16_supported()


def default_amp_dtype(device: Optional[str] = None) -> str:
    """``--amp``'s dtype: bfloat16 where the device runs it natively (CPU; CUDA from
    Ampere on), else float16 (with a loss scaler)."""
    device = device or get_device()
    if device == 'cpu' or (device == 'cuda' and _cuda_bf16(fast_only=True)):
        return 'bfloat16'
    return 'float16'


def check_amp_dtype(dtype: Union[str, torch.dtype, None], device: Optional[str] = None
                    ) -> torch.dtype:
    """The autocast dtype for ``dtype`` (None: the device's torch default) on ``device``.

    Raises:
        ValueError: ``dtype`` is not bfloat16 / float16, or the device cannot run it.
    """
    device = device or get_device()
    if dtype is None:
        dtype = TORCH_DEFAULT_DTYPES.get(device, 'float16')
    name = str(dtype).replace('torch.', '')
    if name not in AMP_DTYPES:
        raise ValueError(f'the mixed-precision dtype must be one of {AMP_DTYPES}, got {name!r}')
    if name == 'bfloat16' and device == 'cuda' and not _cuda_bf16(fast_only=False):
        raise ValueError('this CUDA device does not support bfloat16; use float16')
    return getattr(torch, name)


class DeviceAmpOptimWrapper(AmpOptimWrapper):
    """:class:`AmpOptimWrapper` that runs on CPU as well as CUDA, scaling only float16.

    Same arguments as MMEngine's. ``dtype``: ``'bfloat16'`` or ``'float16'`` (None: the
    device's autocast default, float16 on CUDA and bfloat16 on CPU, as in MMEngine).
    ``loss_scale`` applies to float16 only (``dict(enabled=True)`` forces a scaler).
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None, use_fsdp: bool = False,
                 **kwargs) -> None:
        self.device_type = get_device()
        if self.device_type not in AMP_DEVICES:
            super().__init__(loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp, **kwargs)
            return
        OptimWrapper.__init__(self, **kwargs)  # MMEngine's own __init__ insists on a GPU
        self.cast_dtype = check_amp_dtype(dtype, self.device_type)
        self._scale_update_param = None
        if loss_scale == 'dynamic':
            options = {}
        elif isinstance(loss_scale, float):  # static: update() resets it each step
            self._scale_update_param = loss_scale
            options = dict(init_scale=loss_scale)
        elif isinstance(loss_scale, dict):
            options = dict(loss_scale)
        else:
            raise TypeError(f'loss_scale must be a float, a dict or "dynamic", got {loss_scale!r}')
        options = {'enabled': self.cast_dtype == torch.float16, **options}
        if use_fsdp:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
            self.loss_scaler = ShardedGradScaler(self.device_type, **options)
        else:
            self.loss_scaler = torch.amp.GradScaler(self.device_type, **options)

    def load_state_dict(self, state_dict: dict) -> None:
        # A checkpoint saved without scaling (bfloat16) resumed with float16: its scaler
        # state is empty, which an enabled GradScaler refuses; start scaling afresh.
        if 'loss_scaler' in state_dict and not state_dict['loss_scaler']:
            state_dict = {key: value for key, value in state_dict.items()
                          if key != 'loss_scaler'}
        super().load_state_dict(state_dict)

    @contextmanager
    def optim_context(self, model: nn.Module):
        if self.device_type not in AMP_DEVICES:
            with super().optim_context(model):
                yield
            return
        with OptimWrapper.optim_context(self, model), torch.autocast(
                self.device_type, dtype=self.cast_dtype):
            yield

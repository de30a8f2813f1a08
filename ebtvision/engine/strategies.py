"""DDP and FSDP strategies for MMEngine's ``FlexibleRunner``, on CUDA and on CPU (gloo).

A config with ``runner_type = 'FlexibleRunner'`` and ``strategy = dict(type='DDPStrategy')``
or ``dict(type='FSDPStrategy', ...)`` (see ``configs/_base_/strategies/``) gets these
subclasses of MMEngine's strategies, registered under the same names in ebtvision's scope,
with the same arguments. What they change:

- CPU: MMEngine initialises the process group after ``torch.cuda.set_device`` and wraps
  with ``device_ids=[local_rank]`` (DDP) / ``device_id=local_rank`` (FSDP), which fail
  without CUDA. Here the group is gloo and the model stays on the CPU.
- DDP checkpoints hold the module's keys (MMEngine's strategy saves DDP's ``module.``
  prefixed ones), as ``Runner`` and a single process write them.
- FSDP and an EBT's learnable step size: FSDP refuses scalar (0-d) parameters such as
  ``thinker.alpha``. They are left out of sharding (``ignored_states``), kept on the
  wrapping device, and their gradients averaged over the processes after each backward
  pass, as DDP would, so every rank applies the same update.
- FSDP and gradient clipping: MMEngine clips with ``torch.nn.utils.clip_grad_norm_`` over
  the parameters each process holds, i.e. over its shard only: every rank would clip by
  its own, too small norm. Here the norm is FSDP's, over the whole model, and the
  finite-gradient check of ``FiniteCheckOptimWrapper`` tests that norm too, so all ranks
  skip or stop alike.
- FSDP checkpoints: ``state_dict_cfg='full'`` by default (MMEngine: ``'local'``): rank 0
  gathers the model and the optimizer into one ordinary checkpoint file, which
  ``tools/test.py``, the demos, ``--resume`` and ``load_from`` read like any other
  (weights-only); ``'local'`` (a folder of per-rank shards) is refused. The optimizer
  states are gathered one kind at a time (see :meth:`FSDPStrategy._gather_optim_state`),
  the fp16 loss scaler's state is kept, and resuming loads with the argument order of
  torch >= 2.1 (MMEngine's call fails there).
- FSDP and mixed precision: every optimizer wrapper derived from ``AmpOptimWrapper``
  (``FiniteCheckAmpOptimWrapper``, what ``--amp`` uses) gets the sharded gradient scaler
  (MMEngine does that for the type name ``'AmpOptimWrapper'`` only).

An EBT's training loss takes ``torch.autograd.grad(energy, candidate, create_graph=True)``
inside the forward pass and backpropagates through that gradient. Measured with 2 gloo
processes (``tests/test_tools/test_strategies.py``): FSDP (torch's
``FullyShardedDataParallel``, which MMEngine wraps) with the whole model as one FSDP unit
gives a single process's weights (FULL_SHARD, SHARD_GRAD_OP, NO_SHARD). Split into one unit
per block, training still matches, but the inner ``autograd.grad`` runs the units'
pre-backward hooks, so from the first thinking step on every block stays gathered until the
backward pass ends (no memory saved), and after an inference pass (validation thinks too,
with no backward to reset them) the units are stuck in their backward state: the next
checkpoint fails. Splitting an EBT is therefore refused (:func:`check_fsdp_config`); the
baselines (DiT, Transformer++) may use :func:`block_wrap_policy`. The per-module
``fully_shard`` API (FSDP2) is not offered: with one unit per block its end-of-backward
callback runs after the inner ``autograd.grad`` and reshards the root's parameters in the
middle of the forward pass, so the next energy evaluation fails.
"""
import contextlib
import copy
import logging
import os
from functools import partial
from typing import List, Optional, Sequence

import torch
import torch.distributed as torch_dist
import torch.nn as nn
from mmengine._strategy import DDPStrategy as MMEngineDDPStrategy
from mmengine._strategy.fsdp import FSDPStrategy as MMEngineFSDPStrategy
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import FUNCTIONS
from mmengine.runner.checkpoint import weights_to_cpu
from torch.distributed.fsdp import FullyShardedDataParallel

from ebtvision.registry import OPTIM_WRAPPERS, STRATEGIES

#: The entries of ``torch.optim.Optimizer.state_dict()`` (FSDP converts these).
_OPTIMIZER_KEYS = ('state', 'param_groups')
#: The transformer blocks of ebtvision's backbones: image EBT / DiT, causal EBT / Transformer++.
DEFAULT_BLOCK_TYPES = ('AdaLNBlock', 'LlamaBlock')


def _local_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device('cuda', int(os.environ.get('LOCAL_RANK', 0)))
    return torch.device('cpu')


@FUNCTIONS.register_module()
def block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int,
                      block_types: Sequence[str] = DEFAULT_BLOCK_TYPES) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per transformer block (by class name).

    Config: ``model_wrapper=dict(auto_wrap_policy=dict(type='block_wrap_policy'))``, or
    ``block_types=[...]`` for other blocks. Each block's parameters are then gathered
    only while that block runs (FULL_SHARD), which is what saves memory; everything
    outside the blocks (embeddings, final layer, the thinker) forms the root unit.
    """
    if recurse:
        return True
    return type(module).__name__ in tuple(block_types)


def _nested_units_error(model_name: str) -> ValueError:
    return ValueError(
        f'FSDPStrategy: {model_name} is an EBT, which FSDP cannot split into several units '
        '(model_wrapper.auto_wrap_policy): its thinking loop differentiates the energy '
        "inside the forward pass, which fires the units' backward hooks early and leaves "
        'them unusable after validation; leave auto_wrap_policy unset (one unit costs an '
        'EBT no memory: its thinking keeps every block gathered anyway)')


def _check_state_dict_cfg(state_dict_cfg) -> None:
    kind = (state_dict_cfg if isinstance(state_dict_cfg, str) else
            str((state_dict_cfg or {}).get('state_dict_type', 'LOCAL_STATE_DICT')))
    if kind not in ('full', 'FULL_STATE_DICT', 'StateDictType.FULL_STATE_DICT'):
        raise ValueError(
            f'FSDPStrategy: state_dict_cfg={state_dict_cfg!r} saves every process\'s shard '
            'separately, which tools/test.py, --resume and load_from cannot read; use '
            "state_dict_cfg='full' (rank 0 gathers one ordinary checkpoint)")


def check_fsdp_config(strategy: Optional[dict], model_cls=None) -> None:
    """Check an FSDP ``strategy`` config before anything is built.

    Raises:
        ValueError: ``state_dict_cfg`` does not gather full state dicts, or
            ``model_wrapper.auto_wrap_policy`` would split an :class:`EnergyBasedModel`
            (``model_cls``) into several FSDP units.
    """
    from ebtvision.models import EnergyBasedModel
    if not isinstance(strategy, dict):
        return
    kind = strategy.get('type')
    name = kind if isinstance(kind, str) else getattr(kind, '__name__', '')
    if name.rpartition('.')[2] != 'FSDPStrategy':
        return
    _check_state_dict_cfg(strategy.get('state_dict_cfg', 'full'))
    wrapper = strategy.get('model_wrapper') or {}
    if (isinstance(model_cls, type) and issubclass(model_cls, EnergyBasedModel)
            and wrapper.get('auto_wrap_policy') is not None):
        raise _nested_units_error(model_cls.__name__)


def full_parameters(model: nn.Module):
    """Context in which the methods of a wrapped model's ``module`` can be called directly.

    Code that bypasses the wrapper's forward (visualisation hooks calling
    ``runner.model.module.test_step`` or ``denoise_by_thinking``) finds FSDP's parameters
    sharded; inside this context every process holds the whole model (read-only). It is a
    collective: every process must enter it. A no-op for other models.
    """
    if isinstance(model, FullyShardedDataParallel):
        return FullyShardedDataParallel.summon_full_params(model, writeback=False)
    return contextlib.nullcontext()


class _GlooOnCPU:
    """``_setup_distributed`` that falls back to gloo where there is no CUDA."""

    def _setup_distributed(self, launcher: str = 'pytorch', backend: str = 'nccl',
                           **kwargs) -> None:
        if is_distributed():
            return
        if torch.cuda.is_available():
            init_dist(launcher, backend, **kwargs)
            return
        if launcher != 'pytorch':
            raise RuntimeError(f'launcher "{launcher}" needs CUDA here; on CPU use '
                               '--launcher pytorch (torchrun)')
        # MMEngine's init_dist calls torch.cuda.set_device first: do it without.
        torch_dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                      world_size=int(os.environ['WORLD_SIZE']))


@STRATEGIES.register_module()
class DDPStrategy(_GlooOnCPU, MMEngineDDPStrategy):
    """MMEngine's ``DDPStrategy`` that also runs on CPU (gloo, no device ids).

    Same arguments; ``model_wrapper`` defaults to
    ``dict(type='MMDistributedDataParallel', broadcast_buffers=False)`` as in MMEngine.
    """

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        if not torch.cuda.is_available() and not is_model_wrapper(model):
            wrapper = dict(self.model_wrapper or dict(type='MMDistributedDataParallel',
                                                      broadcast_buffers=False))
            wrapper.setdefault('device_ids', None)  # a CPU module takes none
            self.model_wrapper = wrapper
        return super()._wrap_model(model)

    def model_state_dict(self) -> dict:
        # The wrapped module's keys, without DDP's 'module.' prefix: the checkpoint is the
        # one MMEngine's Runner (and a single process) writes.
        model = self.model.module if is_model_wrapper(self.model) else self.model
        return weights_to_cpu(model.state_dict())


def _average_gradient(param: torch.Tensor) -> None:
    """Post-accumulate-grad hook: the mean of ``param.grad`` over all processes."""
    torch_dist.all_reduce(param.grad)
    param.grad.div_(torch_dist.get_world_size())


def _clip_global_grad_norm(model, params, max_norm: float, norm_type: float = 2.0,
                           **kwargs) -> torch.Tensor:
    """``clip_func`` of an optimizer wrapper under FSDP: clip by the whole model's norm.

    ``params`` (this process's shards) are ignored: FSDP's own ``clip_grad_norm_`` adds
    the shards of every process (and the replicated, ignored parameters once).
    """
    return model.clip_grad_norm_(max_norm, norm_type)


@STRATEGIES.register_module()
class FSDPStrategy(_GlooOnCPU, MMEngineFSDPStrategy):
    """MMEngine's ``FSDPStrategy`` for EBTs, on CUDA and CPU (see the module docstring).

    Same arguments, except that ``state_dict_cfg`` defaults to ``'full'`` and must
    gather full state dicts (one checkpoint file that everything loads).

    Args:
        model_wrapper: Arguments of ``MMFullyShardedDataParallel`` (torch's
            ``FullyShardedDataParallel``): ``sharding_strategy``, ``auto_wrap_policy``
            (e.g. ``dict(type='block_wrap_policy')``), ``use_orig_params`` (default
            True)... ``device_id`` defaults to the local GPU, or the CPU.
        state_dict_cfg: ``'full'`` or a dict with ``state_dict_type='FULL_STATE_DICT'``.
        **kwargs: See MMEngine's ``FSDPStrategy``.
    """

    def __init__(self, *, state_dict_cfg='full', **kwargs) -> None:
        _check_state_dict_cfg(state_dict_cfg)
        super().__init__(state_dict_cfg=state_dict_cfg, **kwargs)
        self._synced_scalars: List[nn.Parameter] = []

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        if is_model_wrapper(model):
            return model
        device = _local_device()
        # Deep copy: MMEngine's wrapper pops keys from the nested policy dicts.
        wrapper = copy.deepcopy(dict(self.model_wrapper or {}))
        wrapper.setdefault('type', 'MMFullyShardedDataParallel')
        if device.type == 'cpu':
            wrapper.setdefault('device_id', device)  # MMEngine passes the local rank
        scalars = [param for param in model.parameters() if param.dim() == 0]
        if scalars and not ({'ignored_modules', 'ignored_parameters'} & set(wrapper)):
            ignored = list(wrapper.get('ignored_states') or [])
            known = {id(state) for state in ignored}
            wrapper['ignored_states'] = ignored + [param for param in scalars
                                                   if id(param) not in known]
            for param in scalars:  # FSDP moves only the parameters it manages
                param.data = param.data.to(device)
                if param.requires_grad:
                    param.register_post_accumulate_grad_hook(_average_gradient)
                    self._synced_scalars.append(param)
        configured, self.model_wrapper = self.model_wrapper, wrapper
        try:
            wrapped = super()._wrap_model(model)
        finally:
            self.model_wrapper = configured
        from ebtvision.models import EnergyBasedModel
        if isinstance(model, EnergyBasedModel) and len(
                FullyShardedDataParallel.fsdp_modules(wrapped)) > 1:
            raise _nested_units_error(type(model).__name__)
        if self._synced_scalars:
            print_log('FSDPStrategy: scalar parameters kept whole on every process, '
                      'gradients averaged: ' + ', '.join(
                          name for name, param in model.named_parameters()
                          if any(param is p for p in self._synced_scalars)),
                      logger='current', level=logging.INFO)
        return wrapped

    def optim_state_dict(self) -> dict:
        # FSDP rebuilds the optimizer's own entries (full tensors keyed by parameter name);
        # the wrapper's other entries (the fp16 loss scaler) would be dropped: keep them.
        wrapper_state = self.optim_wrapper.state_dict()
        own = {key: wrapper_state[key] for key in _OPTIMIZER_KEYS if key in wrapper_state}
        state = self._gather_optim_state(own)
        state.update({key: value for key, value in wrapper_state.items()
                      if key not in _OPTIMIZER_KEYS})
        return state

    def _gather_optim_state(self, own: dict) -> dict:
        """``FSDP.optim_state_dict``, one per-element state (``exp_avg``...) at a time.

        FSDP gathers every state of a parameter group through one reused buffer and
        returns views of it, copied only by ``offload_to_cpu``, which does nothing on
        the CPU: there, every state came back holding the last one gathered (AdamW's
        ``exp_avg`` equal to ``exp_avg_sq``, measured with torch 2.14), so a resumed run
        went another way. Gathered one by one, each state gets its own buffer.
        """
        def per_element(value) -> bool:
            return isinstance(value, torch.Tensor) and value.dim() > 0

        names = {name for param_state in own.get('state', {}).values()
                 for name, value in param_state.items() if per_element(value)}
        every_rank = [None] * torch_dist.get_world_size()
        torch_dist.all_gather_object(every_rank, sorted(names))  # the same calls on all
        names = sorted(set().union(*every_rank))
        optimizer = self.optim_wrapper.optimizer
        if len(names) <= 1:
            return FullyShardedDataParallel.optim_state_dict(
                self.model, optimizer, optim_state_dict=own)
        merged: Optional[dict] = None
        for name in names:
            part = dict(own, state={
                index: {key: value for key, value in param_state.items()
                        if key == name or not per_element(value)}
                for index, param_state in own.get('state', {}).items()})
            gathered = FullyShardedDataParallel.optim_state_dict(
                self.model, optimizer, optim_state_dict=part)
            if merged is None:
                merged = gathered
                continue
            for fqn, param_state in gathered.get('state', {}).items():
                if name in param_state:
                    merged['state'].setdefault(fqn, {})[name] = param_state[name]
        return merged

    def load_optim_state_dict(self, state_dict: dict) -> None:
        # MMEngine passes the arguments in torch 2.0's order, which torch >= 2.1 refuses.
        own = {key: state_dict[key] for key in _OPTIMIZER_KEYS if key in state_dict}
        loaded = FullyShardedDataParallel.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer, optim_state_dict=own)
        loaded.update({key: value for key, value in state_dict.items()
                       if key not in _OPTIMIZER_KEYS})
        self.optim_wrapper.load_state_dict(loaded)

    def build_optim_wrapper(self, optim_wrapper, model: Optional[nn.Module] = None):
        if isinstance(optim_wrapper, dict):
            wrapper_type = optim_wrapper.get('type', 'OptimWrapper')
            if isinstance(wrapper_type, str):
                wrapper_type = OPTIM_WRAPPERS.get(wrapper_type)
            if isinstance(wrapper_type, type) and issubclass(wrapper_type, AmpOptimWrapper):
                optim_wrapper.setdefault('use_fsdp', True)  # the sharded GradScaler
        built = super().build_optim_wrapper(optim_wrapper, model)
        model = model if model is not None else self.model
        if isinstance(built, OptimWrapper) and hasattr(model, 'clip_grad_norm_'):
            if built.clip_grad_kwargs and getattr(built, 'grad_name', '') == 'grad_norm':
                built.clip_func = partial(_clip_global_grad_norm, model)
            if hasattr(built, 'grad_norm'):
                # FiniteCheck wrappers: test the whole gradient's norm, which every
                # rank shares (an infinite max_norm only measures, it never scales).
                built.grad_norm = lambda: float(model.clip_grad_norm_(float('inf')))
        return built

"""Parameters, FLOPs per training step by phase, and memory of configs' models.

    python tools/analysis/model_size.py CONFIG [CONFIG ...] [--batch-size N] [--json FILE]

For each config the model is built at its real size (random weights) and training steps
are run on synthetic batches: images of the backbone's size, clips of the dataset's length
as latents (a frozen encoder is left out: it is not trained and the latent cache removes
it), token sequences of the dataset's length. Up to 3 samples a step is measured as it is;
a larger batch is measured at 2 and 3 samples and extrapolated: every operator's FLOPs and
every tensor's size are affine in the batch, so the extrapolation is exact (batch 1 is not
used: there some copies are free, e.g. ``contiguous()`` of a permutation that only moves
size-1 dims, so its sequence of allocations differs).

* Parameters: all, trainable, and without the input embeddings (patch / token / latent
  embedding layers, step embeddings), the count scaling laws use.
* FLOPs (torch's per-operator formulas, ``torch.utils.flop_counter``; a multiply-add counts
  2) of one training step, ``model(mode='loss')`` and ``loss.backward()``, in three phases:
  forward (operators outside any backward pass: the network's forward passes, the loss,
  the candidate updates), energy gradient (the backward passes run inside the loss: the
  thinking loop's ``autograd.grad(..., create_graph=True)``; 0 for the DiT and the
  Transformer++) and backward (``loss.backward()``, for an EBT the second-order one). They
  are also given in plain forwards of the network (the energy of one candidate, the logits,
  the noise prediction, measured without gradients).
* Memory (float32, per GPU): weights; gradients plus AdamW's two moments; activations = the
  peak, over the step, of the bytes of the tensors allocated during the step that are
  alive at once (saved for the backward passes, recomputed by a checkpoint, temporaries),
  the parameters' gradients left out (they are in the previous figure). Measured with the
  backbone's ``with_cp`` off and on (activation checkpointing; '-' for a backbone without
  it). Allocator overhead and buffers inside a kernel are not in it.

Steps whose extent is drawn at random are measured at their largest: the most repeats of
the final landscape (S2). A replay buffer in ``'append'`` mode adds
``int(replay_fraction * batch)`` replayed samples to each full-buffer step: they are counted
(``batch`` column ``B+k``), as each costs what a fresh sample costs.
"""
import copy
import json
import os.path as osp
import sys
import weakref
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import flop_registry

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.utils import ArgumentParser, exit_with_error, read_config  # noqa: E402
from ebtvision.utils.optional import exit_on_missing_extra  # noqa: E402

# Input layers left out of the non-embedding count (scaling-law convention).
EMBEDDING_MODULES = ('patch_embed', 'token_embed', 'step_embed', 'embed')
#: Phases of a training step, in the order they first run.
PHASES = ('forward', 'energy_grad', 'backward')


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument('--batch-size', type=int, default=None,
                        help="batch per GPU (default: the config's train_dataloader batch)")
    parser.add_argument('--json', help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


def count_parameters(model: nn.Module) -> Dict[str, int]:
    """All, trainable and non-embedding parameter counts."""
    total = trainable = embedding = 0
    for name, param in model.named_parameters():
        total += param.numel()
        trainable += param.numel() if param.requires_grad else 0
        if any(part in EMBEDDING_MODULES for part in name.split('.')[:-1]):
            embedding += param.numel()
    return dict(params=total, trainable=trainable, non_embedding=total - embedding)


def build_with_batch(cfg) -> Tuple[nn.Module, dict, str]:
    """The config's model and a one-sample training batch for it (``model(**batch)``)."""
    from ebtvision.registry import MODELS
    from ebtvision.utils.synthetic_batch import clip_len, synthetic_batch, task_of
    model_cfg = cfg.model.copy()
    encoder = model_cfg.get('encoder') or {}
    if encoder.get('type') == 'FrozenVAEEncoder':  # latents instead: no VAE download
        size = model_cfg.get('frame_size', 224)
        model_cfg.update(encoder=None, latent_shape=(4, size // 8, size // 8))
    model = MODELS.build(model_cfg)
    task = task_of(model)
    # Video is counted on latents: the frozen encoder is not trained (the cache removes it).
    batch = synthetic_batch(model, cfg, 1, kind='latents' if task == 'next_frame' else None)
    if task == 'denoise':
        return model, batch, 'images'
    if task == 'next_frame':
        return model, batch, f'{clip_len(cfg)}-frame clips'
    return model, batch, f'{batch["inputs"].shape[1] - 1}-token sequences'


def network_forward(model: nn.Module, batch: dict) -> None:
    """One plain evaluation of the network, no gradient (for the FLOPs ratio)."""
    from ebtvision.models import (BaseDenoiser, DiTDenoiser, EBTDenoiser, LanguageModel,
                                  NextFramePredictor)
    inputs = batch['inputs']
    with torch.no_grad():
        if isinstance(model, EBTDenoiser):
            model.energy(inputs)
        elif isinstance(model, DiTDenoiser):
            model.backbone(inputs, torch.zeros(inputs.shape[0], dtype=torch.long))
        elif isinstance(model, BaseDenoiser):
            raise ValueError(f'no plain forward known for {type(model).__name__}')
        elif isinstance(model, NextFramePredictor):
            real = inputs[:, :-1]
            if hasattr(model, 'energy_fn'):
                model.energy_fn(real)(model.head.init_candidates(real), 0)
            else:
                model.backbone(model.head.embed_latents(real))
        elif isinstance(model, LanguageModel):
            ids = inputs[:, :-1]
            if hasattr(model, 'energy_fn'):  # an EBT: the energy of one candidate
                candidate = model.head.normalize(model.head.init_candidates(*ids.shape))
                model.energy_fn(ids)(candidate, 0)
            else:
                model.predict_logits(ids)


def _flop_formulas() -> dict:
    """torch's per-operator FLOP formulas, plus twins it lacks that our models run: the
    in-place ``baddbmm_`` (the fused adaLN block's double backward) and the CPU kernels of
    ``scaled_dot_product_attention`` (without them attention would count 0 on CPU)."""
    aten = torch.ops.aten
    formulas = dict(flop_registry)
    twins = [('baddbmm_', 'baddbmm'),
             ('_scaled_dot_product_flash_attention_for_cpu', '_scaled_dot_product_flash_attention'),
             ('_scaled_dot_product_flash_attention_for_cpu_backward',
              '_scaled_dot_product_flash_attention_backward')]
    for name, twin in twins:
        if hasattr(aten, name):  # older PyTorch may not have the CPU kernels
            formulas.setdefault(getattr(aten, name), flop_registry[getattr(aten, twin)])
    return formulas


FLOP_FORMULAS = _flop_formulas()


class FlopCounter(TorchDispatchMode):
    """FLOPs of the operators run while it is on, per phase of a training step.

    ``FlopCounterMode`` itself cannot be used: its module tracker fails inside
    ``autograd.grad`` on a leaf input, which is how an EBT takes its energy gradient.
    An operator belongs to ``'energy_grad'`` when the autograd engine is running a backward
    pass (``_current_graph_task_id() != -1``) and ``in_backward`` is not set yet: the
    thinking loop's ``autograd.grad`` and what runs inside it (a checkpoint's recompute,
    a custom function's backward). The engine knows, so nothing has to be patched.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = dict.fromkeys(PHASES, 0)
        self.in_backward = False  # set by the caller before loss.backward()

    def phase(self) -> str:
        if self.in_backward:
            return 'backward'
        return 'forward' if torch._C._current_graph_task_id() == -1 else 'energy_grad'

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = FLOP_FORMULAS.get(func._overloadpacket)
        if formula is not None:
            self.flops[self.phase()] += formula(*args, **kwargs, out_val=out)
        return out

    @property
    def total(self) -> int:
        return sum(self.flops.values())


def flops_of(function) -> int:
    """FLOPs of the operators ``function`` runs, by torch's own per-operator formulas
    (``torch.utils.flop_counter.flop_registry``, see :func:`_flop_formulas`), backward
    passes included."""
    counter = FlopCounter()
    with counter:
        function()
    return counter.total


def _storage(tensor: torch.Tensor) -> Optional[torch.UntypedStorage]:
    try:
        return tensor.untyped_storage()
    except (NotImplementedError, RuntimeError):  # no storage (sparse, ...): not counted
        return None


class LiveMemory(TorchDispatchMode):
    """The bytes of the tensor storages operators allocate while it is on, over time.

    A storage counts from the operator that returns it new until the last tensor on it
    is freed (a weakref finalizer), whoever holds it: the autograd graph (saved
    activations, a kept ``create_graph`` graph), a checkpoint (its inputs, its recomputed
    block), a temporary. Counting storages, not saved tensors, is what makes checkpointing
    honest: ``saved_tensors_hooks`` do not see what a checkpoint saves and recomputes, and
    summing what is saved over the step would count recomputed blocks that are freed one
    after the other. Views and in-place results share an input's storage: not counted.

    ``timeline`` lists the events in order: ``i`` the allocation ``i``, ``~i`` its free.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sizes: List[int] = []
        self.names: List[str] = []
        self.timeline: List[int] = []
        self.live: Dict[int, int] = {}  # storage (its C pointer) -> allocation index
        self.recording = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.recording:
            inputs = {storage._cdata for storage in map(_storage, self._tensors((args, kwargs)))
                      if storage is not None}
            for tensor in self._tensors(out):
                self._track(_storage(tensor), inputs, func)
        return out

    @staticmethod
    def _tensors(tree) -> List[torch.Tensor]:
        return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]

    def _track(self, storage, inputs, func) -> None:
        if storage is None or storage.nbytes() == 0:
            return
        key = storage._cdata  # unique while alive, and tracked storages are alive
        if key in self.live or key in inputs:
            return
        index = len(self.sizes)
        self.sizes.append(storage.nbytes())
        self.names.append(str(func))
        self.live[key] = index
        self.timeline.append(index)
        weakref.finalize(storage, self._freed, key, index)

    def _freed(self, key: int, index: int) -> None:
        if self.recording:
            del self.live[key]
            self.timeline.append(~index)

    def stop(self) -> None:
        """Stop recording (storages still alive then stay counted to the end)."""
        self.recording = False

    def allocation_of(self, tensor: torch.Tensor) -> Optional[int]:
        """Index of the allocation that made ``tensor``'s storage, if it is alive."""
        storage = _storage(tensor)
        return None if storage is None else self.live.get(storage._cdata)

    def curve(self, exclude=()) -> List[int]:
        """Live bytes after each event, the allocations ``exclude`` left out."""
        total, curve = 0, []
        for event in self.timeline:
            index = event if event >= 0 else ~event
            if index not in exclude:
                total += self.sizes[index] if event >= 0 else -self.sizes[index]
            curve.append(total)
        return curve

    def signature(self) -> Tuple:
        """What must match for two runs' curves to be compared event by event."""
        return tuple(self.names), tuple(self.timeline)


def training_step(model: nn.Module, batch: dict, counter: Optional[FlopCounter] = None) -> None:
    """``model(mode='loss')`` and ``loss.backward()``; ``counter`` is told when the
    backward starts."""
    losses = model(**batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    if counter is not None:
        counter.in_backward = True
    loss.backward()


def measure_step(model: nn.Module, batch: dict) -> dict:
    """FLOPs per phase and the live-memory curve of one training step on ``batch``
    (the parameters' gradients left out of the memory: they have their own figure)."""
    model.zero_grad(set_to_none=True)  # gradients allocated in the step, as in training
    torch.manual_seed(0)
    counter, memory = FlopCounter(), LiveMemory()
    with memory, counter:
        training_step(model, batch, counter)
    memory.stop()
    gradients = {memory.allocation_of(param.grad) for param in model.parameters()
                 if param.grad is not None}
    model.zero_grad(set_to_none=True)
    return dict(flops=counter.flops, curve=memory.curve(gradients),
                signature=memory.signature())


def repeat_batch(batch: dict, count: int) -> dict:
    """``batch`` (one sample) repeated to ``count`` samples."""
    inputs = batch['inputs']
    repeated = dict(batch, inputs=inputs.repeat(count, *([1] * (inputs.dim() - 1))))
    if 'data_samples' in batch:
        repeated['data_samples'] = [copy.deepcopy(sample) for sample in batch['data_samples']
                                    for _ in range(count)]
    return repeated


def _affine(small, large, rows: int):
    """The value at ``rows`` of what is ``small`` at 2 samples and ``large`` at 3."""
    return small + (rows - 2) * (large - small)


def at_batch(run: Callable[[int], dict], rows: int) -> dict:
    """``run(samples)``'s FLOPs and peak memory at ``rows`` samples: measured up to 3,
    extrapolated from 2 and 3 beyond (exact: sizes and FLOPs are affine in the batch).

    The memory curve is extrapolated event by event when both runs allocate and free in
    the same order, so the peak is found wherever it lies at the real batch; otherwise (a
    step that branches on the batch) the two runs' peaks are.
    """
    if rows <= 3:
        result = run(rows)
        if 'curve' not in result:
            return dict(flops=result['flops'])
        return dict(flops=result['flops'], peak=max(result['curve'], default=0),
                    memory_scaling='measured')
    small, large = run(2), run(3)
    flops = {key: _affine(small['flops'][key], large['flops'][key], rows)
             for key in small['flops']}
    if 'curve' not in small:
        return dict(flops=flops)
    if small['signature'] == large['signature']:
        peak = max(map(_affine, small['curve'], large['curve'], [rows] * len(small['curve'])),
                   default=0)
        return dict(flops=flops, peak=peak, memory_scaling='per event')
    peak = _affine(max(small['curve'], default=0), max(large['curve'], default=0), rows)
    return dict(flops=flops, peak=peak, memory_scaling='peaks')


def supports_checkpointing(model: nn.Module) -> bool:
    """Whether the model's backbone has the ``with_cp`` switch."""
    return isinstance(getattr(getattr(model, 'backbone', None), 'with_cp', None), bool)


@contextmanager
def checkpointing(model: nn.Module, enabled: bool):
    """The backbone's activation checkpointing switched ``enabled`` (read at each call)."""
    backbone = model.backbone
    previous = backbone.with_cp
    backbone.with_cp = enabled
    try:
        yield
    finally:
        backbone.with_cp = previous


def rows_per_step(model: nn.Module, batch_size: int) -> int:
    """Samples a training step runs once a replay buffer (``'append'`` mode) is full:
    ``int(replay_fraction * batch)`` replayed ones join the batch (see ``ReplayBuffer``)."""
    buffer = getattr(model, 'replay_buffer', None)
    if buffer is None or buffer.mode != 'append':
        return batch_size
    return batch_size + min(int(buffer.replay_fraction * batch_size), buffer.capacity)


@contextmanager
def largest_step(model: nn.Module):
    """A training step of the same, largest, extent at every batch size: the final
    landscape repeated its most times, and no replay (its rows are counted by
    :func:`rows_per_step`; mixing them in here would depend on earlier steps)."""
    thinker = getattr(model, 'thinker', None)
    repeats = getattr(thinker, 'final_landscape_repeats', None)
    buffer = getattr(model, 'replay_buffer', None)
    try:
        if repeats is not None:
            thinker.final_landscape_repeats = (repeats[1], repeats[1])
        if buffer is not None:
            model.replay_buffer = None
        yield
    finally:
        if repeats is not None:
            thinker.final_landscape_repeats = repeats
        if buffer is not None:
            model.replay_buffer = buffer


def measure(config: str, batch_size=None) -> dict:
    """The figures of one config (see the module docstring); ``None`` where not measured."""
    cfg = read_config(config)
    torch.manual_seed(0)
    model, batch, unit = build_with_batch(cfg)
    model.train()
    batch_size = batch_size or int(cfg.get('train_dataloader', {}).get('batch_size', 1))
    rows = rows_per_step(model, batch_size)
    figures = dict(config=config, batch=batch_size, rows=rows, samples=unit,
                   **count_parameters(model))

    def step(count):
        return measure_step(model, repeat_batch(batch, count))

    def forward(count):
        return dict(flops=dict(forward=flops_of(
            lambda: network_forward(model, repeat_batch(batch, count)))))

    with largest_step(model):
        if supports_checkpointing(model):
            with checkpointing(model, False):
                plain = at_batch(step, rows)
            with checkpointing(model, True):
                checkpointed = at_batch(step, rows)
        else:
            plain, checkpointed = at_batch(step, rows), None
        figures['forward_flops'] = at_batch(forward, rows)['flops']['forward']
    figures.update({f'{phase}_phase_flops': plain['flops'][phase] for phase in PHASES})
    figures['step_flops'] = sum(plain['flops'].values())
    figures.update(weight_bytes=4 * figures['params'],
                   optimizer_bytes=12 * figures['trainable'],  # grads + AdamW moments
                   activation_bytes=plain['peak'], memory_scaling=plain['memory_scaling'],
                   step_flops_cp=checkpointed and sum(checkpointed['flops'].values()),
                   activation_bytes_cp=checkpointed and checkpointed['peak'])
    return figures


def table(rows) -> str:
    gib = 2.0**30
    lines = ['| config | batch | params | non-emb. | TFLOPs / step | forward + energy grad. + '
             'backward (in forwards) | step / forward | weights GiB | grads + AdamW GiB | '
             'activations GiB | with_cp GiB |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        forward = row['forward_flops']
        phases = [row[f'{phase}_phase_flops'] / forward for phase in PHASES]
        split = ' + '.join('-' if value == 0 else f'{value:.1f}' for value in phases)
        batch = str(row['batch'])
        if row['rows'] != row['batch']:
            batch += f"+{row['rows'] - row['batch']}"
        with_cp = row['activation_bytes_cp']
        lines.append(
            f"| {osp.basename(row['config'])} | {batch} | {row['params'] / 1e6:.1f}M | "
            f"{row['non_embedding'] / 1e6:.1f}M | {row['step_flops'] / 1e12:.3f} | {split} | "
            f"{row['step_flops'] / forward:.1f}x | "
            f"{row['weight_bytes'] / gib:.2f} | {row['optimizer_bytes'] / gib:.2f} | "
            f"{row['activation_bytes'] / gib:.2f} | "
            f"{'-' if with_cp is None else f'{with_cp / gib:.2f}'} |")
    return '\n'.join(lines)


@exit_on_missing_extra  # a VAE config without diffusers: one error line naming the extra
def main(argv=None) -> None:
    args = parse_args(argv)
    from ebtvision.utils import register_all_modules
    register_all_modules()
    rows = []
    for config in args.configs:
        try:
            rows.append(measure(config, args.batch_size))
        except ValueError as error:
            exit_with_error(f'{config}: {error}')
        print(f"{config}: {rows[-1]['samples']}", file=sys.stderr)
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()

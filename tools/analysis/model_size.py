"""Parameters, FLOPs per training step and a memory estimate of configs' models.

    python tools/analysis/model_size.py CONFIG [CONFIG ...] [--batch-size N] [--json FILE]

For each config the model is built at its real size (random weights) and one training
step is run on a synthetic batch of ONE sample: images of the backbone's size, clips of
the dataset's length as latents (a frozen encoder is left out: it is not trained and the
latent cache removes it), token sequences of the dataset's length.

* Parameters: all, trainable, and without the input embeddings (patch / token / latent
  embedding layers, step embeddings), the count scaling laws use.
* FLOPs (``torch.utils.flop_counter``; a multiply-add counts 2): the whole training step
  (``model(mode='loss')`` and ``backward()``: for an EBT the energy forward, the energy
  gradient with its graph, the update, and the second-order backward) and one plain
  forward of the network (the energy of one candidate, the logits, the noise prediction),
  both times the batch (``--batch-size``, default the config's ``train_dataloader``
  batch per GPU: FLOPs grow linearly with it).
* Memory (float32, per GPU): weights; gradients plus AdamW's two moments; activations =
  the bytes of the tensors autograd saves for the backward pass during the step, measured
  at batch 1 and times the batch. Allocator overhead and temporary buffers are not in it.
"""
import json
import os.path as osp
import sys
from typing import Dict, Tuple

import torch
from torch import nn

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from ebtvision.utils import ArgumentParser, exit_with_error, read_config  # noqa: E402

# Input layers left out of the non-embedding count (scaling-law convention).
EMBEDDING_MODULES = ('patch_embed', 'token_embed', 'step_embed', 'embed')


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
    from ebtvision.models import BaseDenoiser, LanguageModel, NextFramePredictor
    from ebtvision.registry import MODELS
    model_cfg = cfg.model.copy()
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    encoder = model_cfg.get('encoder') or {}
    if encoder.get('type') == 'FrozenVAEEncoder':  # latents instead: no VAE download
        size = model_cfg.get('frame_size', 224)
        model_cfg.update(encoder=None, latent_shape=(4, size // 8, size // 8))
    model = MODELS.build(model_cfg)
    if isinstance(model, BaseDenoiser):
        size = model.backbone.img_size
        return model, dict(inputs=torch.rand(1, 3, size, size) * 2 - 1), 'images'
    if isinstance(model, NextFramePredictor):
        from ebtvision.structures import VideoDataSample
        clip = int(dataset.get('clip_len', 17))
        sample = VideoDataSample()
        sample.set_metainfo(dict(input_kind='latents'))
        latents = torch.randn(1, clip, *model.head.latent_shape)
        return model, dict(inputs=latents, data_samples=[sample]), f'{clip}-frame clips'
    if isinstance(model, LanguageModel):
        length = int(dataset.get('seq_len', 64)) + 1
        ids = torch.randint(0, model.head.vocab_size, (1, length))
        return model, dict(inputs=ids), f'{length - 1}-token sequences'
    raise ValueError(f'{type(model).__name__} is not a denoiser, next-frame or language model')


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


def flops_of(function) -> int:
    """FLOPs of the operators ``function`` runs, by torch's own per-operator formulas
    (``torch.utils.flop_counter.flop_registry``). ``FlopCounterMode`` itself cannot be
    used: its module tracker fails inside ``autograd.grad`` on a leaf input, which is
    how an EBT takes its energy gradient."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Counter.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter():
        function()
    return Counter.total


def training_step(model: nn.Module, batch: dict) -> None:
    losses = model(**batch, mode='loss')
    loss, _ = model.parse_losses(losses)
    loss.backward()


def saved_activation_bytes(model: nn.Module, batch: dict) -> int:
    """Bytes of the distinct tensors autograd saves during one training step (the
    parameters themselves excluded)."""
    params = {param.untyped_storage().data_ptr() for param in model.parameters()}
    seen: Dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        training_step(model, batch)
    return sum(seen.values())


def measure(config: str, batch_size=None) -> dict:
    cfg = read_config(config)
    torch.manual_seed(0)
    model, batch, unit = build_with_batch(cfg)
    model.train()
    batch_size = batch_size or int(cfg.get('train_dataloader', {}).get('batch_size', 1))
    figures = dict(config=config, batch=batch_size, samples=unit, **count_parameters(model))
    figures['step_flops'] = flops_of(lambda: training_step(model, batch)) * batch_size
    model.zero_grad(set_to_none=True)
    figures['forward_flops'] = flops_of(lambda: network_forward(model, batch)) * batch_size
    activations = saved_activation_bytes(model, batch) * batch_size
    model.zero_grad(set_to_none=True)
    figures.update(weight_bytes=4 * figures['params'],
                   optimizer_bytes=12 * figures['trainable'],  # grads + AdamW moments
                   activation_bytes=activations)
    return figures


def table(rows) -> str:
    gib = 2.0**30
    lines = ['| config | batch | params | non-emb. | TFLOPs / step | step / forward | '
             'weights GiB | grads + AdamW GiB | activations GiB |',
             '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        lines.append(
            f"| {osp.basename(row['config'])} | {row['batch']} | {row['params'] / 1e6:.1f}M | "
            f"{row['non_embedding'] / 1e6:.1f}M | {row['step_flops'] / 1e12:.3f} | "
            f"{row['step_flops'] / row['forward_flops']:.1f}x | "
            f"{row['weight_bytes'] / gib:.2f} | {row['optimizer_bytes'] / gib:.2f} | "
            f"{row['activation_bytes'] / gib:.2f} |")
    return '\n'.join(lines)


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

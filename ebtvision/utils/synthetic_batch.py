"""Synthetic training batches of the right shapes for a config's model (no dataset files).

``synthetic_batch(model, cfg, batch_size, kind)`` returns what a dataloader hands to
``model.train_step`` (``dict(inputs=..., data_samples=...)``; the model's data
preprocessor accepts it as it accepts a collated batch), with random values:

* denoisers (``kind='images'``): float images in ``[-1, 1]`` of the backbone's size;
* next-frame models: clips of the dataset's ``clip_len`` frames, either ``'pixels'``
  (uint8 frames of the size the encoder turns into the model's latents, as
  ``PackVideoInputs`` makes them; the frozen encoder runs in the step) or ``'latents'``
  (float latents, as the latent cache gives them);
* language models (``kind='tokens'``): ``seq_len + 1`` token ids of the vocabulary.

Used by ``tools/benchmark/gpu_check.py`` and ``tools/analysis/model_size.py`` (and through
it ``tools/analysis/scaling.py``), so that the per-task shapes live in one place.
"""
from typing import Optional, Tuple

import torch
from torch import nn

#: Input kinds each task accepts, the first being its default.
KINDS = {'denoise': ('images', ), 'next_frame': ('pixels', 'latents'), 'language': ('tokens', )}


def task_of(model: nn.Module) -> str:
    """``'denoise'``, ``'next_frame'`` or ``'language'``."""
    from ebtvision.models import BaseDenoiser, LanguageModel, NextFramePredictor
    for cls, task in ((BaseDenoiser, 'denoise'), (NextFramePredictor, 'next_frame'),
                      (LanguageModel, 'language')):
        if isinstance(model, cls):
            return task
    raise ValueError(f'{type(model).__name__} is not a denoiser, next-frame or language model')


def _train_dataset(cfg) -> dict:
    return cfg.get('train_dataloader', {}).get('dataset', {}) or {}


def clip_len(cfg) -> int:
    """Frames per training clip of a next-frame config (17 if its dataset says nothing)."""
    return int(_train_dataset(cfg).get('clip_len', 17))


def frame_size(model: nn.Module) -> Tuple[int, int]:
    """(H, W) of the frames whose encoding gives the model's latents."""
    if model.encoder is None:
        raise ValueError('pixel clips need an encoder; this model has none (use latents)')
    _, height, width = model.head.latent_shape
    factor = model.encoder.downsample_factor
    return height * factor, width * factor


def synthetic_batch(model: nn.Module, cfg, batch_size: int, kind: Optional[str] = None,
                    device='cpu', seed: int = 0) -> dict:
    """A random training batch of ``batch_size`` samples for ``model`` (built from ``cfg``).

    Args:
        model: The config's model (its sizes are read from it).
        cfg: The config (clip length and sequence length come from its train dataset).
        batch_size: Samples in the batch.
        kind: One of :data:`KINDS` of the model's task; None for the task's first.
        device: Where the tensors are made.
        seed: Seed of the random values.
    """
    task = task_of(model)
    kind = kind or KINDS[task][0]
    if kind not in KINDS[task]:
        raise ValueError(f'a {task} model takes {" or ".join(KINDS[task])} inputs, not {kind!r}')
    generator = torch.Generator(device=device).manual_seed(seed)
    if task == 'denoise':
        from ebtvision.structures import DenoiseDataSample
        size = model.backbone.img_size
        images = torch.rand(batch_size, 3, size, size, generator=generator, device=device)
        return dict(inputs=images * 2 - 1,
                    data_samples=[DenoiseDataSample(metainfo=dict(sample_idx=index))
                                  for index in range(batch_size)])
    if task == 'next_frame':
        from ebtvision.structures import VideoDataSample
        length = clip_len(cfg)
        if kind == 'pixels':
            inputs = torch.randint(0, 256, (batch_size, length, 3, *frame_size(model)),
                                   generator=generator, device=device, dtype=torch.uint8)
        else:
            inputs = torch.randn(batch_size, length, *model.head.latent_shape,
                                 generator=generator, device=device)
        samples = [VideoDataSample(metainfo=dict(input_kind=kind, num_padded=0,
                                                 sample_idx=index))
                   for index in range(batch_size)]
        return dict(inputs=inputs, data_samples=samples)
    length = int(_train_dataset(cfg).get('seq_len', 64)) + 1
    ids = torch.randint(0, model.head.vocab_size, (batch_size, length), generator=generator,
                        device=device)
    return dict(inputs=ids)

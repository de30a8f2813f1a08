"""Gradient accumulation (``optim_wrapper.accumulative_counts``, as the reference's video
jobs use) gives the update of the larger batch, through an EBT's thinking loop and its
second-order gradients, with the wrappers tools/train.py builds (clipping, AdamW, the
learnable step size's own parameter group)."""
import pytest
import torch
from conftest import TINY_IMAGE_BACKBONE
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper, build_optim_wrapper

from ebtvision.engine import FiniteCheckOptimWrapper
from ebtvision.models import BaseDenoiser, EBTDenoiser
from ebtvision.utils import register_all_modules

BATCH, UPDATES = 3, 2


@pytest.fixture(autouse=True)
def _message_hub(request):
    # The finite-checking wrapper reads the iteration from the current message hub.
    MessageHub.get_instance(f'accumulation_{request.node.name}')


def tiny_ebt() -> EBTDenoiser:
    """A float64 EBT denoiser with 2 thinking steps (seeded, perturbed off adaLN-Zero)."""
    register_all_modules(init_default_scope=False)
    torch.manual_seed(0)
    # MMEngine's plain preprocessor keeps float64 (ours casts to float32).
    model = EBTDenoiser(backbone=dict(type='BidirectionalEBT', **TINY_IMAGE_BACKBONE),
                        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=5.0),
                        data_preprocessor=dict(type='BaseDataPreprocessor')).double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.2 * torch.randn_like(param))
    return model


def train(wrapper_type: type, chunks: int):
    """``UPDATES`` optimizer updates of ``2 * BATCH`` images each, fed as ``chunks``
    micro-batches per update with ``accumulative_counts=chunks``; returns the model."""
    model = tiny_ebt()
    wrapper = build_optim_wrapper(model, dict(
        type=wrapper_type, constructor='ThinkerAlphaOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-2, weight_decay=0.01),
        clip_grad=dict(max_norm=0.5), accumulative_counts=chunks))
    iterations = UPDATES * chunks
    wrapper.initialize_count_status(model, 0, iterations)  # as MMEngine's train loops do
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(UPDATES * 2 * BATCH, 3, 16, 16, generator=generator,
                        dtype=torch.float64) * 2 - 1
    noise = torch.randn(images.shape, generator=generator, dtype=torch.float64)
    size = 2 * BATCH // chunks
    for index in range(iterations):
        rows = slice(index * size, (index + 1) * size)
        # The same noise for the same image however the batch is split.
        model.add_noise = lambda x0, t, _=None, rows=rows: BaseDenoiser.add_noise(
            model, x0, t, noise[rows])
        model.train_step(dict(inputs=images[rows], data_samples=None), wrapper)
    return model


@pytest.mark.parametrize('wrapper_type', [OptimWrapper, FiniteCheckOptimWrapper])
def test_two_accumulated_steps_equal_one_step_of_the_double_batch(wrapper_type):
    whole = train(wrapper_type, chunks=1)
    accumulated = train(wrapper_type, chunks=2)
    start = dict(tiny_ebt().named_parameters())
    moved = 0
    for (name, expected), (_, actual) in zip(whole.named_parameters(),
                                             accumulated.named_parameters()):
        torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12,
                                   msg=lambda message, name=name: f'{name}: {message}')
        moved += not torch.equal(expected, start[name])
    assert moved == len(start)  # every parameter, thinker.alpha included, was updated

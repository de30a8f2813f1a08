"""Activation checkpointing (``with_cp``) through the thinking loop's second-order graph:
the same loss and gradients, less memory."""
import os.path as osp
import sys

import pytest
import torch

from ebtvision.models import EBTDenoiser, EBTNextFrame
from tests.conftest import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools', 'benchmark'))
from train_speed import profiled_peak_bytes  # noqa: E402


def image_ebt(with_cp, depth=2, width=32, size=16):
    torch.manual_seed(0)
    model = EBTDenoiser(
        backbone=dict(type='BidirectionalEBT', arch=dict(depth=depth, num_heads=2,
                                                         embed_dims=width),
                      img_size=size, patch_size=4, with_cp=with_cp),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=10.0))
    with torch.no_grad():  # adaLN-Zero: give every block something to differentiate
        for param in model.parameters():
            if not param.any():
                param.normal_(0.0, 0.02)
    return model


def video_ebt(with_cp):
    torch.manual_seed(0)
    return EBTNextFrame(
        backbone=dict(type='CausalEBT', arch=dict(depth=2, num_heads=2, embed_dims=16),
                      max_steps=2, with_cp=with_cp),
        head=dict(type='NextFrameHead'), latent_shape=(4, 2, 2),
        thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=10.0))


def loss_and_grads(model, inputs, **kwargs):
    torch.manual_seed(1)  # the same noise / candidate starts on both runs
    model.zero_grad(set_to_none=True)
    loss = model.loss(inputs, **kwargs)['loss']
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize('build, inputs', [
    (image_ebt, lambda: torch.rand(2, 3, 16, 16) * 2 - 1),
    (video_ebt, lambda: torch.randn(2, 4, 4, 2, 2)),
])
def test_same_loss_and_gradients_with_and_without(build, inputs):
    from ebtvision.structures import VideoDataSample
    batch = inputs()
    kwargs = {}
    if build is video_ebt:
        samples = [VideoDataSample() for _ in range(2)]
        for sample in samples:
            sample.set_metainfo(dict(input_kind='latents'))
        kwargs = dict(data_samples=samples)
    plain_loss, plain = loss_and_grads(build(False), batch, **kwargs)
    cp_loss, checkpointed = loss_and_grads(build(True), batch, **kwargs)
    assert torch.equal(plain_loss, cp_loss)
    assert plain.keys() == checkpointed.keys() and len(plain) > 10
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-6, atol=1e-9, msg=name)


def test_checkpointing_lowers_the_peak_memory_of_a_training_step():
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    peaks = {}
    for with_cp in (False, True):
        model = image_ebt(with_cp, depth=4, width=64, size=32)
        model.loss(images)['loss'].backward()  # warm-up: gradient buffers exist
        peaks[with_cp] = profiled_peak_bytes(lambda: model.loss(images)['loss'].backward())
    assert peaks[True] < 0.9 * peaks[False], peaks

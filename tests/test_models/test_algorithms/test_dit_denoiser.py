"""DiT baseline denoiser as an MMEngine model: the loss and the reverse process."""
import torch
from conftest import TINY_IMAGE_BACKBONE as BACKBONE
from conftest import denoise_samples as samples

from ebtvision.models import DiTDenoiser


def make_dit(**kwargs):
    torch.manual_seed(0)
    return DiTDenoiser(backbone=dict(type='DiT', **BACKBONE), **kwargs)


def test_dit_loss_and_reverse_steps():
    model = make_dit(test_cfg=dict(num_steps=4, method='ddpm'))
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    loss = model(x, mode='loss')['loss']
    loss.backward()
    calls = []
    original = model.backbone.forward
    model.backbone.forward = lambda x, t: calls.append(int(t[0])) or original(x, t)
    with torch.no_grad():
        out = model.eval()(x, samples(4), mode='predict')
    assert calls == [99, 66, 33, 0, 199, 133, 66, 0]
    assert out[0].pred_imgs['0.2'].shape == (3, 16, 16)


def test_dit_can_start_blind_from_the_training_level():
    model = make_dit(test_cfg=dict(num_steps=2, start_from='train')).eval()
    calls = []
    original = model.backbone.forward
    model.backbone.forward = lambda x, t: calls.append(int(t[0])) or original(x, t)
    with torch.no_grad():
        model(torch.zeros(1, 3, 16, 16), samples(1), mode='predict')
    assert calls == [99, 0, 99, 0]

"""EBT denoiser and DiT baseline as MMEngine models."""
import pytest
import torch

from ebtvision.models import DiTDenoiser, EBTDenoiser
from ebtvision.structures import DenoiseDataSample

BACKBONE = dict(arch=dict(depth=1, num_heads=2, embed_dims=16), img_size=16, patch_size=8)


def make_ebt(**kwargs):
    torch.manual_seed(0)
    return EBTDenoiser(backbone=dict(type='BidirectionalEBT', **BACKBONE),
                       thinker=dict(type='EnergyMinimizer', num_steps=2, alpha=2.0), **kwargs)


def make_dit(**kwargs):
    torch.manual_seed(0)
    return DiTDenoiser(backbone=dict(type='DiT', **BACKBONE), **kwargs)


def samples(n):
    return [DenoiseDataSample(metainfo=dict(sample_idx=i)) for i in range(n)]


@pytest.mark.parametrize('loss_type', ['smooth_l1', 'mse'])
def test_ebt_loss_trains_backbone_and_alpha(loss_type):
    model = make_ebt(loss_type=loss_type)
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    losses = model(x, samples(4), mode='loss')
    assert set(losses) >= {'loss', 'final_step_mse', 'noisy_mse', 'alpha', 'energy_drop'}
    losses['loss'].backward()
    assert model.thinker.alpha.grad is not None
    assert model.backbone.final_layer.linear.weight.grad.abs().sum() > 0


def test_ebt_training_lowers_the_loss():
    model = make_ebt()
    model.thinker.alpha.data.fill_(20.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    first = None
    for _ in range(30):
        torch.manual_seed(1)  # same noise each step: a fixed regression problem
        loss = model(x, mode='loss')['loss']
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.7 * first


def test_predict_is_deterministic_and_fills_samples():
    model = make_ebt(eval_noise_levels=[0.1, 0.3]).eval()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        first = model(x, samples(2), mode='predict')
        second = model(x, samples(2), mode='predict')
    assert set(first[0].pred_imgs) == {'0.1', '0.3'}
    for key in ('0.1', '0.3'):
        torch.testing.assert_close(first[1].noisy_imgs[key], second[1].noisy_imgs[key])
        torch.testing.assert_close(first[1].pred_imgs[key], second[1].pred_imgs[key])
        assert first[0].energies[key].shape == (3, )  # 2 steps + the final candidate
    # noisier level, larger error of the noisy input
    err = {k: (first[0].noisy_imgs[k] - x[0]).pow(2).mean() for k in ('0.1', '0.3')}
    assert err['0.3'] > err['0.1']
    # different samples get different noise
    assert not torch.allclose(first[0].noisy_imgs['0.1'] - x[0], first[1].noisy_imgs['0.1'] - x[1])


def test_thinking_longer_at_test_time():
    model = make_ebt(test_cfg=dict(num_steps=5)).eval()
    trajectory = model.think(torch.zeros(1, 3, 16, 16))
    assert len(trajectory.candidates) == 5


def test_tensor_mode_and_unknown_mode():
    model = make_ebt().eval()
    noisy = torch.rand(2, 3, 16, 16)
    assert model(noisy, mode='tensor').shape == noisy.shape
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(noisy, mode='features')


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


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match='loss_type'):
        make_ebt(loss_type='l3')
    with pytest.raises(ValueError, match='noise_level'):
        make_ebt(eval_noise_levels=[1.5])

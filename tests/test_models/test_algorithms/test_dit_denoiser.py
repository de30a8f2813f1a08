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


def recorded_timesteps(model):
    calls = []
    original = model.backbone.forward
    model.backbone.forward = lambda x, t: calls.append(int(t[0])) or original(x, t)
    return calls


def test_reference_protocol_starts_at_a_trained_timestep_and_recurses():
    # eval levels 0.1 (training) and 0.2; 4 DDIM steps, 2 more runs above the training level
    model = make_dit(test_cfg=dict(num_steps=4, respace=True, recurse=2)).eval()
    calls = recorded_timesteps(model)
    with torch.no_grad():
        model(torch.zeros(1, 3, 16, 16), samples(1), mode='predict')
    assert calls == [99, 66, 33, 0] + [99, 66, 33, 0] * 3
    assert max(calls) < model.t_max  # never a timestep the DiT did not train on
    schedule, t_start = model.reverse_schedule(0.2)
    assert (schedule.num_timesteps, t_start) == (500, 99)
    # ... whose coefficients are those of the real level (within the schedule's rounding)
    real = float(model.schedule.alphas_cumprod[model.schedule.timestep(0.2)])
    assert abs(float(schedule.alphas_cumprod[t_start]) - real) < 1e-3


def test_reference_protocol_is_the_direct_one_at_the_training_level():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    direct = make_dit(test_cfg=dict(num_steps=5)).eval()
    reference = make_dit(test_cfg=dict(num_steps=5, respace=True, recurse=2)).eval()
    noisy, _ = direct.add_noise(x, direct.train_timestep)
    with torch.no_grad():
        torch.testing.assert_close(reference.denoise(noisy, 0.1)[0],
                                   direct.denoise(noisy, 0.1)[0], rtol=0, atol=0)
        # above it the two protocols differ
        assert not torch.equal(reference.denoise(noisy, 0.2)[0], direct.denoise(noisy, 0.2)[0])

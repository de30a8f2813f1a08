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


def learned_sigma_dit(**kwargs):
    model = DiTDenoiser(backbone=dict(type='DiT', learn_sigma=True, **BACKBONE), **kwargs)
    torch.manual_seed(0)
    for param in model.backbone.parameters():  # leave adaLN-Zero's flat start
        torch.nn.init.normal_(param, std=0.05)
    return model


def test_learned_sigma_adds_the_bound_which_trains_the_variance_only():
    model = learned_sigma_dit()
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    seen = {}
    backbone_forward, add_noise = model.backbone.forward, model.add_noise

    def forward(noisy, t):
        seen['t'], seen['output'] = t, backbone_forward(noisy, t)
        seen['output'].retain_grad()
        return seen['output']

    def noised(x0, t):
        seen['noisy'], seen['noise'] = add_noise(x0, t)
        return seen['noisy'], seen['noise']

    model.backbone.forward, model.add_noise = forward, noised
    losses = model(x, mode='loss')
    assert torch.isfinite(losses['loss']) and losses['vlb'] > 0
    torch.testing.assert_close(losses['loss'].detach(), losses['mse'] + losses['vlb'])
    eps, values = seen['output'].detach().chunk(2, dim=1)
    torch.testing.assert_close(losses['vlb'], model.schedule.vlb_bits(
        x, seen['noisy'], seen['t'], eps, values).mean())
    losses['loss'].backward()
    grad_eps, grad_values = seen['output'].grad.chunk(2, dim=1)
    # the noise half gets the MSE's gradient alone, the variance half the bound's
    torch.testing.assert_close(grad_eps, 2 * (eps - seen['noise']) / eps.numel())
    assert grad_values.abs().sum() > 0


def test_learned_sigma_reverse_runs_on_the_noise_half():
    model = learned_sigma_dit(test_cfg=dict(num_steps=4)).eval()
    noisy = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        denoised = model.denoise(noisy, 0.2)[0]
        schedule, t_start = model.reverse_schedule(0.2)
        expected = schedule.reverse(lambda x, t: model.backbone(x, t)[:, :3], noisy, t_start, 4)
    torch.testing.assert_close(denoised, expected.clamp(-1, 1), rtol=0, atol=0)


def test_evaluation_noise_on_the_stretched_schedule():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    direct = make_dit()
    stretched = make_dit(stretch_eval_noise=True, test_cfg=dict(num_steps=2))
    noise = torch.randn_like(x)
    assert torch.equal(stretched.noise_for_eval(x, 0.1, noise),
                       direct.noise_for_eval(x, 0.1, noise))  # the training level: the same
    schedule, t = stretched.stretched_schedule(0.2)
    assert (schedule.num_timesteps, t) == (500, 99)
    abar = float(schedule.alphas_cumprod[99])
    torch.testing.assert_close(stretched.noise_for_eval(x, 0.2, noise),
                               abar**0.5 * x + (1 - abar)**0.5 * noise)
    assert not torch.allclose(direct.noise_for_eval(x, 0.2, noise),
                              stretched.noise_for_eval(x, 0.2, noise))
    # and evaluation uses it
    with torch.no_grad():
        sample = stretched.eval()(x[:1], samples(1), mode='predict')[0]
    level_noise = stretched.eval_noise(x[:1], samples(1), 1)
    torch.testing.assert_close(sample.noisy_imgs['0.2'],
                               stretched.noise_for_eval(x[:1], 0.2, level_noise)[0])


def test_num_passes_counts_the_backbone_calls_of_denoise():
    noisy = torch.zeros(1, 3, 16, 16)
    protocols = [dict(num_steps=4), dict(num_steps=4, start_from='train'),
                 dict(num_steps=4, respace=True, recurse=2), dict(num_steps=3, recurse=1)]
    for test_cfg in protocols:
        model = make_dit(test_cfg=test_cfg).eval()
        calls = []  # a counting stand-in for the network: up to 300 calls a case
        model.backbone.forward = lambda x, t: calls.append(int(t[0])) or torch.zeros_like(x)
        # 500 steps asked: capped at the timesteps there are (t_start + 1) per run
        for level, num_steps in [(0.1, None), (0.2, None), (0.3, 2), (0.2, 500), (0.1, 500)]:
            calls.clear()
            model.denoise(noisy, level, num_steps)
            assert model.num_passes(level, num_steps) == len(calls), (test_cfg, level)
    # the reference's job: 100 steps, 3 runs above the training level
    model = make_dit(test_cfg=dict(num_steps=100, respace=True, recurse=2))
    assert (model.num_passes(0.1), model.num_passes(0.2)) == (100, 300)

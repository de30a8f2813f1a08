"""DDPM schedule values, noise levels and the reverse processes."""
import math

import pytest
import torch

from ebtvision.models import DDPMSchedule


def test_linear_schedule_values():
    schedule = DDPMSchedule()
    assert schedule.betas[0].item() == pytest.approx(1e-4)
    assert schedule.betas[-1].item() == pytest.approx(2e-2)
    assert schedule.alphas_cumprod[0].item() == pytest.approx(1 - 1e-4)
    expected = math.prod(1 - (1e-4 + (2e-2 - 1e-4) * i / 999) for i in range(100))
    assert schedule.alphas_cumprod[99].item() == pytest.approx(expected, rel=1e-10)


def test_noise_levels_map_to_timesteps():
    schedule = DDPMSchedule()
    assert schedule.timestep(0.1) == 99 and schedule.timestep(0.2) == 199
    assert schedule.timestep(1.0) == 999
    with pytest.raises(ValueError):
        schedule.timestep(0.0)


def test_q_sample_formula():
    schedule = DDPMSchedule()
    x0, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    abar = schedule.alphas_cumprod[99].item()
    expected = math.sqrt(abar) * x0 + math.sqrt(1 - abar) * noise
    torch.testing.assert_close(schedule.q_sample(x0, torch.tensor([99, 99]), noise), expected)


@pytest.mark.parametrize('method', ['ddim', 'ddpm'])
@pytest.mark.parametrize('num_steps', [1, 7, 100])
def test_reverse_with_an_oracle_recovers_the_image(method, num_steps):
    schedule = DDPMSchedule()
    x0 = torch.rand(2, 3, 8, 8) * 1.6 - 0.8
    x_t = schedule.q_sample(x0, torch.tensor([99, 99]), torch.randn_like(x0))

    def oracle(x, t):  # the exact noise of x relative to x0
        abar = schedule.abar(t, x)
        return (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    out = schedule.reverse(oracle, x_t, 99, num_steps, method=method,
                           generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


def test_reverse_counts_network_evaluations():
    schedule = DDPMSchedule()
    calls = []

    def eps(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    schedule.reverse(eps, torch.zeros(1, 1, 2, 2), 99, 10)
    assert len(calls) == 10 and calls[0] == 99 and calls[-1] == 0
    with pytest.raises(ValueError):
        schedule.reverse(eps, torch.zeros(1, 1, 2, 2), 9, 20)


def test_a_stretched_schedule_keeps_the_noise_path():
    base = DDPMSchedule()
    same = base.stretched(1000)
    torch.testing.assert_close(same.alphas_cumprod, base.alphas_cumprod)
    half = base.stretched(500)  # betas doubled: step t of 500 ~ step 2t + 1 of 1000
    assert half.num_timesteps == 500
    torch.testing.assert_close(half.betas, torch.linspace(2e-4, 4e-2, 500, dtype=torch.float64))
    for t in (49, 99, 249):
        assert abs(float(half.alphas_cumprod[t]) - float(base.alphas_cumprod[2 * t + 1])) < 2e-3

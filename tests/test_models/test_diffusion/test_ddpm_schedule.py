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


def test_posterior_is_the_product_of_the_two_gaussians():
    # q(x_{t-1} | x_t, x0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x0): its
    # precision is the sum of theirs, its mean the precision-weighted one.
    schedule = DDPMSchedule()
    x0, x_t = torch.randn(3, 2, 4, 4, dtype=torch.float64), torch.randn(3, 2, 4, 4,
                                                                      dtype=torch.float64)
    t = torch.tensor([1, 50, 99])
    mean, log_var = schedule.posterior(x0, x_t, t)
    beta = schedule.betas[t].reshape(-1, 1, 1, 1)
    abar_prev = schedule.alphas_cumprod[t - 1].reshape(-1, 1, 1, 1)
    precision = (1 - beta) / beta + 1 / (1 - abar_prev)
    expected = ((1 - beta).sqrt() * x_t / beta + abar_prev.sqrt() * x0 / (1 - abar_prev)) \
        / precision
    torch.testing.assert_close(mean, expected)
    torch.testing.assert_close(log_var, (1 / precision).log().expand_as(x_t))
    # at t = 0 the mean is x0 and the (zero) variance's log is taken at t = 1
    mean0, log_var0 = schedule.posterior(x0, x_t, torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(mean0, x0)
    torch.testing.assert_close(log_var0, schedule.posterior(x0, x_t, torch.ones(3).long())[1])


def test_learned_log_variance_spans_posterior_to_beta():
    schedule = DDPMSchedule()
    t = torch.tensor([3, 70])
    low = schedule.posterior_log_variance[t].reshape(-1, 1, 1, 1)
    high = schedule.betas[t].log().reshape(-1, 1, 1, 1)
    ones = torch.ones(2, 1, 2, 2, dtype=torch.float64)
    torch.testing.assert_close(schedule.learned_log_variance(-ones, t), low.expand_as(ones))
    torch.testing.assert_close(schedule.learned_log_variance(ones, t), high.expand_as(ones))
    torch.testing.assert_close(schedule.learned_log_variance(0 * ones, t),
                               ((low + high) / 2).expand_as(ones))


def test_normal_kl_against_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    from ebtvision.models.diffusion import normal_kl
    mean1, mean2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    log_var1, log_var2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    expected = kl_divergence(Normal(mean1, (0.5 * log_var1).exp()),
                             Normal(mean2, (0.5 * log_var2).exp()))
    torch.testing.assert_close(normal_kl(mean1, log_var1, mean2, log_var2), expected)
    assert normal_kl(mean1, log_var1, mean1, log_var1).abs().max() < 1e-12


def test_discretized_likelihood_is_a_distribution_over_256_levels():
    from ebtvision.models.diffusion import discretized_gaussian_log_likelihood as loglik
    levels = torch.linspace(-1, 1, 256, dtype=torch.float64)
    for mean, log_scale in ((0.3, -2.0), (-0.9, -4.0), (0.0, 0.5)):
        log_p = loglik(levels, torch.full_like(levels, mean), torch.full_like(levels, log_scale))
        assert abs(log_p.exp().sum().item() - 1) < 1e-9
        # the bin mass of the level nearest the mean, against the exact normal CDF (the
        # tanh form is within 1e-4 of it there)
        std, index = math.exp(log_scale), int((levels - mean).abs().argmin())
        x = levels[index].item()
        exact = torch.special.ndtr(torch.tensor([(x - mean + 1 / 255) / std,
                                                 (x - mean - 1 / 255) / std],
                                                dtype=torch.float64))
        assert log_p[index].exp().item() == pytest.approx((exact[0] - exact[1]).item(),
                                                          rel=1e-3)


def test_vlb_terms_kl_for_t_above_0_and_likelihood_at_0():
    schedule = DDPMSchedule()
    generator = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, 256, (4, 3, 4, 4), generator=generator).double() / 127.5 - 1
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    t = torch.tensor([0, 1, 40, 99])
    x_t = schedule.q_sample(x0, t, noise)
    posterior_var = -torch.ones_like(x0)
    # the true noise and the posterior's variance: the model is the posterior, KL 0
    bits = schedule.vlb_bits(x0, x_t, t, noise, posterior_var)
    assert bits[1:].abs().max() < 1e-9
    # at t = 0 the term is -log2 of the bin's mass under N(x0, posterior var at t=1)
    std = schedule.posterior_log_variance[1].mul(0.5).exp()
    inner = (x0[0] > -0.999) & (x0[0] < 0.999)
    mass = torch.special.ndtr(1 / 255 / std) - torch.special.ndtr(-1 / 255 / std)
    edge = torch.special.ndtr(1 / 255 / std)
    expected = torch.where(inner, -mass.log(), -edge.log()).mean() / math.log(2)
    assert bits[0].item() == pytest.approx(expected.item(), rel=1e-3)
    # a wrong noise shifts the mean: KL of equal variances = shift^2 / (2 var), in bits
    delta = 0.1
    shifted = schedule.vlb_bits(x0, x_t, t, noise + delta, posterior_var)
    abar = schedule.alphas_cumprod[t]
    shift = schedule.posterior_coef_x0[t] * (1 - abar).sqrt() / abar.sqrt() * delta
    kl = shift**2 / (2 * schedule.posterior_log_variance[t].exp()) / math.log(2)
    torch.testing.assert_close(shifted[1:], kl[1:])


def test_reverse_with_learned_variance():
    schedule = DDPMSchedule()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    eps = torch.randn_like(x)

    def with_variance(values):
        return lambda x, t: torch.cat([eps, values.expand_as(eps)], dim=1)

    # DDIM uses the noise half only
    plain = schedule.reverse(lambda x, t: eps, x, 60, 5)
    learned = schedule.reverse(with_variance(torch.tensor(0.7)), x, 60, 5,
                               learned_variance=True)
    torch.testing.assert_close(learned, plain, rtol=0, atol=0)

    # DDPM: -1 is the posterior variance (the fixed one); +1 is beta. From t = 1 in two
    # steps, unclipped and with a zero noise prediction, the result is x_0 / sqrt(abar_0)
    # with x_0 = coef_x0 x0_hat + coef_xt x + std * noise.
    def ddpm(fn, learned):
        return schedule.reverse(fn, x, 1, 2, method='ddpm', clip_x0=False,
                                generator=torch.Generator().manual_seed(3),
                                learned_variance=learned)

    zero = torch.zeros_like(x)
    fixed = ddpm(lambda x, t: zero, False)
    torch.testing.assert_close(ddpm(lambda x, t: torch.cat([zero, -torch.ones_like(x)], 1), True),
                               fixed)
    beta_var = ddpm(lambda x, t: torch.cat([zero, torch.ones_like(x)], 1), True)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype)
    abar0, abar1 = schedule.alphas_cumprod[:2].tolist()
    beta = 1 - abar1 / abar0
    x0_hat = x / abar1**0.5
    x_prev = abar0**0.5 * beta / (1 - abar1) * x0_hat \
        + (1 - beta)**0.5 * (1 - abar0) / (1 - abar1) * x + beta**0.5 * noise
    torch.testing.assert_close(beta_var, x_prev / abar0**0.5)
    assert not torch.allclose(beta_var, fixed)

"""DDPM linear noise schedule, the paper's noise levels, the reverse processes and the
variational bound a DiT with learned variances trains on."""
import math
from typing import Callable, Optional, Tuple

import torch

from ebtvision.registry import MODELS


@MODELS.register_module()
class DDPMSchedule:
    """Linear beta schedule ``beta_1..beta_T`` from ``beta_start`` to ``beta_end``.

    Timesteps are 0-indexed: ``t`` in ``[0, T)``; ``abar[t] = prod_{s<=t} (1 - beta_s)``.
    A *noise level* ``s`` is a fraction of the schedule: ``t = round(T * s) - 1``, so 0.1 is
    t = 99 and 0.2 is t = 199 of 1000 (docs/method.md#image-denoising).
    """

    def __init__(self, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 2e-2) -> None:
        self.num_timesteps = num_timesteps
        self.beta_start, self.beta_end = beta_start, beta_end
        self.betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        # q(x_{t-1} | x_t, x0): mean = coef_x0 x0 + coef_xt x_t and its variance, whose
        # log (0 at t = 0) is taken at t = 1 there so that it stays finite.
        abar, abar_prev = self.alphas_cumprod, torch.cat([
            torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.posterior_coef_x0 = self.betas * abar_prev.sqrt() / (1 - abar)
        self.posterior_coef_xt = (1 - abar_prev) * (1 - self.betas).sqrt() / (1 - abar)
        variance = self.betas * (1 - abar_prev) / (1 - abar)
        self.posterior_log_variance = torch.cat([variance[1:2], variance[1:]]).log() \
            if num_timesteps > 1 else variance.log()

    def stretched(self, num_timesteps: int) -> 'DDPMSchedule':
        """The same noise path over ``num_timesteps`` steps: the betas scale by
        ``self.num_timesteps / num_timesteps``, so ``abar`` at a fraction of the schedule
        stays about the same (the reference implementation's linear schedule for any
        number of diffusion steps)."""
        scale = self.num_timesteps / num_timesteps
        return DDPMSchedule(num_timesteps, self.beta_start * scale, self.beta_end * scale)

    def timestep(self, noise_level: float) -> int:
        """Timestep of a noise level (fraction of the schedule)."""
        if not 0 < noise_level <= 1:
            raise ValueError(f'noise_level must be in (0, 1], got {noise_level}')
        return max(int(round(self.num_timesteps * noise_level)) - 1, 0)

    def abar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``abar[t]`` per sample, shaped to broadcast against ``like``."""
        return self._per_sample(self.alphas_cumprod, t, like)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``."""
        abar = self.abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The clean image implied by noise ``eps`` in ``x_t``."""
        abar = self.abar(t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def _per_sample(self, values: torch.Tensor, t: torch.Tensor,
                    like: torch.Tensor) -> torch.Tensor:
        """``values[t]`` per sample, shaped to broadcast against ``like``."""
        t = torch.as_tensor(t, device='cpu').long().reshape(-1)
        out = values[t].to(device=like.device, dtype=like.dtype)
        return out.reshape(-1, *([1] * (like.dim() - 1)))

    def posterior(self, x0: torch.Tensor, x_t: torch.Tensor,
                  t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of ``q(x_{t-1} | x_t, x0)`` (see ``__init__`` for the
        log-variance at ``t = 0``)."""
        mean = self._per_sample(self.posterior_coef_x0, t, x_t) * x0 \
            + self._per_sample(self.posterior_coef_xt, t, x_t) * x_t
        return mean, self._per_sample(self.posterior_log_variance, t, x_t).expand_as(x_t)

    def learned_log_variance(self, values: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Log-variance of the reverse step at ``t`` from a network output in ``[-1, 1]``.

        -1 is the posterior's variance, +1 is ``beta_t``, and values between interpolate
        the logs (the learned range of Nichol & Dhariwal's improved DDPM).
        """
        return _mix_log_variance(values, self._per_sample(self.posterior_log_variance, t, values),
                                 self._per_sample(self.betas.log(), t, values))

    def vlb_bits(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                 eps: torch.Tensor, variance_values: torch.Tensor) -> torch.Tensor:
        """One term of the variational bound per sample, in bits per dimension.

        The model's reverse step has the posterior mean of the clean image implied by
        ``eps`` and the learned log-variance of ``variance_values``. For ``t > 0`` the
        term is the KL from the true posterior to it; at ``t = 0`` it is the negative
        log-likelihood of ``x0`` (in [-1, 1], 256 levels) under it.
        """
        t = torch.as_tensor(t, device=x_t.device).long().reshape(-1)
        true_mean, true_log_var = self.posterior(x0, x_t, t)
        mean, _ = self.posterior(self.predict_x0(x_t, t, eps), x_t, t)
        log_var = self.learned_log_variance(variance_values, t)
        kl = normal_kl(true_mean, true_log_var, mean, log_var)
        nll = -discretized_gaussian_log_likelihood(x0, mean, 0.5 * log_var)
        first = (t == 0).reshape(-1, *([1] * (x0.dim() - 1)))
        return torch.where(first, nll, kl).flatten(1).mean(1) / math.log(2.0)

    def noise_std_ratio(self, t: int) -> float:
        """``sqrt((1 - abar) / abar)``: the noise std relative to the signal at ``t``."""
        abar = float(self.alphas_cumprod[t])
        return ((1 - abar) / abar)**0.5

    def reverse(self,
                eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                x_t: torch.Tensor,
                t_start: int,
                num_steps: int,
                method: str = 'ddim',
                clip_x0: bool = True,
                generator: Optional[torch.Generator] = None,
                learned_variance: bool = False) -> torch.Tensor:
        """Run the reverse process from ``x_t`` at ``t_start`` down to a clean estimate.

        ``num_steps`` evenly spaced timesteps of ``[0, t_start]`` are visited (respacing),
        one network evaluation each.

        Args:
            eps_fn: Predicts the noise from ``(x, t)``; ``t`` is a (B,) long tensor.
            method: ``'ddim'`` (deterministic, eta = 0) or ``'ddpm'`` (ancestral sampling).
            clip_x0: Clamp the predicted clean image to [-1, 1] at each step.
            generator: Random generator for the DDPM noise.
            learned_variance: ``eps_fn`` returns twice the channels: the noise, then
                values in [-1, 1] choosing each DDPM step's log-variance between the
                posterior's and ``beta`` (see :meth:`learned_log_variance`; over skipped
                steps, of the step actually taken). DDIM uses the noise half only.
        """
        if method not in ('ddim', 'ddpm'):
            raise ValueError(f"method must be 'ddim' or 'ddpm', got {method!r}")
        if not 1 <= num_steps <= t_start + 1:
            raise ValueError(f'num_steps must be in [1, {t_start + 1}] when starting '
                             f'from t={t_start}, got {num_steps}')
        steps = torch.linspace(t_start, 0, num_steps).round().long().tolist()
        x = x_t
        batch = x.shape[0]
        for index, t in enumerate(steps):
            abar_t = float(self.alphas_cumprod[t])
            abar_prev = float(self.alphas_cumprod[steps[index + 1]]) if index + 1 < num_steps \
                else 1.0
            t_batch = torch.full((batch, ), t, dtype=torch.long, device=x.device)
            eps = eps_fn(x, t_batch)
            if learned_variance:
                eps, values = eps.chunk(2, dim=1)
            x0 = self.predict_x0(x, t_batch, eps)
            if clip_x0:
                x0 = x0.clamp(-1, 1)
            if abar_prev == 1.0:
                x = x0
                break
            if method == 'ddim':
                eps = (x - abar_t**0.5 * x0) / (1 - abar_t)**0.5
                x = abar_prev**0.5 * x0 + (1 - abar_prev)**0.5 * eps
            else:
                beta = 1 - abar_t / abar_prev
                coef_x0 = abar_prev**0.5 * beta / (1 - abar_t)
                coef_xt = (1 - beta)**0.5 * (1 - abar_prev) / (1 - abar_t)
                variance = beta * (1 - abar_prev) / (1 - abar_t)
                std = variance**0.5
                if learned_variance:
                    std = (0.5 * _mix_log_variance(values, math.log(variance),
                                                   math.log(beta))).exp()
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = coef_x0 * x0 + coef_xt * x + std * noise
        return x


def _mix_log_variance(values: torch.Tensor, low, high) -> torch.Tensor:
    # -1 -> low, +1 -> high, linear in between (in log space).
    weight = (values + 1) / 2
    return weight * high + (1 - weight) * low


def normal_kl(mean1: torch.Tensor, log_var1: torch.Tensor, mean2: torch.Tensor,
              log_var2: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(N(mean1, exp(log_var1)) || N(mean2, exp(log_var2)))`` in nats."""
    return 0.5 * (log_var2 - log_var1 - 1 + (log_var1 - log_var2).exp()
                  + (mean1 - mean2)**2 * (-log_var2).exp())


def _normal_cdf_tanh(x: torch.Tensor) -> torch.Tensor:
    # The tanh approximation of the standard normal CDF: the decoder likelihood of
    # guided-diffusion (and so of DiT's and the reference's learned-sigma loss) uses it.
    return 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor,
                                        log_scale: torch.Tensor) -> torch.Tensor:
    """Elementwise log-probability (nats) of images ``x`` in [-1, 1] with 256 levels
    under ``N(mean, exp(log_scale)^2)``: the mass of the bin of width 2/255 around each
    value; the bins of -1 and 1 extend to -inf and +inf."""
    half_bin = 1 / 255
    inv_std = (-log_scale).exp()
    upper = _normal_cdf_tanh(inv_std * (x - mean + half_bin))
    lower = _normal_cdf_tanh(inv_std * (x - mean - half_bin))
    tiny = 1e-12
    return torch.where(
        x < -0.999, upper.clamp(min=tiny).log(),
        torch.where(x > 0.999, (1 - lower).clamp(min=tiny).log(),
                    (upper - lower).clamp(min=tiny).log()))

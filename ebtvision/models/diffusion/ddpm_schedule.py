"""DDPM linear noise schedule, the paper's noise levels and the reverse processes."""
from typing import Callable, Optional

import torch

from ebtvision.registry import MODELS


@MODELS.register_module()
class DDPMSchedule:
    """Linear beta schedule ``beta_1..beta_T`` from ``beta_start`` to ``beta_end``.

    Timesteps are 0-indexed: ``t`` in ``[0, T)``; ``abar[t] = prod_{s<=t} (1 - beta_s)``.
    A *noise level* ``s`` is a fraction of the schedule: ``t = round(T * s) - 1``, so 0.1 is
    t = 99 and 0.2 is t = 199 of 1000 (ebt-method.md section 3).
    """

    def __init__(self, num_timesteps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 2e-2) -> None:
        self.num_timesteps = num_timesteps
        self.beta_start, self.beta_end = beta_start, beta_end
        self.betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)

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
        t = torch.as_tensor(t, device='cpu').long().reshape(-1)
        values = self.alphas_cumprod[t].to(device=like.device, dtype=like.dtype)
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``."""
        abar = self.abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

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
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Run the reverse process from ``x_t`` at ``t_start`` down to a clean estimate.

        ``num_steps`` evenly spaced timesteps of ``[0, t_start]`` are visited (respacing),
        one network evaluation each.

        Args:
            eps_fn: Predicts the noise from ``(x, t)``; ``t`` is a (B,) long tensor.
            method: ``'ddim'`` (deterministic, eta = 0) or ``'ddpm'`` (ancestral sampling).
            clip_x0: Clamp the predicted clean image to [-1, 1] at each step.
            generator: Random generator for the DDPM noise.
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
            eps = eps_fn(x, torch.full((batch, ), t, dtype=torch.long, device=x.device))
            x0 = (x - (1 - abar_t)**0.5 * eps) / abar_t**0.5
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
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = coef_x0 * x0 + coef_xt * x + variance**0.5 * noise
        return x

"""DiT baseline denoiser: predicts the noise, then runs the reverse process."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ebtvision.registry import MODELS
from ..diffusion import DDPMSchedule
from ..thinking.options import check_test_cfg, resolve_option
from .base_denoiser import BaseDenoiser


@MODELS.register_module()
class DiTDenoiser(BaseDenoiser):
    """Timestep-conditioned noise predictor trained on ``t ~ U[0, t_max)``.

    ``t_max`` is the training noise level's share of the schedule (100 for 0.1). The
    loss is the MSE of the predicted noise; a backbone with ``learn_sigma`` also learns
    the reverse steps' variances from the variational bound (:meth:`loss`).

    Args:
        backbone: Config of the :class:`DiT` backbone.
        test_cfg: Reverse process at inference: ``num_steps`` (network evaluations,
            default 100), ``method`` (``'ddpm'`` or ``'ddim'``, default ``'ddim'``),
            ``start_from`` (``'true'``: start at the timestep of the real noise level,
            the DiT is told how noisy the input is; ``'train'``: always start at the
            training level's timestep, as blind as the EBT), ``respace`` and ``recurse``
            (the reference implementation's protocol, see :meth:`reverse_schedule`).
        **kwargs: See :class:`BaseDenoiser`.
    """

    TEST_CFG_KEYS = ('num_steps', 'method', 'start_from', 'respace', 'recurse')

    def __init__(self, backbone: dict, test_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = MODELS.build(backbone)
        self.t_max = self.train_timestep + 1
        self.test_cfg = dict(num_steps=100, method='ddim', start_from='true', respace=False,
                             recurse=0)
        given = check_test_cfg(test_cfg, self.TEST_CFG_KEYS, type(self).__name__)
        self.test_cfg.update({key: value for key, value in given.items() if value is not None})

    def loss(self, inputs: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        """MSE of the predicted noise at ``t ~ U[0, t_max)``. With ``learn_sigma`` the
        bound's term at ``t`` in bits per dimension (:meth:`DDPMSchedule.vlb_bits`) is
        added, unscaled, computed from the detached noise prediction so that it trains
        the variance only (improved DDPM's hybrid loss); ``mse`` and ``vlb`` are logged.
        """
        t = torch.randint(0, self.t_max, (inputs.shape[0], ), device=inputs.device)
        noisy, noise = self.add_noise(inputs, t)
        output = self.backbone(noisy, t)
        if not self.backbone.learn_sigma:
            return dict(loss=F.mse_loss(output, noise))
        eps, variance_values = output.chunk(2, dim=1)
        mse = F.mse_loss(eps, noise)
        vlb = self.schedule.vlb_bits(inputs, noisy, t, eps.detach(), variance_values).mean()
        # Names without 'loss' are logged only (MMEngine's parse_losses).
        return dict(loss=mse + vlb, mse=mse.detach(), vlb=vlb.detach())

    def reverse_schedule(self, noise_level: float) -> Tuple[DDPMSchedule, int]:
        """``(schedule, t_start)`` of the reverse process for inputs at ``noise_level``.

        By default the training schedule, from the timestep of the real noise level
        (``start_from='true'``; 199 for 0.2, which the DiT never trained on) or of the
        training level (``'train'``). With ``respace=True`` (the reference
        implementation's protocol) the schedule is stretched to ``t_max / level`` steps,
        so that the DiT starts at a timestep it trained on (``int(level * steps) - 1``,
        99 for 0.2) whose coefficients are those of the real noise level; at the training
        level this is the training schedule itself (:meth:`stretched_schedule`).
        """
        if self.test_cfg['respace']:
            return self.stretched_schedule(noise_level)
        level = noise_level if self.test_cfg['start_from'] == 'true' else self.train_noise_level
        return self.schedule, self.schedule.timestep(level)

    def _reverse_runs(self, noise_level: float, num_steps: Optional[int]
                      ) -> Tuple[DDPMSchedule, int, int, int]:
        """``(schedule, t_start, steps per run, runs)`` of :meth:`denoise`."""
        schedule, t_start = self.reverse_schedule(noise_level)
        # The reverse process cannot take more steps than there are timesteps to visit.
        steps = min(resolve_option('num_steps', num_steps, self.test_cfg), t_start + 1)
        runs = 1 + (self.test_cfg['recurse'] if noise_level > self.train_noise_level else 0)
        return schedule, t_start, steps, runs

    def num_passes(self, noise_level: float, num_steps: Optional[int] = None) -> int:
        """Network evaluations ``denoise(noisy, noise_level, num_steps)`` costs per
        image: one per reverse step, over every run (300 at 0.2 with the reference's
        protocol: 100 steps x 3 runs)."""
        _, _, steps, runs = self._reverse_runs(noise_level, num_steps)
        return steps * runs

    def denoise(self, noisy: torch.Tensor, noise_level: float,
                num_steps: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Run the reverse process; with ``test_cfg.recurse = n`` it is run ``n`` more
        times on its own output at levels above the training level (the reference's
        job at 0.2 passes 2: 3 x 100 network evaluations, :meth:`num_passes`)."""
        schedule, t_start, steps, runs = self._reverse_runs(noise_level, num_steps)
        generator = torch.Generator(device=noisy.device).manual_seed(self.eval_seed)
        denoised = noisy
        with torch.no_grad():
            for _ in range(runs):
                denoised = schedule.reverse(self.backbone, denoised, t_start, num_steps=steps,
                                            method=self.test_cfg['method'], generator=generator,
                                            learned_variance=self.backbone.learn_sigma)
        return denoised.clamp(-1, 1), None

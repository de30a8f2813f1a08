"""Energy-Based Transformer image denoiser."""
from functools import partial
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F

from ebtvision.registry import MODELS
from ..thinking import EnergyMinimizer, trajectory_loss
from .base_denoiser import BaseDenoiser

RECONSTRUCTION_LOSSES = {
    'smooth_l1': partial(F.smooth_l1_loss, beta=1.0),
    'mse': F.mse_loss,
}


@MODELS.register_module()
class EBTDenoiser(BaseDenoiser):
    """Denoises by energy minimisation, starting from the noisy image itself.

    Training: noise clean images at ``train_noise_level``, run the thinking loop with a
    second-order graph, and backpropagate the pixel loss of every step (or of the last
    one with ``thinker.truncate``) through the loop.

    Args:
        backbone: Config of the energy model (:class:`BidirectionalEBT`).
        thinker: Config of :class:`EnergyMinimizer` (steps, alpha, S2 options).
        loss_type: ``'smooth_l1'`` (the reference code, beta 1) or ``'mse'`` (paper text).
        test_cfg: Inference overrides: ``num_steps`` (think longer), ``alpha``.
        **kwargs: See :class:`BaseDenoiser`.
    """

    def __init__(self,
                 backbone: dict,
                 thinker: dict,
                 loss_type: str = 'smooth_l1',
                 test_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if loss_type not in RECONSTRUCTION_LOSSES:
            raise ValueError(f'loss_type must be one of {sorted(RECONSTRUCTION_LOSSES)}, '
                             f'got {loss_type!r}')
        self.backbone = MODELS.build(backbone)
        self.thinker = MODELS.build(thinker)
        if not isinstance(self.thinker, EnergyMinimizer):
            raise TypeError(f'thinker must build an EnergyMinimizer, got {type(self.thinker)}')
        self.loss_type = loss_type
        self.loss_fn = RECONSTRUCTION_LOSSES[loss_type]
        self.test_cfg = dict(test_cfg or {})

    def energy(self, candidate: torch.Tensor, landscape: int = 0) -> torch.Tensor:
        """Energy of each candidate image, (B,). The landscape index is unused here."""
        return self.backbone(candidate)

    def loss(self, inputs: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        noisy, _ = self.add_noise(inputs, self.train_timestep)
        trajectory = self.thinker(self.energy, noisy, create_graph=True)
        loss = trajectory_loss(trajectory, inputs, self.loss_fn, self.thinker.truncate)
        with torch.no_grad():
            # Names without 'loss' are logged but not optimised (MMEngine's parse_losses).
            logs = dict(
                loss=loss,
                final_step_mse=F.mse_loss(trajectory.final, inputs),
                noisy_mse=F.mse_loss(noisy, inputs),
                energy_first_step=trajectory.energies[0].mean(),
                alpha=self.thinker.alpha.detach().clone(),
            )
            if len(trajectory.energies) > 1:
                logs['energy_drop'] = logs['energy_first_step'] - trajectory.energies[-1].mean()
            return logs

    def think(self, noisy: torch.Tensor, num_steps: Optional[int] = None,
              alpha: Optional[float] = None):
        """Run inference-mode thinking and return the whole trajectory."""
        return self.thinker(self.energy, noisy, create_graph=False, randomize=False,
                            score_final=True, num_steps=num_steps or self.test_cfg.get(
                                'num_steps'), alpha=alpha or self.test_cfg.get('alpha'))

    def denoise(self, noisy: torch.Tensor, noise_level: float,
                num_steps: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        trajectory = self.think(noisy, num_steps)
        energies = torch.stack(trajectory.energies + [trajectory.final_energy], dim=1)
        return trajectory.final.clamp(-1, 1), energies

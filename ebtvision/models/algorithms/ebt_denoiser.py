"""Energy-Based Transformer image denoiser."""
from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ebtvision.registry import MODELS
from ..thinking import THINKING_KEYS, EnergyBasedModel, check_test_cfg, resolve_option
from .base_denoiser import BaseDenoiser

RECONSTRUCTION_LOSSES = {
    'smooth_l1': partial(F.smooth_l1_loss, beta=1.0),
    'mse': F.mse_loss,
}


@dataclass
class DenoiseThinking:
    """What System 2 inference made of a batch (one kept candidate per image).

    Attributes:
        final: ``(B, C, H, W)`` the kept candidates (not clamped).
        trajectory: ``[noisy, after step 1, ...]``, each ``(B, C, H, W)``, of the kept
            candidate (a stopped candidate stays put).
        energies: ``(B, S + 1)`` energy of each trajectory entry.
        steps_used: ``(B,)`` steps the kept candidate took (fewer with early stopping).
        chosen: ``(B,)`` index of the kept candidate (0 = started from the noisy image).
        candidate_energies: ``(B, M)`` final energy of every candidate.
        energy_maps: ``(B, H / p, W / p)`` final energy of every patch (the model's
            uncertainty map), when asked for.
    """
    final: torch.Tensor
    trajectory: List[torch.Tensor]
    energies: torch.Tensor
    steps_used: torch.Tensor
    chosen: torch.Tensor
    candidate_energies: torch.Tensor
    energy_maps: Optional[torch.Tensor] = None


@MODELS.register_module()
class EBTDenoiser(EnergyBasedModel, BaseDenoiser):
    """Denoises by energy minimisation, starting from the noisy image itself.

    Training: noise clean images at ``train_noise_level``, run the thinking loop with a
    second-order graph, and backpropagate the pixel loss of every step (or of the last
    one with ``thinker.truncate``) through the loop.

    Args:
        backbone: Config of the energy model (:class:`BidirectionalEBT`).
        thinker: Config of :class:`EnergyMinimizer` (steps, alpha, S2 options).
        loss_type: ``'smooth_l1'`` (the reference code, beta 1) or ``'mse'`` (paper text).
        replay_buffer: Config of :class:`ReplayBuffer` (S2; the reference code has none for
            images): part of each batch restarts from the model's own earlier predictions
            of buffered images, which it learns to refine further.
        test_cfg: Inference settings: ``num_steps`` (think longer), ``alpha``,
            ``num_candidates`` (self-verification, default 1), ``candidate_step_scale``
            and ``candidate_noise`` (how extra candidates differ, see
            :meth:`denoise_by_thinking`), ``tolerance``
            (adaptive compute: stop a candidate once its energy converged; ``num_steps``
            is then the budget), ``energy_maps`` (add per-patch energy maps to
            predictions, default True).
        **kwargs: See :class:`BaseDenoiser`.
    """

    TEST_CFG_KEYS = THINKING_KEYS + ('candidate_noise', 'candidate_step_scale', 'energy_maps')

    def __init__(self,
                 backbone: dict,
                 thinker: dict,
                 loss_type: str = 'smooth_l1',
                 replay_buffer: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if loss_type not in RECONSTRUCTION_LOSSES:
            raise ValueError(f'loss_type must be one of {sorted(RECONSTRUCTION_LOSSES)}, '
                             f'got {loss_type!r}')
        self.backbone = MODELS.build(backbone)
        self.init_thinking(thinker, replay_buffer)
        self.loss_type = loss_type
        self.loss_fn = RECONSTRUCTION_LOSSES[loss_type]
        self.test_cfg = check_test_cfg(test_cfg, self.TEST_CFG_KEYS, type(self).__name__)

    def energy(self, candidate: torch.Tensor, landscape: int = 0) -> torch.Tensor:
        """Energy of each candidate image, (B,). The landscape index is unused here."""
        return self.backbone(candidate)

    def loss(self, inputs: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        noisy, _ = self.add_noise(inputs, self.train_timestep)
        trajectory, batch, logs = self.loss_through_thinking(
            dict(target=inputs), noisy, lambda batch: self.energy, lambda batch: self.loss_fn)
        with torch.no_grad():
            logs.update(final_step_mse=F.mse_loss(trajectory.final, batch['target']),
                        noisy_mse=F.mse_loss(noisy, inputs))
        return logs

    def think(self, noisy: torch.Tensor, num_steps: Optional[int] = None, alpha=None):
        """Run inference-mode thinking from ``noisy`` and return the whole trajectory.

        ``alpha``: the step size, a number or one per image ``(B,)``.
        """
        return self.thinker(self.energy, noisy, create_graph=False, randomize=False,
                            score_final=True,
                            num_steps=resolve_option('num_steps', num_steps, self.test_cfg),
                            alpha=resolve_option('alpha', alpha, self.test_cfg))

    def denoise_by_thinking(self,
                            noisy: torch.Tensor,
                            num_steps: Optional[int] = None,
                            alpha: Optional[float] = None,
                            num_candidates: Optional[int] = None,
                            tolerance: Optional[float] = None,
                            generator: Optional[torch.Generator] = None,
                            energy_maps: bool = False) -> DenoiseThinking:
        """The EBT's whole inference: M candidates, optional early stop, the best kept.

        Candidate 0 is the plain run: it starts from ``noisy`` with step size alpha. The
        start is deterministic, so the other candidates differ by how they descend: each
        draws its step size log-uniformly from ``[alpha / s, alpha * s]`` (``s`` =
        ``test_cfg.candidate_step_scale``, default 2, the S2 random step size) and may
        start from ``noisy`` plus Gaussian noise of std ``test_cfg.candidate_noise``
        (default 0: added noise mostly raises the energy), both drawn from ``generator``.
        All M x B candidates think as one batch; per image the one with the lowest final
        energy is kept, so the result never has a higher energy than the single-candidate
        run. With ``tolerance`` each candidate stops once its energy has converged (see
        :meth:`EnergyMinimizer.minimize_until_converged`); ``num_steps`` is then the budget.
        Arguments left ``None`` come from ``test_cfg``.
        """
        num_steps, alpha, count, tolerance = self.thinking_options(num_steps, alpha,
                                                                   num_candidates, tolerance)
        num_steps = num_steps or self.thinker.num_steps
        std = resolve_option('candidate_noise', None, self.test_cfg, 0.0)
        if count > 1 and resolve_option('candidate_step_scale', None, self.test_cfg,
                                        2.0) == 1 and std == 0:
            raise ValueError('self-verification needs candidates that differ: set '
                             'test_cfg.candidate_step_scale > 1 and/or candidate_noise > 0')
        batch = noisy.shape[0]
        starts = noisy.unsqueeze(0).repeat(count, *([1] * noisy.dim()))
        outcome = self.think_and_select(lambda index: self.energy, starts, num_steps, alpha,
                                        tolerance, start_noise=std if count > 1 else 0.0,
                                        generator=generator, keep_candidates=True)
        steps_used = outcome.steps_used
        if steps_used is None:  # every candidate took every step
            steps_used = torch.full((batch, ), len(outcome.steps), device=noisy.device)
        result = DenoiseThinking(
            final=outcome.steps[-1], trajectory=[noisy] + outcome.steps,
            energies=outcome.trajectory.t(), steps_used=steps_used, chosen=outcome.chosen,
            candidate_energies=outcome.candidate_energies.t())
        if energy_maps:
            with torch.no_grad():
                patches = self.backbone.patch_energies(result.final)
            grid = self.backbone.img_size // self.backbone.patch_size
            result.energy_maps = patches.reshape(batch, grid, grid)
        return result

    def denoise(self, noisy: torch.Tensor, noise_level: float,
                num_steps: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        outcome = self.denoise_by_thinking(noisy, num_steps)
        return outcome.final.clamp(-1, 1), outcome.energies

    def predict_level(self, noisy: torch.Tensor, noise_level: float,
                      generator: torch.Generator) -> Dict[str, torch.Tensor]:
        outcome = self.denoise_by_thinking(noisy, generator=generator,
                                      energy_maps=self.test_cfg.get('energy_maps', True))
        outputs = dict(pred_imgs=outcome.final.clamp(-1, 1), energies=outcome.energies,
                       steps_used=outcome.steps_used)
        if outcome.energy_maps is not None:
            outputs['energy_maps'] = outcome.energy_maps
        return outputs

"""Energy-Based Transformer image denoiser."""
from dataclasses import dataclass
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from ebtvision.registry import MODELS
from ..thinking import (THINKING_KEYS, build_replay_buffer, build_thinker, check_test_cfg,
                        resolve_option, resolve_thinking, select_lowest_energy,
                        trajectory_loss)
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
class EBTDenoiser(BaseDenoiser):
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
            :meth:`think_verified`), ``tolerance``
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
        self.thinker = build_thinker(thinker)
        self.replay_buffer = build_replay_buffer(replay_buffer)
        self.loss_type = loss_type
        self.loss_fn = RECONSTRUCTION_LOSSES[loss_type]
        self.test_cfg = check_test_cfg(test_cfg, self.TEST_CFG_KEYS, type(self).__name__)

    def energy(self, candidate: torch.Tensor, landscape: int = 0) -> torch.Tensor:
        """Energy of each candidate image, (B,). The landscape index is unused here."""
        return self.backbone(candidate)

    def loss(self, inputs: torch.Tensor, data_samples=None) -> Dict[str, torch.Tensor]:
        noisy, _ = self.add_noise(inputs, self.train_timestep)
        start, target, replayed = noisy, inputs, 0
        if self.replay_buffer is not None:
            batch, start, replayed = self.replay_buffer.mix(dict(target=inputs), noisy)
            target = batch['target']
        trajectory = self.thinker(self.energy, start, create_graph=True)
        loss = trajectory_loss(trajectory, target, self.loss_fn, self.thinker.truncate)
        if self.replay_buffer is not None:
            self.replay_buffer.push(dict(target=target), trajectory.final)
        with torch.no_grad():
            # Names without 'loss' are logged but not optimised (MMEngine's parse_losses).
            logs = dict(
                loss=loss,
                final_step_mse=F.mse_loss(trajectory.final, target),
                noisy_mse=F.mse_loss(noisy, inputs),
                energy_first_step=trajectory.energies[0].mean(),
                alpha=self.thinker.alpha.detach().clone(),
            )
            if len(trajectory.energies) > 1:
                logs['energy_drop'] = logs['energy_first_step'] - trajectory.energies[-1].mean()
            if self.replay_buffer is not None:
                logs['replayed'] = torch.tensor(float(replayed))
            return logs

    def think(self, noisy: torch.Tensor, num_steps: Optional[int] = None, alpha=None):
        """Run inference-mode thinking from ``noisy`` and return the whole trajectory.

        ``alpha``: the step size, a number or one per image ``(B,)``.
        """
        return self.thinker(self.energy, noisy, create_graph=False, randomize=False,
                            score_final=True,
                            num_steps=resolve_option('num_steps', num_steps, self.test_cfg),
                            alpha=resolve_option('alpha', alpha, self.test_cfg))

    def think_verified(self,
                       noisy: torch.Tensor,
                       num_steps: Optional[int] = None,
                       alpha: Optional[float] = None,
                       num_candidates: Optional[int] = None,
                       tolerance: Optional[float] = None,
                       generator: Optional[torch.Generator] = None,
                       energy_maps: bool = False) -> DenoiseThinking:
        """System 2 inference: M candidates, optional early stop, the best kept per image.

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
        num_steps, alpha, count, tolerance = resolve_thinking(self.test_cfg, num_steps, alpha,
                                                              num_candidates, tolerance)
        num_steps = num_steps or self.thinker.num_steps
        batch = noisy.shape[0]
        starts = noisy.unsqueeze(0).repeat(count, *([1] * noisy.dim()))
        if count > 1:
            scale = resolve_option('candidate_step_scale', None, self.test_cfg, 2.0)
            std = resolve_option('candidate_noise', None, self.test_cfg, 0.0)
            if scale == 1 and std == 0:
                raise ValueError('self-verification needs candidates that differ: set '
                                 'test_cfg.candidate_step_scale > 1 and/or candidate_noise > 0 '
                                 f'(got {scale} and {std})')
            base = float(alpha or self.thinker.alpha.detach().clamp(min=self.thinker.min_alpha))
            exponents = torch.rand(count - 1, batch, generator=generator) * 2 - 1
            sizes = torch.cat([torch.ones(1, batch), scale**exponents]) * base
            alpha = sizes.flatten().to(device=noisy.device, dtype=noisy.dtype)
            if std:
                jitter = torch.randn(starts[1:].shape, generator=generator)
                starts[1:] += std * jitter.to(device=noisy.device, dtype=noisy.dtype)
        starts = starts.flatten(0, 1)
        if tolerance:
            trajectory = self.thinker.minimize_until_converged(
                lambda index: self.energy, starts, tolerance, max_steps=num_steps, alpha=alpha)
            steps_used = trajectory.steps_used
        else:
            trajectory = self.think(starts, num_steps, alpha)
            steps_used = torch.full((len(starts), ), len(trajectory.candidates),
                                    device=noisy.device)
        energies = torch.stack(trajectory.energies + [trajectory.final_energy], dim=1)
        energies = energies.unflatten(0, (count, batch))  # (M, B, S + 1)
        finals = trajectory.final.unflatten(0, (count, batch))
        _, _, choice = select_lowest_energy(finals, energies[..., -1])

        def chosen(stacked: torch.Tensor) -> torch.Tensor:  # (M * B, ...) -> (B, ...)
            return stacked.unflatten(0, (count, batch))[choice, torch.arange(batch)]

        images = [noisy] + [chosen(step).detach() for step in trajectory.candidates]
        outcome = DenoiseThinking(
            final=images[-1], trajectory=images, energies=chosen(energies.flatten(0, 1)),
            steps_used=chosen(steps_used), chosen=choice, candidate_energies=energies[..., -1].t())
        if energy_maps:
            with torch.no_grad():
                patches = self.backbone.patch_energies(outcome.final)
            grid = self.backbone.img_size // self.backbone.patch_size
            outcome.energy_maps = patches.reshape(batch, grid, grid)
        return outcome

    def denoise(self, noisy: torch.Tensor, noise_level: float,
                num_steps: Optional[int] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        outcome = self.think_verified(noisy, num_steps)
        return outcome.final.clamp(-1, 1), outcome.energies

    def predict_level(self, noisy: torch.Tensor, noise_level: float,
                      generator: torch.Generator) -> Dict[str, torch.Tensor]:
        outcome = self.think_verified(noisy, generator=generator,
                                      energy_maps=self.test_cfg.get('energy_maps', True))
        outputs = dict(pred_imgs=outcome.final.clamp(-1, 1), energies=outcome.energies,
                       steps_used=outcome.steps_used)
        if outcome.energy_maps is not None:
            outputs['energy_maps'] = outcome.energy_maps
        return outputs

"""Energy-Based Transformer next-frame predictor over frame latents."""
from typing import Dict, List, Optional

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import VideoDataSample
from ..heads import masked_frame_loss
from ..layers.kv_cache import KVCache
from ..thinking import THINKING_KEYS, EnergyBasedModel, resolve_option
from .next_frame_predictor import NextFramePredictor, Prediction


@MODELS.register_module()
class EBTNextFrame(EnergyBasedModel, NextFramePredictor):
    """Predicts every next frame by minimising a causal EBT's energy over candidates.

    Candidates start as N(0, I) latents; all T candidates of a clip are scored in one
    pass of the causal EBT and optimised together by the shared thinking loop. The
    smooth-L1 loss of the candidates against the true next latents is backpropagated
    through the loop (second-order gradients).

    Args:
        thinker: Config of :class:`EnergyMinimizer` (steps, alpha, S2 options).
        replay_buffer: Config of :class:`ReplayBuffer` (S2), or None.
        **kwargs: See :class:`NextFramePredictor`; ``test_cfg`` may set ``num_steps``
            (think longer: extra steps reuse the last trained step embedding), ``alpha``
            and ``num_candidates`` (self-verification: the lowest-energy candidate is
            kept per frame).
    """

    TEST_CFG_KEYS = NextFramePredictor.TEST_CFG_KEYS + THINKING_KEYS + ('candidate_noise', )

    def energy_fn(self, real: torch.Tensor):
        """``energy(candidates, landscape) -> (B, T)`` given real-frame latents."""
        return self.backbone.energy_fn(self.head.embed_latents(real), self.head.embed_latents,
                                       self.thinker.num_steps)

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[VideoDataSample]] = None) -> Dict[str, torch.Tensor]:
        latents = self.encode_inputs(inputs, data_samples)
        real, target = latents[:, :-1], latents[:, 1:]
        mask = self.target_mask(data_samples, *real.shape[:2], real.device)
        init = self.head.init_candidates(real)
        trajectory, batch, logs = self.loss_through_thinking(
            dict(real=real, target=target, mask=mask), init,
            lambda batch: self.energy_fn(batch['real']),
            lambda batch: lambda pred, target: self.head.loss(pred, target, batch['mask']))
        with torch.no_grad():
            real, target, mask = batch['real'], batch['target'], batch['mask']
            logs.update(final_smooth_l1=masked_frame_loss(trajectory.final, target, mask),
                        copy_last_smooth_l1=masked_frame_loss(real, target, mask))
        return logs

    def predict_next_latents(self, real: torch.Tensor,
                             data_samples: Optional[List[VideoDataSample]] = None,
                             num_steps: Optional[int] = None,
                             alpha: Optional[float] = None,
                             num_candidates: Optional[int] = None,
                             tolerance: Optional[float] = None,
                             seed_offset: int = 0,
                             cache: Optional[KVCache] = None) -> Prediction:
        """Think from ``num_candidates`` seeded starts per clip; keep the best per frame.

        With a deterministic start (``'zeros'``, ``'last_frame'``) the first candidate is
        the plain start and the others add ``test_cfg.candidate_noise`` (default 0.1)
        Gaussian noise to it, kept to the latent directions the model sees (see
        :meth:`NextFrameHead.init_candidates`). With ``tolerance`` (or
        ``test_cfg.tolerance``) each clip stops thinking once its energy has converged;
        ``num_steps`` is then the budget and ``steps_used`` is reported. With a
        ``cache`` (rollout) only the frame after ``real`` is predicted, (B, 1, C, h, w).
        """
        num_steps, alpha, count, tolerance = self.thinking_options(num_steps, alpha,
                                                                   num_candidates, tolerance)
        noise_std = (resolve_option('candidate_noise', None, self.test_cfg, 0.1)
                     if count > 1 else 0.0)
        batch = real.shape[0]
        # Per-sample seeded starts: (M, B, T, C, h, w), candidates folded into the batch.
        init = torch.stack([
            self.head.init_candidates(
                real[position].expand(count, *real.shape[1:]),
                self.eval_generator(data_samples, position, seed_offset),
                noise_std=noise_std)
            for position in range(batch)
        ], dim=1)
        if not self.head.random_init:
            init[0] = self.head.init_candidates(real)  # the plain start stays a candidate
        if cache is not None:  # starts drawn for every frame so both ways start alike
            init = init[:, :, -1:]
        energy_fn_for = self.backbone.folded_energy_fn(
            real, self.head.embed_latents, self.head.embed_latents, self.thinker.num_steps,
            count, cache)
        outcome = self.think_and_select(energy_fn_for, init, num_steps, alpha, tolerance)
        return Prediction(outcome.best, outcome.energy, outcome.trajectory, outcome.steps_used)

"""Energy-Based Transformer language model: next-token logits found by thinking."""
from typing import Dict, List, Optional

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import TextDataSample
from ..layers.kv_cache import KVCache
from ..thinking import THINKING_KEYS, EnergyBasedModel
from .language_model import LanguageModel, TextPrediction


@MODELS.register_module()
class EBTLanguageModel(EnergyBasedModel, LanguageModel):
    """A causal EBT scores candidate next-token distributions given the real tokens.

    Candidates are logits (random start), normalised and embedded by the shared
    :class:`TextHead` (``softmax(logits) @ E``, or its untied ``candidate_embed='linear'``);
    all T candidates of a sequence are scored in one pass and optimised by the shared
    thinking loop with every S2 option (replay buffer, Langevin noise, random step size and
    steps). The cross-entropy of the candidates' logits (the mean over the steps, or the
    last step's with ``truncate``) is backpropagated through the loop.

    Args:
        thinker: Config of :class:`EnergyMinimizer`.
        replay_buffer: Config of :class:`ReplayBuffer` (S2), or None.
        **kwargs: See :class:`LanguageModel`.
    """

    TEST_CFG_KEYS = LanguageModel.TEST_CFG_KEYS + THINKING_KEYS

    def energy_fn(self, ids: torch.Tensor):
        """``energy(candidates, landscape) -> (B, T)`` given (B, T) real tokens."""
        return self.backbone.energy_fn(self.head.embed_tokens(ids), self.head.embed_candidates,
                                       self.thinker.num_steps)

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[TextDataSample]] = None) -> Dict[str, torch.Tensor]:
        ids, targets = inputs[:, :-1], inputs[:, 1:]
        mask = self.loss_mask(targets, data_samples)
        init = self.head.init_candidates(*ids.shape, device=ids.device)
        trajectory, batch, logs = self.loss_through_thinking(
            dict(ids=ids, targets=targets, mask=mask), init,
            lambda batch: self.energy_fn(batch['ids']),
            lambda batch: lambda pred, target: self.head.loss(pred, target, batch['mask']),
            target_key='targets', transform=self.head.normalize)
        with torch.no_grad():
            final, targets, mask = trajectory.final, batch['targets'], batch['mask']
            correct = (self.head.decode(final) == targets) & mask
            logs.update(final_ce=self.head.loss(final, targets, mask),
                        accuracy=correct.sum() / mask.sum().clamp(min=1))
        return logs

    def predict_logits(self, ids: torch.Tensor, data_samples=None, seed_offset: int = 0,
                       num_steps: Optional[int] = None, alpha: Optional[float] = None,
                       num_candidates: Optional[int] = None,
                       tolerance: Optional[float] = None,
                       cache: Optional[KVCache] = None) -> TextPrediction:
        """Think from M seeded random starts per sequence; keep the best per token.

        With a ``cache`` (generation) only the next token after ``ids`` is thought
        about, against the cached keys and values; its logits are (B, 1, V).
        """
        num_steps, alpha, count, tolerance = self.thinking_options(num_steps, alpha,
                                                                   num_candidates, tolerance)
        batch, length = ids.shape
        # Drawn for every position even with a cache, so both ways start alike.
        starts = torch.stack([
            self.head.init_candidates(count, length, ids.device,
                                      self.eval_generator(data_samples, position, seed_offset))
            for position in range(batch)
        ], dim=1)  # (M, B, T, V)
        if cache is not None:
            starts = starts[:, :, -1:]
        energy_fn_for = self.backbone.folded_energy_fn(
            ids, self.head.embed_tokens, self.head.embed_candidates, self.thinker.num_steps,
            count, cache)
        outcome = self.think_and_select(energy_fn_for, starts, num_steps, alpha, tolerance,
                                        transform=self.head.normalize)
        return TextPrediction(outcome.best, outcome.energy, outcome.steps_used)

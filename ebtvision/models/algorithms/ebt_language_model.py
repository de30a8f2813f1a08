"""Energy-Based Transformer language model: next-token logits found by thinking."""
from typing import Dict, List, Optional

import torch

from ebtvision.registry import MODELS
from ebtvision.structures import TextDataSample
from ..layers.kv_cache import KVCache
from ..thinking import (THINKING_KEYS, build_replay_buffer, build_thinker, resolve_thinking,
                        think_with_candidates, trajectory_loss)
from .language_model import LanguageModel, TextPrediction


@MODELS.register_module()
class EBTLanguageModel(LanguageModel):
    """A causal EBT scores candidate next-token distributions given the real tokens.

    Candidates are logits (random start), normalised and embedded by the shared
    :class:`TextHead` as ``softmax(logits) @ E``; all T candidates of a sequence are scored in one pass and
    optimised by the shared thinking loop with every S2 option (replay buffer, Langevin
    noise, random step size and steps). The cross-entropy of the candidates' logits is
    backpropagated through the loop.

    Args:
        thinker: Config of :class:`EnergyMinimizer`.
        replay_buffer: Config of :class:`ReplayBuffer` (S2), or None.
        **kwargs: See :class:`LanguageModel`.
    """

    TEST_CFG_KEYS = LanguageModel.TEST_CFG_KEYS + THINKING_KEYS

    def __init__(self, thinker: dict, replay_buffer: Optional[dict] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thinker = build_thinker(thinker)
        self.replay_buffer = build_replay_buffer(replay_buffer)

    def energy_fn(self, ids: torch.Tensor):
        """``energy(candidates, landscape) -> (B, T)`` given (B, T) real tokens."""
        return self.backbone.energy_fn(self.head.embed_tokens(ids), self.head.embed_candidates,
                                       self.thinker.num_steps)

    def loss(self, inputs: torch.Tensor,
             data_samples: Optional[List[TextDataSample]] = None) -> Dict[str, torch.Tensor]:
        ids, targets = inputs[:, :-1], inputs[:, 1:]
        mask = self.loss_mask(targets, data_samples)
        init = self.head.init_candidates(*ids.shape, device=ids.device)
        replayed = 0
        if self.replay_buffer is not None:
            batch, init, replayed = self.replay_buffer.mix(
                dict(ids=ids, targets=targets, mask=mask), init)
            ids, targets, mask = batch['ids'], batch['targets'], batch['mask']
        trajectory = self.thinker(self.energy_fn(ids), init, create_graph=True,
                                  transform=self.head.normalize)
        loss = trajectory_loss(trajectory, targets, lambda p, t: self.head.loss(p, t, mask),
                               self.thinker.truncate)
        if self.replay_buffer is not None:
            self.replay_buffer.push(dict(ids=ids, targets=targets, mask=mask), trajectory.final)
        with torch.no_grad():
            final = trajectory.final
            correct = (self.head.decode(final) == targets) & mask
            logs = dict(loss=loss, final_ce=self.head.loss(final, targets, mask),
                        accuracy=correct.sum() / mask.sum().clamp(min=1),
                        energy_first_step=trajectory.energies[0].mean(),
                        alpha=self.thinker.alpha.detach().clone())
            if self.replay_buffer is not None:
                logs['replayed'] = torch.tensor(float(replayed))
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
        num_steps, alpha, count, tolerance = resolve_thinking(self.test_cfg, num_steps, alpha,
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
        outcome = think_with_candidates(self.thinker, energy_fn_for, starts, num_steps, alpha,
                                        tolerance, transform=self.head.normalize)
        return TextPrediction(outcome.best, outcome.energy, outcome.steps_used)

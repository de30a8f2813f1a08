"""Causal (decoder-only) Energy-Based Transformer over frame or token sequences."""
from typing import Callable, Optional, Union

import torch
from torch import nn

from ebtvision.registry import MODELS
from ..layers.kv_cache import KVCache
from .causal_transformer import CausalTransformer


def candidate_attention_mask(num_frames: int, device=None) -> torch.Tensor:
    """Boolean (2T, 2T) mask over ``[real_0..real_{T-1}, cand_0..cand_{T-1}]``.

    Real frame i sees real frames <= i; candidate i (the prediction of frame i + 1) sees
    real frames <= i and itself, so all T candidates are scored in one pass and none
    sees the frame it predicts or another candidate. True = may attend.
    """
    t = num_frames
    causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    mask = torch.zeros(2 * t, 2 * t, dtype=torch.bool, device=device)
    mask[:t, :t] = causal
    mask[t:, :t] = causal
    mask[t:, t:] = torch.eye(t, dtype=torch.bool, device=device)
    return mask


def trained_step(landscape: int, num_trained_steps: int) -> int:
    """Step embedding of a landscape: thinking longer than trained reuses the last one."""
    return min(landscape, num_trained_steps - 1)


@MODELS.register_module()
class CausalEBT(CausalTransformer):
    """Scores candidate next frames (or tokens) given the real ones: one energy each.

    Inputs are embeddings: the task's head maps latents / logits to ``embed_dims``.
    Real frame i sits at rotary position i, candidate i at position i + 1 (the frame it
    predicts). A learned step embedding tells the model which thinking step it is on.

    Args:
        arch: Size name or dict(depth, num_heads, embed_dims).
        mlp_ratio: SwiGLU width ratio.
        max_steps: Number of step embeddings (thinking landscapes); 0 disables them.
        init_cfg: MMEngine init config.
    """

    def __init__(self, arch: Union[str, dict] = 'xxs', mlp_ratio: float = 4.0,
                 max_steps: int = 8, init_cfg=None) -> None:
        super().__init__(arch=arch, mlp_ratio=mlp_ratio, init_cfg=init_cfg)
        self.energy_head = nn.Linear(self.embed_dims, 1, bias=False)
        self.step_embed = nn.Embedding(max_steps, self.embed_dims) if max_steps else None
        if self.step_embed is not None:
            nn.init.zeros_(self.step_embed.weight)  # starts as "no step information"

    def add_step_embedding(self, candidates: torch.Tensor, step: int) -> torch.Tensor:
        """Tell (B, T, D) candidate embeddings which thinking step they are on."""
        if self.step_embed is None:
            return candidates
        if not 0 <= step < self.step_embed.num_embeddings:
            raise ValueError(f'step {step} outside the {self.step_embed.num_embeddings} '
                             'step embeddings; raise max_steps')
        return candidates + self.step_embed.weight[step]

    def forward_features(self, real: torch.Tensor, candidates: torch.Tensor,
                         step: int = 0) -> torch.Tensor:
        """Final candidate tokens, (B, T, D), for ``real`` and ``candidates`` of (B, T, D)."""
        if real.shape != candidates.shape:
            raise ValueError(f'real {tuple(real.shape)} and candidates '
                             f'{tuple(candidates.shape)} must have the same shape')
        frames = real.shape[1]
        tokens = torch.cat([real, self.add_step_embedding(candidates, step)], dim=1)
        positions = torch.cat([torch.arange(frames), torch.arange(1, frames + 1)])
        mask = candidate_attention_mask(frames, real.device)
        return self.run_blocks(tokens, positions, mask)[:, frames:]

    def forward(self, real: torch.Tensor, candidates: torch.Tensor,
                step: int = 0) -> torch.Tensor:
        """Energy of every candidate, (B, T)."""
        return self.energy_head(self.forward_features(real, candidates, step)).squeeze(-1)

    def next_candidate_energy(self, cache: KVCache, candidate: torch.Tensor,
                              step: int = 0) -> torch.Tensor:
        """Energy (B, 1) of the candidate (B, 1, D) for the token after the cached ones.

        It equals the last column of :meth:`forward` over the whole sequence: the last
        candidate sees every real token and itself, at the position it predicts.
        """
        if cache.batch is None:
            raise ValueError('the cache is empty: extend it with the real tokens first')
        features = self.run_blocks(self.add_step_embedding(candidate, step),
                                   torch.tensor([cache.length]), None, cache)
        return self.energy_head(features).squeeze(-1)

    def energy_fn(self, real: torch.Tensor, embed_candidates, num_trained_steps: int):
        """``energy(candidates, landscape) -> (B, T)`` for (B, T, D) real embeddings.

        ``embed_candidates`` maps a task's candidates (latents, logits) to embeddings.
        Landscapes beyond training (thinking longer) reuse the last trained step.
        """
        def energy(candidates: torch.Tensor, landscape: int) -> torch.Tensor:
            return self(real, embed_candidates(candidates),
                        trained_step(landscape, num_trained_steps))

        return energy

    def folded_energy_fn(self, real: torch.Tensor, embed_real: Callable, embed_candidates,
                         num_trained_steps: int, count: int,
                         cache: Optional[KVCache] = None) -> Callable:
        """``energy_fn_for(index)`` of M = ``count`` candidates per sample, folded (M * B).

        This is what :func:`think_with_candidates` takes: ``index`` picks folded samples
        (None: all of them). ``real`` is the task's (B, T, ...) real tokens (ids, latents)
        and ``embed_real`` embeds them. Without ``cache`` every position is scored,
        (n, T). With one, only the candidate for the token after the last: the tokens not
        cached yet are embedded and appended to ``cache`` first; energies are (n, 1).
        """
        if cache is None:
            embedded = embed_real(real)
            folded = embedded.unsqueeze(0).expand(count, *embedded.shape).flatten(0, 1)
            return lambda index: self.energy_fn(folded if index is None else folded[index],
                                                embed_candidates, num_trained_steps)
        if real.shape[1] < cache.length:
            raise ValueError(f'the cache holds {cache.length} tokens, more than the '
                             f'{real.shape[1]} given: it belongs to another sequence')
        if real.shape[1] > cache.length:
            self.extend(embed_real(real[:, cache.length:]), cache)
        if cache.batch != real.shape[0]:
            raise ValueError(f'the cache holds a batch of {cache.batch}, got {real.shape[0]}')
        folded_cache = cache.repeat(count)

        def energy_fn_for(index: Optional[torch.Tensor]):
            subset = folded_cache if index is None else folded_cache.select(index)

            def energy(candidates: torch.Tensor, landscape: int) -> torch.Tensor:
                return self.next_candidate_energy(subset, embed_candidates(candidates),
                                                  trained_step(landscape, num_trained_steps))

            return energy

        return energy_fn_for

"""Causal (decoder-only) Energy-Based Transformer over frame or token sequences."""
from typing import Callable, Optional, Union

import torch
from torch import nn

from ebtvision.registry import MODELS
from ..layers.kv_cache import KVCache
from ..layers.llama import check_choice
from .causal_transformer import CausalTransformer


def candidate_attention_mask(num_frames: int, device=None, num_prefix: int = 0) -> torch.Tensor:
    """Boolean mask over ``[prefix, real_0..real_{T-1}, cand_0..cand_{T-1}]``.

    Real frame i sees real frames <= i; candidate i (the prediction of frame i + 1) sees
    real frames <= i and itself, so all T candidates are scored in one pass and none
    sees the frame it predicts or another candidate. ``num_prefix`` tokens (the step
    token) come first: they see each other causally and every token sees them.
    True = may attend.
    """
    t, p = num_frames, num_prefix
    causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
    mask = torch.zeros(p + 2 * t, p + 2 * t, dtype=torch.bool, device=device)
    mask[:p, :p] = torch.ones(p, p, dtype=torch.bool, device=device).tril()
    mask[p:, :p] = True
    mask[p:p + t, p:p + t] = causal
    mask[p + t:, p:p + t] = causal
    mask[p + t:, p + t:] = torch.eye(t, dtype=torch.bool, device=device)
    return mask


def trained_step(landscape: int, num_trained_steps: int) -> int:
    """Step embedding of a landscape: thinking longer than trained reuses the last one."""
    return min(landscape, num_trained_steps - 1)


#: How the thinking step reaches the model: ``'add'`` adds a learned vector to every
#: candidate; ``'token'`` prepends a learned step token that real frames and candidates
#: attend to (the reference's ``time_embed`` EBT).
STEP_CONDITIONS = ('add', 'token')


@MODELS.register_module()
class CausalEBT(CausalTransformer):
    """Scores candidate next frames (or tokens) given the real ones: one energy each.

    Inputs are embeddings: the task's head maps latents / logits to ``embed_dims``.
    Candidate i sits one rotary position after real frame i (the frame it predicts). A
    learned step embedding tells the model which thinking step it is on:

    * ``step_condition='add'``: a zero-initialised vector added to the candidates. Real
      tokens never see the step, so their keys and values are computed once per
      sequence (KV cache) and reused across thinking steps and generated items.
    * ``step_condition='token'``: a step token (N(0, 1) initialised) at position 0 that
      every token attends to, real frame i at i + 1, candidate i at i + 2, as the
      reference's ``time_embed`` EBT. Real tokens then depend on the step, so nothing
      is cached: :meth:`folded_energy_fn` re-reads the real tokens on every call and
      :meth:`next_candidate_energy` / :meth:`extend` refuse.

    Args:
        arch: Size name or dict(depth, num_heads, embed_dims).
        mlp_ratio: SwiGLU width ratio.
        max_steps: Number of step embeddings (thinking landscapes); 0 disables them
            (``'add'`` only).
        step_condition: One of :data:`STEP_CONDITIONS`.
        **kwargs: ``norm_eps``, ``rotary_layout``, ``weight_init``, ``init_cfg`` of
            :class:`CausalTransformer`.
    """

    SECOND_ORDER = True  # training differentiates through the energy gradient

    def __init__(self, arch: Union[str, dict] = 'xxs', mlp_ratio: float = 4.0,
                 max_steps: int = 8, step_condition: str = 'add', **kwargs) -> None:
        super().__init__(arch=arch, mlp_ratio=mlp_ratio, **kwargs)
        check_choice('step_condition', step_condition, STEP_CONDITIONS)
        if step_condition == 'token' and max_steps < 1:
            raise ValueError("step_condition='token' needs max_steps >= 1")
        self.step_condition = step_condition
        self.energy_head = nn.Linear(self.embed_dims, 1, bias=False)
        self.init_linear(self.energy_head)
        self.step_embed = nn.Embedding(max_steps, self.embed_dims) if max_steps else None
        if step_condition == 'add' and self.step_embed is not None:
            nn.init.zeros_(self.step_embed.weight)  # starts as "no step information"

    @property
    def num_prefix(self) -> int:
        """Tokens before the real ones: the step token in ``'token'`` mode."""
        return 1 if self.step_condition == 'token' else 0

    def step_vector(self, step: int) -> torch.Tensor:
        """The (D,) embedding of thinking step ``step``."""
        if not 0 <= step < self.step_embed.num_embeddings:
            raise ValueError(f'step {step} outside the {self.step_embed.num_embeddings} '
                             'step embeddings; raise max_steps')
        return self.step_embed.weight[step]

    def add_step_embedding(self, candidates: torch.Tensor, step: int) -> torch.Tensor:
        """Tell (B, T, D) candidate embeddings which thinking step they are on (``'add'``)."""
        if self.step_embed is None or self.step_condition == 'token':
            return candidates
        return candidates + self.step_vector(step)

    def with_step_token(self, tokens: torch.Tensor, step: int) -> torch.Tensor:
        """(B, N, D) tokens with the step token in front (``'token'``; else unchanged)."""
        if self.step_condition != 'token':
            return tokens
        token = self.step_vector(step).to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return torch.cat([token, tokens], dim=1)

    def forward_features(self, real: torch.Tensor, candidates: torch.Tensor,
                         step: int = 0) -> torch.Tensor:
        """Final candidate tokens, (B, T, D), for ``real`` and ``candidates`` of (B, T, D)."""
        if real.shape != candidates.shape:
            raise ValueError(f'real {tuple(real.shape)} and candidates '
                             f'{tuple(candidates.shape)} must have the same shape')
        frames, prefix = real.shape[1], self.num_prefix
        tokens = self.with_step_token(
            torch.cat([real, self.add_step_embedding(candidates, step)], dim=1), step)
        positions = torch.cat([torch.arange(frames + prefix),
                               torch.arange(prefix + 1, prefix + frames + 1)])
        mask = candidate_attention_mask(frames, real.device, prefix)
        return self.run_blocks(tokens, positions, mask)[:, prefix + frames:]

    def forward(self, real: torch.Tensor, candidates: torch.Tensor,
                step: int = 0) -> torch.Tensor:
        """Energy of every candidate, (B, T)."""
        return self.energy_head(self.forward_features(real, candidates, step)).squeeze(-1)

    def _refuse_cache(self, what: str) -> None:
        if self.step_condition == 'token':
            raise ValueError(f"{what} needs cacheable real tokens; with step_condition='token' "
                             'they attend to the step token: use folded_energy_fn')

    def extend(self, real: torch.Tensor, cache: KVCache) -> torch.Tensor:
        self._refuse_cache('extend')
        return super().extend(real, cache)

    def next_candidate_energy(self, cache: KVCache, candidate: torch.Tensor,
                              step: int = 0) -> torch.Tensor:
        """Energy (B, 1) of the candidate (B, 1, D) for the token after the cached ones.

        It equals the last column of :meth:`forward` over the whole sequence: the last
        candidate sees every real token and itself, at the position it predicts.
        """
        self._refuse_cache('next_candidate_energy')
        if cache.batch is None:
            raise ValueError('the cache is empty: extend it with the real tokens first')
        features = self.run_blocks(self.add_step_embedding(candidate, step),
                                   torch.tensor([cache.length]), None, cache)
        return self.energy_head(features).squeeze(-1)

    def last_candidate_energy(self, real: torch.Tensor, candidate: torch.Tensor,
                              step: int = 0) -> torch.Tensor:
        """Energy (B, 1) of the candidate (B, 1, D) for the token after all of ``real``
        (B, T, D), read without a cache: the last column of :meth:`forward`."""
        tokens = self.with_step_token(
            torch.cat([real, self.add_step_embedding(candidate, step)], dim=1), step)
        count = tokens.shape[1]  # the last token sees everything: a plain causal mask
        mask = torch.ones(count, count, dtype=torch.bool, device=real.device).tril()
        features = self.run_blocks(tokens, torch.arange(count), mask)[:, -1:]
        return self.energy_head(features).squeeze(-1)

    def energy_fn(self, real: torch.Tensor, embed_candidates, num_trained_steps: int):
        """``energy(candidates, landscape, perturb=None) -> (B, T)`` for (B, T, D) real
        embeddings.

        ``embed_candidates`` maps a task's candidates (latents, logits) to embeddings;
        ``perturb`` (the thinker's embedding-space Langevin noise) is applied to those
        embeddings for this evaluation only. Landscapes beyond training (thinking
        longer) reuse the last trained step.
        """
        def energy(candidates: torch.Tensor, landscape: int,
                   perturb: Optional[Callable] = None) -> torch.Tensor:
            return self(real, embed_perturbed(embed_candidates, candidates, perturb),
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
        With ``step_condition='token'`` the cache is left untouched and every call
        re-reads all of ``real`` (same energies, no saving).
        """
        if cache is None or self.step_condition == 'token':
            embedded = embed_real(real)
            folded = embedded.unsqueeze(0).expand(count, *embedded.shape).flatten(0, 1)
            if cache is None:
                return lambda index: self.energy_fn(
                    folded if index is None else folded[index], embed_candidates,
                    num_trained_steps)

            def reread_for(index: Optional[torch.Tensor]):
                context = folded if index is None else folded[index]

                def energy(candidates: torch.Tensor, landscape: int,
                           perturb: Optional[Callable] = None) -> torch.Tensor:
                    return self.last_candidate_energy(
                        context, embed_perturbed(embed_candidates, candidates, perturb),
                        trained_step(landscape, num_trained_steps))

                return energy

            return reread_for
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

            def energy(candidates: torch.Tensor, landscape: int,
                       perturb: Optional[Callable] = None) -> torch.Tensor:
                return self.next_candidate_energy(
                    subset, embed_perturbed(embed_candidates, candidates, perturb),
                    trained_step(landscape, num_trained_steps))

            return energy

        return energy_fn_for


def embed_perturbed(embed: Callable, candidates: torch.Tensor,
                    perturb: Optional[Callable]) -> torch.Tensor:
    """Embedded candidates, with ``perturb`` (e.g. Langevin noise) applied when given."""
    embedded = embed(candidates)
    return embedded if perturb is None else perturb(embedded)

"""Decoder-only Llama-style transformer over frame or token embeddings.

It is the trunk of the causal EBT and, on its own, the Transformer++ baseline that
regresses the next frame (or token) directly.
"""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from ebtvision.registry import MODELS
from ..layers.checkpointing import call_block
from ..layers.kv_cache import KVCache
from ..layers.llama import LlamaBlock, RMSNorm, rotary_tables, xavier_normal_
from .arch_settings import resolve_arch


@MODELS.register_module()
class CausalTransformer(BaseModule):
    """Pre-norm Llama blocks (RMSNorm, rotary positions, SwiGLU) with a final RMSNorm.

    ``forward(real)`` is the Transformer++ baseline: frame i attends to frames <= i and
    its output token predicts frame i + 1.

    Args:
        arch: Size name (see ``ARCH_SETTINGS``) or dict(depth, num_heads, embed_dims).
        mlp_ratio: SwiGLU width ratio.
        norm_eps: Epsilon of every RMSNorm (1e-5, the reference's and Llama 2's).
        rotary_layout: ``'half'`` or ``'interleaved'`` (the reference's) pairing of the
            rotary dims (see ``ROTARY_LAYOUTS`` in ``layers/llama.py``); reference
            checkpoints need ``'interleaved'``.
        weight_init: ``'torch'`` (PyTorch's default) or ``'xavier'`` (Xavier normal, the
            reference's) for the linear layers.
        with_cp: Activation checkpointing of every block in training (not with a KV
            cache): less memory, one more forward of each block per backward.
        init_cfg: MMEngine init config.
    """

    #: Whether training differentiates through the network's gradient (the causal EBT
    #: does); the Transformer++ trains first order, on PyTorch's fused attention kernels.
    SECOND_ORDER = False

    def __init__(self, arch: Union[str, dict] = 'xxs', mlp_ratio: float = 4.0,
                 norm_eps: float = 1e-5, rotary_layout: str = 'half',
                 weight_init: str = 'torch', with_cp: bool = False, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        settings = resolve_arch(arch)
        self.embed_dims = settings['embed_dims']
        self.num_heads = settings['num_heads']
        self.rotary_layout = rotary_layout
        self.weight_init = weight_init
        self.blocks = nn.ModuleList(
            LlamaBlock(self.embed_dims, self.num_heads, mlp_ratio, norm_eps, rotary_layout,
                       weight_init, second_order=self.SECOND_ORDER)
            for _ in range(settings['depth']))
        self.norm = RMSNorm(self.embed_dims, norm_eps)

    def init_linear(self, linear: nn.Linear) -> None:
        """Initialise a linear layer a subclass adds the way ``weight_init`` says."""
        if self.weight_init == 'xavier':
            xavier_normal_(linear)

    def run_blocks(self, tokens: torch.Tensor, positions: torch.Tensor,
                   mask: Optional[torch.Tensor], cache: Optional[KVCache] = None,
                   append: bool = False) -> torch.Tensor:
        """All blocks and the final norm over (B, N, D) tokens at rotary ``positions``.

        With a ``cache`` the tokens also attend to the cached ones (``mask`` then spans
        cached + new keys); ``append`` adds the tokens' own keys and values to it.
        """
        cos, sin = rotary_tables(positions.to(tokens.device), self.embed_dims // self.num_heads,
                                 layout=self.rotary_layout)
        new_keys_values = []
        for index, block in enumerate(self.blocks):
            past = cache.past(index) if cache is not None else None
            tokens, keys_values = call_block(block, tokens, cos, sin, mask, past,
                                             with_cp=self.with_cp and cache is None)
            new_keys_values.append(keys_values)
        if append:
            cache.append(new_keys_values)
        return self.norm(tokens)

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        """Causal features (B, T, D) of (B, T, D) embeddings; token i predicts frame i + 1."""
        frames = real.shape[1]
        mask = torch.ones(frames, frames, dtype=torch.bool, device=real.device).tril()
        return self.run_blocks(real, torch.arange(frames), mask)

    @torch.no_grad()
    def extend(self, real: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Causal features (B, n, D) of n real tokens that follow the cached ones.

        Their keys and values are appended to ``cache``, so that reading a sequence in
        pieces gives the features :meth:`forward` gives for the whole (inference only).
        """
        batch, count = real.shape[:2]
        if count == 0:
            raise ValueError('extend needs at least one new token')
        if cache.batch is not None and cache.batch != batch:
            raise ValueError(f'the cache holds a batch of {cache.batch}, got {batch} tokens')
        start = cache.length
        mask = torch.ones(count, start + count, dtype=torch.bool, device=real.device)
        mask[:, start:] = mask[:, start:].tril()
        return self.run_blocks(real, torch.arange(start, start + count), mask, cache,
                               append=True)

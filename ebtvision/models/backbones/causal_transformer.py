"""Decoder-only Llama-style transformer over frame or token embeddings.

It is the trunk of the causal EBT and, on its own, the Transformer++ baseline that
regresses the next frame (or token) directly.
"""
from typing import Optional, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from ebtvision.registry import MODELS
from ..layers.llama import LlamaBlock, RMSNorm, rotary_tables
from .arch_settings import resolve_arch


@MODELS.register_module()
class CausalTransformer(BaseModule):
    """Pre-norm Llama blocks (RMSNorm, rotary positions, SwiGLU) with a final RMSNorm.

    ``forward(real)`` is the Transformer++ baseline: frame i attends to frames <= i and
    its output token predicts frame i + 1.

    Args:
        arch: Size name (see ``ARCH_SETTINGS``) or dict(depth, num_heads, embed_dims).
        mlp_ratio: SwiGLU width ratio.
        init_cfg: MMEngine init config.
    """

    def __init__(self, arch: Union[str, dict] = 'xxs', mlp_ratio: float = 4.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch(arch)
        self.embed_dims = settings['embed_dims']
        self.num_heads = settings['num_heads']
        self.blocks = nn.ModuleList(
            LlamaBlock(self.embed_dims, self.num_heads, mlp_ratio)
            for _ in range(settings['depth']))
        self.norm = RMSNorm(self.embed_dims)

    def run_blocks(self, tokens: torch.Tensor, positions: torch.Tensor,
                   mask: Optional[torch.Tensor]) -> torch.Tensor:
        """All blocks and the final norm over (B, N, D) tokens at rotary ``positions``."""
        cos, sin = rotary_tables(positions.to(tokens.device), self.embed_dims // self.num_heads)
        for block in self.blocks:
            tokens = block(tokens, cos, sin, mask)
        return self.norm(tokens)

    def forward(self, real: torch.Tensor) -> torch.Tensor:
        """Causal features (B, T, D) of (B, T, D) embeddings; token i predicts frame i + 1."""
        frames = real.shape[1]
        mask = torch.ones(frames, frames, dtype=torch.bool, device=real.device).tril()
        return self.run_blocks(real, torch.arange(frames), mask)

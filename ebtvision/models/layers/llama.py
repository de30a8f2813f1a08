"""Llama-style transformer pieces (RMSNorm, rotary positions, SwiGLU) for causal EBTs."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention


#: How rotary embeddings pair the dims of a head: ``'half'`` rotates dim i with dim
#: i + dh/2 (the Hugging Face Llama layout), ``'interleaved'`` rotates dims 2i and 2i + 1
#: (Meta's Llama and the reference EBT code). Attention is the same function of the
#: weights up to a permutation of each head's query / key rows.
ROTARY_LAYOUTS = ('half', 'interleaved')
#: Initialisations of the causal backbones' linear layers: ``'torch'`` (PyTorch's
#: default, uniform), ``'xavier'`` (Xavier normal, zero biases: the reference's default,
#: with the fused query / key / value weight initialised as three separate matrices).
WEIGHT_INITS = ('torch', 'xavier')


def check_choice(name: str, value: str, choices: Tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f'{name} must be one of {choices}, got {value!r}')


def xavier_normal_(linear: nn.Linear, parts: int = 1) -> None:
    """Xavier-normal weights (zero bias) for ``linear``, whose output rows may stack
    ``parts`` equal matrices (a fused qkv layer), each initialised as its own layer."""
    with torch.no_grad():
        for block in linear.weight.chunk(parts, dim=0):
            fan_out, fan_in = block.shape
            block.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
        if linear.bias is not None:
            linear.bias.zero_()


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned gain (no mean subtraction, no bias)."""

    def __init__(self, dims: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(positions: torch.Tensor, head_dims: int, base: float = 10000.0,
                  layout: str = 'half') -> tuple:
    """cos / sin tables of rotary embeddings for integer ``positions`` (N,) -> (N, dh).

    Computed in float64 (cast where applied), so float64 models get exact angles and
    large positions lose no precision in float32 ones.
    """
    if head_dims % 2:
        raise ValueError(f'rotary embeddings need an even head size, got {head_dims}')
    check_choice('rotary layout', layout, ROTARY_LAYOUTS)
    inv_freq = 1.0 / base**(torch.arange(0, head_dims, 2, dtype=torch.float64,
                                         device=positions.device) / head_dims)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None]
    angles = (torch.cat([angles, angles], dim=-1) if layout == 'half' else
              angles.repeat_interleave(2, dim=-1))
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 layout: str = 'half') -> torch.Tensor:
    """Rotate (B, H, N, dh) queries or keys by their positions (tables of ``layout``)."""
    if layout == 'half':
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    else:
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class SwiGLU(nn.Module):
    """Gated MLP: ``down(silu(gate(x)) * up(x))``; hidden width ``2/3 * ratio * dims``."""

    def __init__(self, dims: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(2 * mlp_ratio * dims / 3)
        self.gate = nn.Linear(dims, hidden, bias=False)
        self.up = nn.Linear(dims, hidden, bias=False)
        self.down = nn.Linear(hidden, dims, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class LlamaBlock(nn.Module):
    """Pre-norm block: RMSNorm -> masked rotary self-attention -> RMSNorm -> SwiGLU.

    Args:
        embed_dims: Token width.
        num_heads: Attention heads.
        mlp_ratio: Width ratio of the SwiGLU MLP (before the 2/3 factor).
        norm_eps: Epsilon of both RMSNorms.
        rotary_layout: Pairing of the rotary dims, one of :data:`ROTARY_LAYOUTS`.
        weight_init: One of :data:`WEIGHT_INITS`.
        second_order: Whether training differentiates through the block's gradient (the
            causal EBT); False (the Transformer++) lets training use fused attention kernels.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.0,
                 norm_eps: float = 1e-5, rotary_layout: str = 'half',
                 weight_init: str = 'torch', second_order: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        check_choice('rotary_layout', rotary_layout, ROTARY_LAYOUTS)
        check_choice('weight_init', weight_init, WEIGHT_INITS)
        self.num_heads = num_heads
        self.rotary_layout = rotary_layout
        self.second_order = second_order
        self.attn_norm = RMSNorm(embed_dims, norm_eps)
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=False)
        self.proj = nn.Linear(embed_dims, embed_dims, bias=False)
        self.mlp_norm = RMSNorm(embed_dims, norm_eps)
        self.mlp = SwiGLU(embed_dims, mlp_ratio)
        if weight_init == 'xavier':
            xavier_normal_(self.qkv, parts=3)
            for linear in (self.proj, self.mlp.gate, self.mlp.up, self.mlp.down):
                xavier_normal_(linear)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attn_mask: Optional[torch.Tensor] = None,
                past: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> tuple:
        """Run the block on (B, N, D) tokens.

        Args:
            x: The tokens.
            cos, sin: Rotary tables of their positions, (N, dh).
            attn_mask: Boolean (N, P + N) mask, True = may attend (None: attend to all).
            past: Rotated keys and values (B, H, P, dh) of earlier tokens (a KV cache);
                the tokens attend to them first.

        Returns:
            ``(x, (keys, values))``: the new tokens and their own rotated keys and values,
            which a cache appends.
        """
        batch, tokens, dims = x.shape
        qkv = self.qkv(self.attn_norm(x)).reshape(batch, tokens, 3, self.num_heads,
                                                  dims // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q = apply_rotary(q, cos, sin, self.rotary_layout)
        k = apply_rotary(k, cos, sin, self.rotary_layout)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], dim=2),
                                                    torch.cat([past[1], v], dim=2))
        out = attention(q, keys, values, attn_mask, self.second_order)
        x = x + self.proj(out.transpose(1, 2).reshape(batch, tokens, dims))
        return x + self.mlp(self.mlp_norm(x)), (k, v)

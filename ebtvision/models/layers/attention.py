"""Multi-head self-attention that stays twice differentiable when it has to."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              attn_mask: Optional[torch.Tensor] = None,
              second_order: bool = True) -> torch.Tensor:
    """Scaled dot-product attention on the fastest kernel that the graph allows.

    Fused SDPA kernels (flash, memory-efficient, and the CPU flash kernel) have no double
    backward, and EBT training differentiates through the energy gradient. So when a
    second-order graph may be built (``second_order`` and autograd recording) attention
    runs on the math backend, which is made of differentiable primitives; otherwise
    (inference, first-order training such as the DiT's or the Transformer++'s) PyTorch
    picks its fused kernels.
    """
    if second_order and torch.is_grad_enabled():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (kernel: :func:`attention`).

    Args:
        embed_dims: Token width.
        num_heads: Number of heads; must divide ``embed_dims``.
        qkv_bias: Whether the qkv projection has a bias.
        second_order: Whether training differentiates through this layer's gradient
            (EBTs); False lets training use the fused kernels.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool = True,
                 second_order: bool = True) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.second_order = second_order
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, tokens, dims = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dims // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = attention(q, k, v, attn_mask, self.second_order)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dims))

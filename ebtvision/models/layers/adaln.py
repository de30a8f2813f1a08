"""DiT-style transformer block and final layer with adaLN-Zero conditioning."""
import torch
from torch import nn

from .attention import SelfAttention
from .functional import layer_norm_modulate
from .fused_block import fused_adaln_block, reference_adaln_block


def _autocast_enabled(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # PyTorch < 2.4
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated by a condition vector.

    The modulation layer is zero-initialised (adaLN-Zero), so every block starts as the
    identity.

    With ``fused`` and autograd recording, the block runs as one fused,
    twice-differentiable node (:func:`~.fused_block.fused_adaln_block`): the same math as
    the modules below, with a hand-written double backward for EBT's
    gradient-through-gradient training. Otherwise it runs the modules themselves, whose
    attention uses PyTorch's fused kernels wherever no second-order graph is needed
    (inference; training with ``second_order=False``, e.g. the DiT's).

    Args:
        embed_dims: Token width.
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the MLP relative to ``embed_dims``.
        fused: Use the fused node in training.
        second_order: Whether training differentiates through the block's gradient.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.0,
                 fused: bool = True, second_order: bool = True) -> None:
        super().__init__()
        self.fused = fused
        self.norm1 = nn.LayerNorm(embed_dims, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(embed_dims, num_heads, second_order=second_order)
        self.norm2 = nn.LayerNorm(embed_dims, elementwise_affine=False, eps=1e-6)
        hidden = int(embed_dims * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(approximate='tanh'),
            nn.Linear(hidden, embed_dims))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(embed_dims, 6 * embed_dims))
        for layer in (self.attn.qkv, self.attn.proj, self.mlp[0], self.mlp[2]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.zeros_(self.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.adaLN_modulation[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mod = self.adaLN_modulation(cond)
        if self.fused and torch.is_grad_enabled():
            args = (x, mod, self.attn.qkv.weight, self.attn.qkv.bias, self.attn.proj.weight,
                    self.attn.proj.bias, self.mlp[0].weight, self.mlp[0].bias,
                    self.mlp[2].weight, self.mlp[2].bias, self.attn.num_heads, self.norm1.eps,
                    self.norm2.eps)
            if _autocast_enabled(x.device.type) or not x.dtype == mod.dtype == \
                    self.attn.qkv.weight.dtype:
                return reference_adaln_block(*args)
            return fused_adaln_block(*args)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.chunk(6, dim=-1)
        h = self.attn(layer_norm_modulate(x, shift_a, scale_a, self.norm1.eps))
        x = torch.addcmul(x, gate_a.unsqueeze(1), h)
        h = self.mlp(layer_norm_modulate(x, shift_m, scale_m, self.norm2.eps))
        return torch.addcmul(x, gate_m.unsqueeze(1), h)


class AdaLNFinalLayer(nn.Module):
    """Final adaLN-modulated norm followed by a linear projection per token.

    Args:
        embed_dims: Token width.
        out_dims: Output features per token (1 for an energy, p*p*C for a DiT).
        bias: Whether the projection has a bias. An energy head has none: a constant
            offset changes no gradient and no ranking.
    """

    def __init__(self, embed_dims: int, out_dims: int, bias: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dims, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(embed_dims, out_dims, bias=bias)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(embed_dims, 2 * embed_dims))
        for layer in (self.adaLN_modulation[-1], self.linear):
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(cond).chunk(2, dim=-1)
        return self.linear(layer_norm_modulate(x, shift, scale, self.norm.eps))

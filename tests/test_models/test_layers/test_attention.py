"""SelfAttention: the plain scaled dot-product attention."""
import torch
import torch.nn.functional as F
from conftest import LAYER_SIZES

from ebtvision.models.layers import SelfAttention

B, N, D, HEADS, HIDDEN = LAYER_SIZES


def test_self_attention_module_unchanged():
    torch.manual_seed(7)
    attn = SelfAttention(D, HEADS).double()
    x = torch.randn(2, 4, D, dtype=torch.float64)
    q, k, v = attn.qkv(x).reshape(2, 4, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
    expected = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 4, D)
    torch.testing.assert_close(attn(x), attn.proj(expected))

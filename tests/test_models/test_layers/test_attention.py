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


def test_kernel_choice_follows_the_graph(monkeypatch):
    """The math kernel (the one with a double backward) only where a second-order graph
    may be built; first-order training and inference leave the choice to PyTorch."""
    from ebtvision.models.layers import attention as module
    forced = []
    real = module.sdpa_kernel

    def spy(backends):
        forced.append(backends)
        return real(backends)

    monkeypatch.setattr(module, 'sdpa_kernel', spy)
    x = torch.randn(2, 4, D, requires_grad=True)
    SelfAttention(D, HEADS)(x)
    assert forced == [module.SDPBackend.MATH]
    SelfAttention(D, HEADS, second_order=False)(x)
    with torch.no_grad():
        SelfAttention(D, HEADS)(x)
    assert len(forced) == 1
    # and the second-order path really is twice differentiable
    attn = SelfAttention(D, HEADS).double()
    x = torch.randn(2, 4, D, dtype=torch.float64, requires_grad=True)
    grad, = torch.autograd.grad((attn(x)**2).sum(), x, create_graph=True)
    grad.sum().backward()
    assert attn.qkv.weight.grad is not None and attn.qkv.weight.grad.abs().sum() > 0

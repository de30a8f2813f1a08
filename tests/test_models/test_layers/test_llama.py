"""Llama-style layers of the causal backbones: RMSNorm and rotary embeddings."""
import torch

from ebtvision.models.layers.llama import RMSNorm, apply_rotary, rotary_tables


def test_rmsnorm_and_rotary():
    x = torch.randn(2, 3, 8)
    out = RMSNorm(8)(x)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(2, 3), atol=1e-4, rtol=0)
    q = torch.randn(1, 1, 4, 8)
    cos, sin = rotary_tables(torch.arange(4), 8)
    rotated = apply_rotary(q, cos, sin)
    torch.testing.assert_close(rotated.norm(dim=-1), q.norm(dim=-1))  # a rotation
    torch.testing.assert_close(rotated[..., 0, :], q[..., 0, :])  # position 0 unchanged
    # relative: <R(m)q, R(n)k> depends on m - n only
    k = torch.randn(1, 1, 1, 8)
    cos5, sin5 = rotary_tables(torch.tensor([5, 7]), 8)
    cos1, sin1 = rotary_tables(torch.tensor([1, 3]), 8)
    a = (apply_rotary(q[..., :1, :], cos5[:1], sin5[:1]) *
         apply_rotary(k, cos5[1:], sin5[1:])).sum()
    b = (apply_rotary(q[..., :1, :], cos1[:1], sin1[:1]) *
         apply_rotary(k, cos1[1:], sin1[1:])).sum()
    torch.testing.assert_close(a, b)

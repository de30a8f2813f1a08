"""Llama-style layers of the causal backbones: RMSNorm, rotary embeddings (both layouts)
and the options of the blocks."""
import pytest
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


def test_interleaved_rotary_is_the_complex_rotation_of_dim_pairs():
    # Meta's formulation (the reference's): pairs (2i, 2i + 1) as complex numbers times
    # exp(1j * position * base ** (-2i / dh)).
    x = torch.randn(1, 2, 5, 8, dtype=torch.float64)
    positions = torch.arange(3, 8)
    cos, sin = rotary_tables(positions, 8, layout='interleaved')
    freqs = 10000.0**(-torch.arange(0, 8, 2, dtype=torch.float64) / 8)
    turn = torch.polar(torch.ones(5, 4, dtype=torch.float64), positions[:, None] * freqs)
    expected = torch.view_as_real(torch.view_as_complex(x.unflatten(-1, (4, 2))) * turn)
    torch.testing.assert_close(apply_rotary(x, cos, sin, 'interleaved'), expected.flatten(-2))


def test_a_block_of_either_rotary_layout_is_the_other_with_permuted_query_key_rows():
    from ebtvision.models.layers.llama import LlamaBlock
    torch.manual_seed(0)
    dims, heads = 8, 2
    interleaved = LlamaBlock(dims, heads, rotary_layout='interleaved').double()
    half = LlamaBlock(dims, heads, rotary_layout='half').double()
    half.load_state_dict(interleaved.state_dict())
    # Inside each head, the half layout's dim j < dh/2 is the interleaved dim 2j and its
    # dim dh/2 + j is 2j + 1.
    head = dims // heads
    order = torch.cat([torch.arange(0, head, 2), torch.arange(1, head, 2)])
    rows = torch.cat([h * head + order for h in range(heads)])
    with torch.no_grad():
        q, k, v = half.qkv.weight.chunk(3)
        half.qkv.weight.copy_(torch.cat([q[rows], k[rows], v]))
    x = torch.randn(2, 5, dims, dtype=torch.float64)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    outs = []
    for block in (interleaved, half):
        cos, sin = rotary_tables(torch.arange(5), head, layout=block.rotary_layout)
        outs.append(block(x, cos, sin, mask)[0])
    torch.testing.assert_close(outs[0], outs[1])


def test_norm_eps_and_xavier_init_reach_every_layer():
    from ebtvision.models.layers.llama import LlamaBlock
    torch.manual_seed(0)
    block = LlamaBlock(64, 2, mlp_ratio=1.5, norm_eps=1e-3, weight_init='xavier')
    assert block.attn_norm.eps == block.mlp_norm.eps == 1e-3
    # q, k and v each get the std of a separate 64 -> 64 layer, sqrt(2 / (64 + 64)).
    for part in block.qkv.weight.chunk(3):
        assert abs(part.std().item() / (1 / 8) - 1) < 0.05
    assert abs(block.mlp.down.weight.std().item() / (1 / 8) - 1) < 0.05
    default = LlamaBlock(64, 2)  # PyTorch's uniform init: std 1 / sqrt(3 * fan_in)
    assert abs(default.qkv.weight.std().item() * (3 * 64)**0.5 - 1) < 0.05
    with pytest.raises(ValueError, match='rotary_layout'):
        LlamaBlock(8, 2, rotary_layout='pairs')
    with pytest.raises(ValueError, match='weight_init'):
        LlamaBlock(8, 2, weight_init='he')

"""Fused layers: custom autograd Functions (gradcheck / gradgradcheck in float64) and the
equivalence of the adaLN block with a plain nn.LayerNorm / nn.GELU composition, up to the
second-order parameter gradients of an EBT step."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ebtvision.models.layers import AdaLNBlock, AdaLNFinalLayer, SelfAttention
from ebtvision.models.layers.functional import gelu_tanh, layer_norm_modulate
from ebtvision.models.layers.fused_block import fused_adaln_block, reference_adaln_block

B, N, D, HEADS, HIDDEN = 2, 3, 8, 2, 12
EPS = (1e-6, 1e-5)  # distinct epsilons so that a swap would show


def f64(*shape, scale=0.5, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return (torch.randn(*shape, dtype=torch.float64) * scale).requires_grad_()


def block_inputs(rows, seed=0):
    torch.manual_seed(seed)
    return [f64(B, N, D), f64(rows, 6 * D), f64(3 * D, D), f64(3 * D), f64(D, D), f64(D),
            f64(HIDDEN, D), f64(HIDDEN), f64(D, HIDDEN), f64(D)]


# ----------------------------------------------------------------------------- GELU
def test_gelu_tanh_matches_pytorch_and_is_twice_differentiable():
    x = f64(3, 4, 5, scale=2.0, seed=0)
    torch.testing.assert_close(gelu_tanh(x), F.gelu(x, approximate='tanh'))
    assert torch.autograd.gradcheck(gelu_tanh, (x, ))
    assert torch.autograd.gradgradcheck(gelu_tanh, (x, ))
    with torch.no_grad():  # inference path: plain F.gelu
        torch.testing.assert_close(gelu_tanh(x), F.gelu(x, approximate='tanh'))


# ----------------------------------------------------------------------------- LN + modulate
@pytest.mark.parametrize('rows', [1, B])
def test_layer_norm_modulate_gradcheck(rows):
    torch.manual_seed(1)
    x, shift, scale = f64(B, N, D), f64(rows, D), f64(rows, D)

    def fn(x, shift, scale):
        return layer_norm_modulate(x, shift, scale, 1e-5)

    expected = F.layer_norm(x, (D, ), eps=1e-5) * (1 + scale[:, None]) + shift[:, None]
    torch.testing.assert_close(fn(x, shift, scale), expected)
    assert torch.autograd.gradcheck(fn, (x, shift, scale))
    assert torch.autograd.gradgradcheck(fn, (x, shift, scale))


def test_layer_norm_modulate_input_only_second_order():
    """The path EBT takes: a create_graph gradient w.r.t. x only (scale/shift grads
    skipped in the first backward), then second-order gradients for everything."""
    torch.manual_seed(2)
    x, shift, scale = f64(B, N, D), f64(1, D), f64(1, D)
    weight = torch.randn(B, N, D, dtype=torch.float64)

    def input_grad(x, shift, scale, op):
        return torch.autograd.grad((op(x, shift, scale) * weight).sum(), x,
                                   create_graph=True)[0]

    def plain(x, shift, scale):
        return F.layer_norm(x, (D, ), eps=1e-6) * (1 + scale[:, None]) + shift[:, None]

    assert torch.autograd.gradcheck(lambda *a: input_grad(*a, layer_norm_modulate),
                                    (x, shift, scale))
    torch.testing.assert_close(input_grad(x, shift, scale, layer_norm_modulate),
                               input_grad(x, shift, scale, plain))


# ----------------------------------------------------------------------------- fused block
@pytest.mark.parametrize('rows', [1, B])
def test_fused_block_forward_and_first_order(rows):
    inputs = block_inputs(rows)

    def fused(*a):
        return fused_adaln_block(*a, HEADS, *EPS)

    torch.testing.assert_close(fused(*inputs), reference_adaln_block(*inputs, HEADS, *EPS))
    assert torch.autograd.gradcheck(fused, inputs)


@pytest.mark.parametrize('rows', [1, B])
def test_fused_block_second_order_fast_path(rows):
    """d/d(everything) of the create_graph input gradient: exercises the hand-written
    double backward (_AdaLNBlockBackwardFn) and the injected merged backward."""
    inputs = block_inputs(rows, seed=3)
    weight = torch.randn(B, N, D, dtype=torch.float64)

    def input_grad(*a, block=fused_adaln_block):
        y = block(*a, HEADS, *EPS)
        gx, = torch.autograd.grad((y * weight).sum(), a[0], create_graph=True)
        return gx

    gx = input_grad(*inputs)
    assert type(gx.grad_fn).__name__ == '_AdaLNBlockBackwardFnBackward'  # not the fallback
    torch.testing.assert_close(gx, input_grad(*inputs, block=reference_adaln_block))
    assert torch.autograd.gradcheck(input_grad, inputs)


def test_fused_block_gradgradcheck_all_inputs():
    """create_graph w.r.t. all inputs takes the recompute fallback; still exact."""
    torch.manual_seed(4)
    dims, hidden = 4, 6
    inputs = [f64(2, 2, dims), f64(1, 6 * dims), f64(3 * dims, dims), f64(3 * dims),
              f64(dims, dims), f64(dims), f64(hidden, dims), f64(hidden), f64(dims, hidden),
              f64(dims)]
    assert torch.autograd.gradgradcheck(lambda *a: fused_adaln_block(*a, HEADS, *EPS), inputs)


# ----------------------------------------------------------------------------- AdaLNBlock
class PlainBlock(nn.Module):
    """The block written with stock modules (nn.LayerNorm, nn.GELU), sharing weights."""

    def __init__(self, block: AdaLNBlock):
        super().__init__()
        self.block = block
        dims = block.norm1.normalized_shape[0]
        self.norm1 = nn.LayerNorm(dims, elementwise_affine=False, eps=block.norm1.eps)
        self.norm2 = nn.LayerNorm(dims, elementwise_affine=False, eps=block.norm2.eps)
        self.act = nn.GELU(approximate='tanh')

    def attention(self, x):
        attn = self.block.attn
        batch, tokens, dims = x.shape
        heads = attn.num_heads
        q, k, v = attn.qkv(x).reshape(batch, tokens, 3, heads, dims // heads).permute(
            2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-1, -2) / (dims // heads)**0.5, dim=-1)
        return attn.proj((probs @ v).transpose(1, 2).reshape(batch, tokens, dims))

    def forward(self, x, cond):
        blk = self.block
        sa, ca, ga, sm, cm, gm = blk.adaLN_modulation(cond).unsqueeze(1).chunk(6, dim=-1)
        x = x + ga * self.attention(self.norm1(x) * (1 + ca) + sa)
        hidden = blk.mlp[2](self.act(blk.mlp[0](self.norm2(x) * (1 + cm) + sm)))
        return x + gm * hidden


def ebt_step(module, x0, cond, target, alpha=0.7):
    """Energy, its input gradient with create_graph, update, loss, backward."""
    module.zero_grad(set_to_none=True)
    cond.grad = None
    x = x0.clone().requires_grad_()
    out = module(x, cond)
    energy = (out**2).sum() + out.sum()
    grad, = torch.autograd.grad(energy, x, create_graph=True)
    F.smooth_l1_loss(x - alpha * grad, target).backward()
    return (out.detach(), grad.detach(), [p.grad.clone() for p in module.parameters()],
            cond.grad.clone())


@pytest.mark.parametrize('rows', [1, 3])
def test_adaln_block_matches_plain_modules_to_second_order(rows):
    torch.manual_seed(5)
    block = AdaLNBlock(D, HEADS, mlp_ratio=1.5).double()
    with torch.no_grad():
        for param in block.parameters():  # adaLN-Zero starts at identity: perturb
            param.normal_(0.0, 0.3)
    plain = PlainBlock(block)
    cond = nn.Parameter(torch.randn(rows, D, dtype=torch.float64))
    x0 = torch.randn(3, 5, D, dtype=torch.float64)
    target = torch.randn_like(x0)
    ours = ebt_step(block, x0, cond, target)
    theirs = ebt_step(plain, x0, cond, target)
    tol = dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours[0], theirs[0], **tol)  # output
    torch.testing.assert_close(ours[1], theirs[1], **tol)  # dE/dx
    for mine, ref in zip(ours[2], theirs[2]):  # second-order parameter gradients
        torch.testing.assert_close(mine, ref, **tol)
    torch.testing.assert_close(ours[3], theirs[3], **tol)  # condition gradient
    # first-order training (DiT) and inference agree too
    block.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_()
    (block(x, cond)**2).sum().backward()
    first = [p.grad.clone() for p in block.parameters()] + [x.grad]
    block.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_()
    (plain(x, cond)**2).sum().backward()
    for mine, ref in zip(first, [p.grad for p in block.parameters()] + [x.grad]):
        torch.testing.assert_close(mine, ref, **tol)
    with torch.no_grad():
        torch.testing.assert_close(block(x0, cond), theirs[0], **tol)


def test_adaln_block_create_graph_for_a_parameter():
    """A create_graph gradient w.r.t. a weight (not just x) uses the recompute fallback."""
    torch.manual_seed(8)
    block = AdaLNBlock(D, HEADS, mlp_ratio=1.5).double()
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0.0, 0.3)
    plain = PlainBlock(block)
    cond = torch.randn(1, D, dtype=torch.float64)
    x = torch.randn(2, 3, D, dtype=torch.float64, requires_grad=True)
    results = []
    for module in (block, plain):
        weight = block.mlp[0].weight
        gx, gw = torch.autograd.grad((module(x, cond)**2).sum(), (x, weight),
                                     create_graph=True)
        results.append(torch.autograd.grad(gx.sum() + (gw**2).sum(),
                                           [x] + list(block.parameters())))
    for mine, ref in zip(*results):
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-10)


def test_final_layer_matches_plain_modules():
    torch.manual_seed(6)
    layer = AdaLNFinalLayer(D, 2).double()
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0.0, 0.3)
    x = torch.randn(2, 4, D, dtype=torch.float64, requires_grad=True)
    cond = torch.randn(1, D, dtype=torch.float64)
    shift, scale = layer.adaLN_modulation(cond).chunk(2, dim=-1)
    norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
    expected = layer.linear(norm(x) * (1 + scale[:, None]) + shift[:, None])
    torch.testing.assert_close(layer(x, cond), expected, rtol=1e-12, atol=1e-12)
    g1, = torch.autograd.grad(layer(x, cond).sum(), x, create_graph=True)
    g2, = torch.autograd.grad(expected.sum(), x, create_graph=True)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)


def test_self_attention_module_unchanged():
    torch.manual_seed(7)
    attn = SelfAttention(D, HEADS).double()
    x = torch.randn(2, 4, D, dtype=torch.float64)
    q, k, v = attn.qkv(x).reshape(2, 4, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
    expected = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 4, D)
    torch.testing.assert_close(attn(x), attn.proj(expected))

"""AdaLNBlock and AdaLNFinalLayer equal a plain nn.LayerNorm / nn.GELU composition, up to
the second-order parameter gradients of an EBT step."""
import pytest
import torch
import torch.nn.functional as F
from conftest import LAYER_SIZES
from torch import nn

from ebtvision.models.layers import AdaLNBlock, AdaLNFinalLayer

B, N, D, HEADS, HIDDEN = LAYER_SIZES


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


def test_unfused_block_is_the_same_function_to_second_order():
    """``fused=False`` runs the plain modules (math attention kernel when second order)."""
    torch.manual_seed(6)
    fused = AdaLNBlock(D, HEADS, mlp_ratio=1.5).double()
    with torch.no_grad():
        for param in fused.parameters():
            param.normal_(0.0, 0.3)
    plain = AdaLNBlock(D, HEADS, mlp_ratio=1.5, fused=False).double()
    plain.load_state_dict(fused.state_dict())
    cond = nn.Parameter(torch.randn(1, D, dtype=torch.float64))
    x0 = torch.randn(2, 5, D, dtype=torch.float64)
    target = torch.randn_like(x0)
    ours, theirs = ebt_step(fused, x0, cond, target), ebt_step(plain, x0, cond, target)
    for mine, ref in zip(ours[:2] + tuple(ours[2]), theirs[:2] + tuple(theirs[2])):
        torch.testing.assert_close(mine, ref, rtol=1e-10, atol=1e-10)

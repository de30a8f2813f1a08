"""Custom autograd Functions of layers/functional.py (GELU, LayerNorm + modulate):
gradcheck / gradgradcheck in float64 against the stock PyTorch ops."""
import pytest
import torch
import torch.nn.functional as F
from conftest import LAYER_SIZES, f64

from ebtvision.models.layers.functional import gelu_tanh, layer_norm_modulate

B, N, D, HEADS, HIDDEN = LAYER_SIZES


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

"""The fused adaLN block Function against its reference composition: forward, first and
second order (gradcheck / gradgradcheck in float64)."""
import pytest
import torch
from conftest import LAYER_SIZES, f64

from ebtvision.models.layers.fused_block import fused_adaln_block, reference_adaln_block

B, N, D, HEADS, HIDDEN = LAYER_SIZES
EPS = (1e-6, 1e-5)  # distinct epsilons so that a swap would show


def block_inputs(rows, seed=0):
    torch.manual_seed(seed)
    return [f64(B, N, D), f64(rows, 6 * D), f64(3 * D, D), f64(3 * D), f64(D, D), f64(D),
            f64(HIDDEN, D), f64(HIDDEN), f64(D, HIDDEN), f64(D)]


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

"""Twice-differentiable element-wise ops with hand-derived double backward.

EBT training differentiates through the energy gradient: every op of the energy model
runs forward, backward (``create_graph=True``) and then backward through that backward.
PyTorch's generic double-backward formulas for ``LayerNorm`` and tanh-``GELU`` are
composites of a dozen or more full-size element-wise ops each (``cosh``, ``pow``,
broadcast ``mul``...), and on CPU those passes and their temporaries cost more than the
matrix products. The ops here compute exactly the same math (float32, no approximation),
but their backward is itself an ``autograd.Function`` with a compact closed-form backward
(forward, backward and double backward; a third derivative raises).

The adaLN block itself uses :mod:`.fused_block`, which fuses these with the rest of the
block; the functions here serve the final layer, inference, and anyone composing layers.

Public functions:

* :func:`gelu_tanh` -- ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``, the same as
  ``F.gelu(x, approximate='tanh')``.
* :func:`layer_norm_modulate` -- ``LayerNorm(x) * (1 + scale) + shift`` with a
  non-affine LayerNorm over the last dim and ``scale``/``shift`` of shape ``(R, D)``,
  ``R`` = 1 (one condition for the whole batch) or the batch size.

Both fall back to the plain PyTorch ops when nothing requires a gradient.
"""
import math

import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable

__all__ = ['gelu_tanh', 'layer_norm_modulate']

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715


def _will_compute(ctx, index: int) -> bool:
    """Whether the gradient of the ``index``-th tensor input is needed by this backward.

    ``ctx.needs_input_grad`` only says whether the input requires grad. Inside
    ``torch.autograd.grad(E, x)`` (the first backward of the thinking step) the gradients
    of the adaLN scales are never used, so asking the engine whether it will run the
    node they flow into saves their reductions. Falls back to ``True`` whenever the
    engine cannot tell (leaf inputs during ``autograd.grad``, older PyTorch).
    """
    if not ctx.needs_input_grad[index]:
        return False
    node = ctx.next_functions[index][0]
    if node is None:
        return False
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):
        return True


def _sum_to_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """Reduce a (B, N, D) tensor to the (rows, D) shape of a broadcast condition."""
    if rows == 1:
        return t.sum(dim=(0, 1)).unsqueeze(0)
    return t.sum(dim=1)


# --------------------------------------------------------------------------------------
# GELU, tanh approximation
# --------------------------------------------------------------------------------------
# With s = sigmoid(2u) = (1 + tanh u) / 2, u = c (x + k x^3), v = 2 u' = 2c + 6ck x^2:
#   y   = x s
#   y'  = s + x v s (1 - s)
#   y'' = s (1 - s) [2v + 12ck x^2 + (1 - 2s) x v^2] = s (1 - s) [4 (v - c) + (1 - 2s) x v^2]
# The element-wise chains run over row blocks so that their temporaries stay in cache.

_CHUNK_ELEMENTS = 1 << 17
_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_C2 = 2.0 * _SQRT_2_OVER_PI
_C6K = 6.0 * _KAPPA * _SQRT_2_OVER_PI


def _row_blocks(t: torch.Tensor):
    """Yield slices over the rows of a 2-D tensor, about ``_CHUNK_ELEMENTS`` each."""
    rows, cols = t.shape
    step = max(1, min(rows, _CHUNK_ELEMENTS // max(cols, 1)))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _scratch(t: torch.Tensor, count: int):
    step = max(1, min(t.shape[0], _CHUNK_ELEMENTS // max(t.shape[1], 1)))
    return [t.new_empty((step, t.shape[1])) for _ in range(count)]


def _gelu_sigmoid(xc: torch.Tensor, out: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """``s = sigmoid(2u(x))`` into ``out`` (a row block)."""
    torch.addcmul(c2, xc, xc, value=_C2 * _KAPPA, out=out)  # 2c (1 + k x^2)
    return out.mul_(xc).sigmoid_()


def _gelu_forward(x: torch.Tensor) -> torch.Tensor:
    """``y`` for a 2-D input (``s`` is recomputed by the backward rather than stored)."""
    out = torch.empty_like(x)
    (buf_s, ) = _scratch(x, 1)
    c2 = x.new_tensor(_C2)
    for rows in _row_blocks(x):
        xc = x[rows]
        sc = _gelu_sigmoid(xc, buf_s[:xc.shape[0]], c2)
        torch.mul(xc, sc, out=out[rows])
    return out


def _gelu_derivative(x: torch.Tensor) -> torch.Tensor:
    """``y'(x)``."""
    deriv = torch.empty_like(x)
    (buf_s, ) = _scratch(x, 1)
    c2 = x.new_tensor(_C2)
    for rows in _row_blocks(x):
        xc, dc = x[rows], deriv[rows]
        sc = _gelu_sigmoid(xc, buf_s[:xc.shape[0]], c2)
        torch.addcmul(c2, xc, xc, value=_C6K, out=dc)  # v
        dc.mul_(xc)  # x v
        _sigmoid_backward(dc, sc, grad_input=dc)  # x v s (1 - s)
        dc.add_(sc)
    return deriv


def _gelu_first_and_second(grad_out: torch.Tensor, x: torch.Tensor):
    """``(grad_out * y', grad_out * y'', y')`` in one sweep over row blocks.

    Computed in the first backward while ``x`` is loaded anyway, so that the double
    backward is two products: ``gg_out = gg_x * y'`` and ``grad_x = gg_x * (grad_out y'')``.
    """
    grad_x = torch.empty_like(x)
    curv = torch.empty_like(x)
    deriv = torch.empty_like(x)
    buf_s, buf_v, buf_xv = _scratch(x, 3)
    c2 = x.new_tensor(_C2)
    one = x.new_tensor(1.0)
    for rows in _row_blocks(x):
        xc, gc = x[rows], grad_out[rows]
        n = xc.shape[0]
        v, xv = buf_v[:n], buf_xv[:n]
        dc, cc = deriv[rows], curv[rows]
        sc = _gelu_sigmoid(xc, buf_s[:n], c2)
        torch.addcmul(c2, xc, xc, value=_C6K, out=v)  # v
        torch.mul(xc, v, out=xv)  # x v
        _sigmoid_backward(xv, sc, grad_input=dc)
        dc.add_(sc)  # y'
        torch.mul(gc, dc, out=grad_x[rows])
        torch.sub(one, sc, alpha=2.0, out=cc)  # 1 - 2s
        cc.mul_(xv).add_(4.0).mul_(v).sub_(4.0 * _SQRT_2_OVER_PI)  # 4 (v - c) + (1-2s) x v^2
        _sigmoid_backward(cc, sc, grad_input=cc)  # y''
        cc.mul_(gc)
    return grad_x, curv, deriv


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1]) if t.dim() != 2 else t


class _GeluTanh(Function):

    @staticmethod
    def forward(ctx, x):
        out = _gelu_forward(_as_rows(x.contiguous()))
        ctx.save_for_backward(x)
        ctx.deriv = None
        return out.view(x.shape)

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: the backward must be differentiable
            return _GeluTanhBackward.apply(grad_out, x, ctx)
        if ctx.deriv is None:
            ctx.deriv = _gelu_derivative(_as_rows(x.detach().contiguous()))
        return grad_out * ctx.deriv.view(grad_out.shape)


class _GeluTanhBackward(Function):
    """``grad_x = grad_out * y'(x)``, differentiable in ``grad_out`` and ``x``.

    The forward also stores ``curv = grad_out * y''(x)`` and ``deriv = y'(x)`` (the latter
    on the forward node too, which runs again in the double backward), so the double
    backward is ``(gg * y', gg * curv)``.
    """

    @staticmethod
    def forward(ctx, grad_out, x, forward_ctx):
        shape = grad_out.shape
        grad_x, curv, deriv = _gelu_first_and_second(
            _as_rows(grad_out.contiguous()), _as_rows(x.contiguous()))
        forward_ctx.deriv = deriv
        ctx.save_for_backward(curv, deriv)
        return grad_x.view(shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_grad_x):
        curv, deriv = ctx.saved_tensors
        shape = grad_grad_x.shape
        gg = _as_rows(grad_grad_x.contiguous())
        gg_out = (gg * deriv).view(shape) if ctx.needs_input_grad[0] else None
        gg_x = (gg * curv).view(shape) if ctx.needs_input_grad[1] else None
        return gg_out, gg_x, None


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """``F.gelu(x, approximate='tanh')`` with a cheap, exact double backward."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        return F.gelu(x, approximate='tanh')
    return _GeluTanh.apply(x)


# --------------------------------------------------------------------------------------
# LayerNorm (no affine) + adaLN modulation
# --------------------------------------------------------------------------------------
# n = (x - mean) * r,  r = 1 / sqrt(var + eps),  y = n * (1 + s) + b
# Per row, the Jacobian dn/dx is J = r (I - 1 1^T / D - n n^T / D), which is symmetric, so
# the first backward is gx = J gn with gn = gy * (1 + s); gs = sum_rows gy * n; gb = sum gy.
# Second order (adjoint u of gx, w = gn; bars: row means; a = mean(n u), c = mean(n w)):
#   d<u, J w>/dx = -r^2 [c (u - mean u) + a (w - mean w) + n (mean(u w) - mean u mean w - 3 a c)]


def _layer_norm_jvp(v: torch.Tensor, x: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor):
    """``J v`` (= ``J^T v``) for the non-affine LayerNorm of ``x``, via the fused kernel."""
    return torch.ops.aten.native_layer_norm_backward(v, x, (x.shape[-1], ), mean, rstd, None,
                                                     None, (True, False, False))[0]


class _LayerNormModulate(Function):

    @staticmethod
    def forward(ctx, x, scale, shift, eps):
        normed, mean, rstd = torch.native_layer_norm(x, (x.shape[-1], ), None, None, eps)
        scale1p = (scale + 1.0).unsqueeze(1)
        out = torch.addcmul(shift.unsqueeze(1), normed, scale1p)
        ctx.save_for_backward(x, scale, normed, mean, rstd, scale1p)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, scale, normed, mean, rstd, scale1p = ctx.saved_tensors
        need_scale = _will_compute(ctx, 1)
        need_shift = _will_compute(ctx, 2)
        if torch.is_grad_enabled():
            grad_x, grad_scale, grad_shift = _LayerNormModulateBackward.apply(
                grad_out, x, scale, normed, mean, rstd, scale1p, need_scale, need_shift)
            return grad_x, grad_scale, grad_shift, None
        rows = scale.shape[0]
        grad_x = _layer_norm_jvp(grad_out * scale1p, x, mean, rstd) \
            if ctx.needs_input_grad[0] else None
        grad_scale = _sum_to_rows(grad_out * normed, rows) if need_scale else None
        grad_shift = _sum_to_rows(grad_out, rows) if need_shift else None
        return grad_x, grad_scale, grad_shift, None


class _LayerNormModulateBackward(Function):
    """First backward of :class:`_LayerNormModulate` as a function of ``(grad_out, x, scale)``.

    ``normed``, ``mean``, ``rstd``, ``scale1p`` are constant caches computed from ``x`` and
    ``scale``; their dependence is part of the hand-written double backward.
    """

    @staticmethod
    def forward(ctx, grad_out, x, scale, normed, mean, rstd, scale1p, need_scale, need_shift):
        rows = scale.shape[0]
        grad_normed = grad_out * scale1p
        grad_x = _layer_norm_jvp(grad_normed, x, mean, rstd)
        grad_scale = _sum_to_rows(grad_out * normed, rows) if need_scale else None
        grad_shift = _sum_to_rows(grad_out, rows) if need_shift else None
        ctx.save_for_backward(grad_out, x, normed, mean, rstd, scale1p, grad_normed)
        ctx.rows = rows
        ctx.set_materialize_grads(False)
        return grad_x, grad_scale, grad_shift

    @staticmethod
    @once_differentiable
    def backward(ctx, u, grad_grad_scale, grad_grad_shift):
        grad_out, x, normed, mean, rstd, scale1p, w = ctx.saved_tensors
        rows = ctx.rows
        need_gy, need_x, need_scale = ctx.needs_input_grad[:3]
        gg_out = gg_x = gg_scale = None
        if u is not None:
            ju = _layer_norm_jvp(u, x, mean, rstd)
            if need_gy:
                gg_out = ju * scale1p
            if need_scale:
                gg_scale = _sum_to_rows(ju.mul_(grad_out), rows)
            if need_x:
                u_mean = u.mean(-1, keepdim=True)
                w_mean = w.mean(-1, keepdim=True)
                a = (normed * u).mean(-1, keepdim=True)
                c = (normed * w).mean(-1, keepdim=True)
                uw = (u * w).mean(-1, keepdim=True)
                r2 = rstd * rstd
                k = (uw - u_mean * w_mean - 3.0 * a * c).mul_(r2).neg_()
                const = (u_mean * c + w_mean * a).mul_(r2)
                gg_x = u * c.mul(r2).neg_()
                gg_x.addcmul_(w, a.mul(r2).neg_())
                gg_x.addcmul_(normed, k)
                gg_x.add_(const)
        if grad_grad_scale is not None:
            # grad_scale = sum_rows grad_out * normed
            sigma = grad_grad_scale.unsqueeze(1)
            if need_gy:
                term = normed * sigma
                gg_out = term if gg_out is None else gg_out.add_(term)
            if need_x:
                term = _layer_norm_jvp(grad_out * sigma, x, mean, rstd)
                gg_x = term if gg_x is None else gg_x.add_(term)
        if grad_grad_shift is not None and need_gy:
            beta = grad_grad_shift.unsqueeze(1)
            gg_out = beta.expand_as(grad_out).clone() if gg_out is None else gg_out.add_(beta)
        return gg_out, gg_x, gg_scale, None, None, None, None, None, None


def layer_norm_modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                        eps: float = 1e-6) -> torch.Tensor:
    """``F.layer_norm(x, (D,), eps=eps) * (1 + scale[:, None]) + shift[:, None]``.

    Args:
        x: Tokens, shape ``(B, N, D)``.
        shift: Shape ``(R, D)`` with ``R`` 1 or ``B``.
        scale: Shape ``(R, D)``.
        eps: LayerNorm epsilon.
    """
    if x.dim() != 3 or scale.dim() != 2 or shift.shape != scale.shape:
        raise ValueError('layer_norm_modulate expects x (B, N, D) and shift/scale (R, D), '
                         f'got {tuple(x.shape)}, {tuple(shift.shape)}, {tuple(scale.shape)}')
    if not (torch.is_grad_enabled() and
            (x.requires_grad or scale.requires_grad or shift.requires_grad)):
        normed = F.layer_norm(x, (x.shape[-1], ), eps=eps)
        return torch.addcmul(shift.unsqueeze(1), normed, (scale + 1.0).unsqueeze(1))
    return _LayerNormModulate.apply(x, scale, shift, eps)

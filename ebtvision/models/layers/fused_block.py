"""The adaLN-Zero transformer block as one autograd node with a hand-written double backward.

EBT training runs every block forward, backward with ``create_graph=True`` (the energy
gradient) and then backward through that backward. Left to autograd, the block becomes
~50 small nodes whose generic double-backward formulas (LayerNorm, softmax, GELU, the
broadcast modulations) materialise many full-size temporaries and accumulate gradients
pairwise; on CPU that element-wise traffic costs more than the matrix products.

Here the block is two ``autograd.Function`` s:

* :class:`_AdaLNBlockFn` -- forward of the block. Besides the output it returns four
  internal activations (``x1`` the residual after attention, ``h`` the MLP pre-activation,
  ``qkv`` in head layout and the attention probabilities ``P``). Nothing outside uses them;
  they exist so that the double backward can hand their adjoints back to this node, which
  then runs *one* merged backward of the forward pass (the same matrix products autograd
  would do, nothing twice).
* :class:`_AdaLNBlockBackwardFn` -- the input gradient of the block (the first backward of
  EBT's thinking step). Its own backward is the reverse of the first backward, derived by
  hand (formulas in the comments), and returns the adjoints of the four activations.

The math is exactly that of the plain block (float32, no approximation); only the order of
floating-point operations differs. :func:`reference_adaln_block` is the plain version; it
is used by the tests and, by recomputation, as the fallback for the one use the fast path
does not cover: a ``create_graph`` backward that asks for more than the input gradient
(e.g. ``autograd.grad(E, [x, weight], create_graph=True)``). A third derivative raises.

Which gradients a backward must produce is asked from the autograd engine
(``_will_compute``): inside ``autograd.grad(E, x)`` no parameter or modulation gradient is
computed. Parameters enter through non-leaf aliases (``weight.view_as(weight)``) because
the engine cannot answer that question for leaves during ``autograd.grad``.
"""
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from .functional import (_gelu_derivative, _gelu_first_and_second, _gelu_forward,
                         _will_compute)

__all__ = ['fused_adaln_block', 'reference_adaln_block']

_softmax_backward = torch._softmax_backward_data


# ----------------------------------------------------------------------------- layouts
def _heads(t: torch.Tensor, parts: int, batch: int, tokens: int, heads: int) -> torch.Tensor:
    """(B*N, parts*D) -> (parts, B*H, N, dh), one copy."""
    dh = t.shape[-1] // (parts * heads)
    return t.view(batch, tokens, parts, heads, dh).permute(2, 0, 3, 1, 4).reshape(
        parts, batch * heads, tokens, dh)


def _tokens(t: torch.Tensor, batch: int, tokens: int, heads: int) -> torch.Tensor:
    """(parts, B*H, N, dh) -> (B*N, parts*D), one copy."""
    parts, _, _, dh = t.shape
    return t.view(parts, batch, heads, tokens, dh).permute(1, 3, 0, 2, 4).reshape(
        batch * tokens, parts * heads * dh)


def _rows_sum(t: torch.Tensor, rows: int) -> torch.Tensor:
    """(B, N, D) -> (rows, D): the gradient of a (rows, 1, D) broadcast operand."""
    if rows == 1:
        return t.sum(dim=(0, 1)).unsqueeze(0)
    return t.sum(dim=1)


def _rows_dot(a: torch.Tensor, b: torch.Tensor, rows: int) -> torch.Tensor:
    """sum over the broadcast rows of ``a * b``."""
    return _rows_sum(a * b, rows)


def _mean_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row mean of ``a * b`` over the last dim, keepdim."""
    return torch.linalg.vecdot(a, b).unsqueeze(-1).div_(a.shape[-1])


def _split_mod(mod: torch.Tensor):
    """(R, 6D) -> six (R, 1, D) views: shift/scale/gate of attention, then of the MLP."""
    return [c.unsqueeze(1) for c in mod.chunk(6, dim=-1)]


# ----------------------------------------------------------------------------- LayerNorm
# n = (x - mean) r, r = 1 / sqrt(var + eps). Per row dn/dx = J = r (I - 11^T/D - n n^T/D),
# symmetric. First backward: J w = r (w - mean(w) - n mean(n w)).
# Second order, for the scalar <u, J(x) w> with w fixed:
#   d/dx = -r^2 [c (u - mean u) + a (w - mean w) + n (mean(u w) - mean u mean w - 3 a c)]
#   with a = mean(n u), c = mean(n w).


def _ln_backward_stats(w, n, r):
    """``J w`` and the row statistics ``(mean w, mean(n w))`` the second order reuses."""
    w_mean = w.mean(-1, keepdim=True)
    c = _mean_dot(n, w)
    gx = torch.addcmul(w, n, c, value=-1.0)
    gx.sub_(w_mean).mul_(r)
    return gx, w_mean, c


def _ln_backward(w, x, mean, rstd):
    """``J w`` with the fused ATen kernel (when no statistics are needed)."""
    return torch.ops.aten.native_layer_norm_backward(w, x, (x.shape[-1], ), mean, rstd, None,
                                                     None, (True, False, False))[0]


def _ln_second(u, n, r, w, w_mean, c, need_ju: bool, need_x: bool):
    """``(J u, d<u, J w>/dx)`` for the adjoint ``u`` of ``J w``."""
    u_mean = u.mean(-1, keepdim=True)
    a = _mean_dot(n, u)
    ju = None
    if need_ju:
        ju = torch.addcmul(u, n, a, value=-1.0)
        ju.sub_(u_mean).mul_(r)
    gx = None
    if need_x:
        uw = _mean_dot(u, w)
        r2 = r * r
        k = (uw - u_mean * w_mean - 3.0 * a * c).mul_(r2).neg_()
        gx = u * (c * r2).neg_()
        gx.addcmul_(w, (a * r2).neg_())
        gx.addcmul_(n, k)
        gx.add_((u_mean * c + w_mean * a).mul_(r2))
    return ju, gx


# ----------------------------------------------------------------------------- forward
def _forward(x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2, heads, eps1,
             eps2):
    batch, tokens, dims = x.shape
    total = batch * tokens
    dh = dims // heads
    shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = _split_mod(mod)
    n1, mean1, r1 = torch.native_layer_norm(x, (dims, ), None, None, eps1)
    m1 = torch.addcmul(shift_a, n1, scale_a + 1.0)
    qkv = torch.addmm(b_qkv, m1.view(total, dims), w_qkv.t())
    qkvh = _heads(qkv, 3, batch, tokens, heads)
    del qkv
    q, k, v = qkvh.unbind(0)
    scores = torch.baddbmm(q.new_empty(()).expand(q.shape[0], tokens, tokens), q,
                           k.transpose(1, 2), beta=0.0, alpha=dh**-0.5)
    probs = torch.softmax(scores, dim=-1)
    del scores
    o = _tokens(torch.bmm(probs, v).unsqueeze(0), batch, tokens, heads)
    a = torch.addmm(b_proj, o, w_proj.t()).view(batch, tokens, dims)
    x1 = torch.addcmul(x, gate_a, a)
    n2, mean2, r2 = torch.native_layer_norm(x1, (dims, ), None, None, eps2)
    m2 = torch.addcmul(shift_m, n2, scale_m + 1.0)
    h = torch.addmm(b_fc1, m2.view(total, dims), w_fc1.t())
    z = _gelu_forward(h)
    f = torch.addmm(b_fc2, z, w_fc2.t()).view(batch, tokens, dims)
    y = torch.addcmul(x1, gate_m, f)
    saved = SimpleNamespace(n1=n1, mean1=mean1, r1=r1, m1=m1, o=o, a=a, n2=n2, mean2=mean2,
                            r2=r2, m2=m2, z=z, f=f)
    return y, x1, h, qkvh, probs, saved


_CACHE_NAMES = ('n1', 'mean1', 'r1', 'm1', 'o', 'a', 'n2', 'mean2', 'r2', 'm2', 'z', 'f')
_INTER_NAMES = ('gy', 'gh', 'curv', 'deriv', 'gm2', 'w2', 'w2_mean', 'c2', 'gx1', 'g_o', 'gp',
                'delta', 'gs', 'gqkv', 'gm1', 'w1', 'w1_mean', 'c1')
_SECOND_CACHE_NAMES = ('n1', 'r1', 'n2', 'r2')


def _pack(ns, names):
    return [getattr(ns, name) for name in names]


def _unpack(tensors, names):
    return SimpleNamespace(**dict(zip(names, tensors)))


# ----------------------------------------------------------------------------- first order
def _input_grad(gy, x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h, qkvh, probs, c, heads,
                keep: bool):
    """``dL/dx`` of the block for the output gradient ``gy``.

    ``c`` holds the forward caches. With ``keep`` the intermediates the second order needs
    are returned too.
    """
    batch, tokens, dims = x.shape
    total = batch * tokens
    dh = dims // heads
    scale = dh**-0.5
    _, scale_a, gate_a, _, scale_m, gate_m = _split_mod(mod)
    q, k, v = qkvh.unbind(0)
    # y = x1 + g_m f
    gf = gy * gate_m
    gz = torch.mm(gf.view(total, dims), w_fc2)
    # GELU: gh = gz y'(h); keep gz y''(h) and y'(h) for the double backward
    if keep:
        gh, curv, deriv = _gelu_first_and_second(gz, h)
    else:
        deriv = _gelu_derivative(h)
        gh, curv = gz.mul_(deriv), None
    del gz
    gm2 = torch.mm(gh, w_fc1).view(batch, tokens, dims)
    # LN2 + modulation: gx1 = gy + J2 (gm2 (1 + s_m))
    w2 = gm2 * (scale_m + 1.0)
    j2, w2_mean, c2 = _ln_backward_stats(w2, c.n2, c.r2)
    gx1 = j2.add_(gy)
    # x1 = x + g_a a
    ga = gx1 * gate_a
    go = torch.mm(ga.view(total, dims), w_proj)
    del ga
    # attention
    g_o = _heads(go, 1, batch, tokens, heads)[0]
    del go
    gp = torch.bmm(g_o, v.transpose(1, 2))
    delta = torch.linalg.vecdot(gp, probs).unsqueeze(-1)  # rowsum(gP * P)
    gs = probs * (gp - delta)
    gqkvh = torch.empty_like(qkvh)
    torch.bmm(gs, k, out=gqkvh[0]).mul_(scale)
    torch.bmm(gs.transpose(1, 2), q, out=gqkvh[1]).mul_(scale)
    torch.bmm(probs.transpose(1, 2), g_o, out=gqkvh[2])
    gqkv = _tokens(gqkvh, batch, tokens, heads)
    del gqkvh
    gm1 = torch.mm(gqkv, w_qkv).view(batch, tokens, dims)
    w1 = gm1 * (scale_a + 1.0)
    j1, w1_mean, c1 = _ln_backward_stats(w1, c.n1, c.r1)
    gx = j1.add_(gx1)
    if not keep:
        return gx, None
    inter = SimpleNamespace(gy=gy, gh=gh, curv=curv, deriv=deriv, gm2=gm2, w2=w2,
                            w2_mean=w2_mean, c2=c2, gx1=gx1, g_o=g_o, gp=gp, delta=delta,
                            gs=gs, gqkv=gqkv, gm1=gm1, w1=w1, w1_mean=w1_mean, c1=c1)
    return gx, inter


def _merged_backward(gy, g_x1, g_h, g_qkvh, g_probs, x, mod, w_qkv, w_proj, w_fc1, w_fc2,
                     x1, h, qkvh, probs, c, heads, deriv, need):
    """First-order backward of the forward pass, with adjoints injected at the four
    activations. ``need`` flags: x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1,
    w_fc2, b_fc2. Returns the gradients (None where not needed)."""
    batch, tokens, dims = x.shape
    total = batch * tokens
    dh = dims // heads
    scale = dh**-0.5
    rows = mod.shape[0]
    _, scale_a, gate_a, _, scale_m, gate_m = _split_mod(mod)
    q, k, v = qkvh.unbind(0)
    grads = [None] * 10
    need_mod = need[1]
    mod_grads = [None] * 6

    # --- MLP branch: y = x1 + g_m f
    gx1 = None
    gm2 = None
    gh = g_h
    if gy is not None:
        gx1 = gy if g_x1 is None else gy + g_x1
        if need_mod:
            mod_grads[5] = _rows_dot(gy, c.f, rows)
        gf = (gy * gate_m).view(total, dims)
        if need[9]:
            grads[9] = gf.sum(0)
        if need[8]:
            grads[8] = torch.mm(gf.t(), c.z)
        gz = torch.mm(gf, w_fc2)
        del gf
        if deriv is None:
            deriv = _gelu_derivative(h)
        gh = gz.mul_(deriv) if g_h is None else torch.addcmul(g_h, gz, deriv)
        del gz
    elif g_x1 is not None:
        gx1 = g_x1
    if gh is not None:
        if need[7]:
            grads[7] = gh.sum(0)
        if need[6]:
            grads[6] = torch.mm(gh.t(), c.m2.view(total, dims))
        gm2 = torch.mm(gh, w_fc1).view(batch, tokens, dims)
        del gh
        if need_mod:
            mod_grads[3] = _rows_sum(gm2, rows)
            mod_grads[4] = _rows_dot(gm2, c.n2, rows)
        j2 = _ln_backward(gm2 * (scale_m + 1.0), x1, c.mean2, c.r2)
        gx1 = j2 if gx1 is None else j2.add_(gx1)
    if need_mod and mod_grads[3] is None:
        mod_grads[3] = mod_grads[4] = mod.new_zeros(rows, dims)
    if need_mod and mod_grads[5] is None:
        mod_grads[5] = mod.new_zeros(rows, dims)

    # --- attention branch: x1 = x + g_a a
    g_qkv_heads = g_qkvh
    if gx1 is not None:
        if need_mod:
            mod_grads[2] = _rows_dot(gx1, c.a, rows)
        ga = (gx1 * gate_a).view(total, dims)
        if need[5]:
            grads[5] = ga.sum(0)
        if need[4]:
            grads[4] = torch.mm(ga.t(), c.o)
        go = torch.mm(ga, w_proj)
        del ga
        g_o = _heads(go, 1, batch, tokens, heads)[0]
        del go
        if g_probs is None:
            gp = torch.bmm(g_o, v.transpose(1, 2))
        else:
            gp = torch.baddbmm(g_probs, g_o, v.transpose(1, 2))
        gs = _softmax_backward(gp, probs, -1, probs.dtype)
        del gp
        if g_qkv_heads is None:
            g_qkv_heads = torch.empty_like(qkvh)
            torch.bmm(gs, k, out=g_qkv_heads[0]).mul_(scale)
            torch.bmm(gs.transpose(1, 2), q, out=g_qkv_heads[1]).mul_(scale)
            torch.bmm(probs.transpose(1, 2), g_o, out=g_qkv_heads[2])
        else:  # the injected adjoint is ours (made by the second order for this node only)
            g_qkv_heads[0].baddbmm_(gs, k, alpha=scale)
            g_qkv_heads[1].baddbmm_(gs.transpose(1, 2), q, alpha=scale)
            g_qkv_heads[2].baddbmm_(probs.transpose(1, 2), g_o)
        del gs, g_o
    elif g_probs is not None:
        gs = _softmax_backward(g_probs, probs, -1, probs.dtype)
        if g_qkv_heads is None:
            g_qkv_heads = torch.zeros_like(qkvh)
        g_qkv_heads[0].baddbmm_(gs, k, alpha=scale)
        g_qkv_heads[1].baddbmm_(gs.transpose(1, 2), q, alpha=scale)
    if need_mod and mod_grads[2] is None:
        mod_grads[2] = mod.new_zeros(rows, dims)

    gx = gx1
    if g_qkv_heads is not None:
        gqkv = _tokens(g_qkv_heads, batch, tokens, heads)
        if need[3]:
            grads[3] = gqkv.sum(0)
        if need[2]:
            grads[2] = torch.mm(gqkv.t(), c.m1.view(total, dims))
        gm1 = torch.mm(gqkv, w_qkv).view(batch, tokens, dims)
        del gqkv
        if need_mod:
            mod_grads[0] = _rows_sum(gm1, rows)
            mod_grads[1] = _rows_dot(gm1, c.n1, rows)
        if need[0]:
            j1 = _ln_backward(gm1 * (scale_a + 1.0), x, c.mean1, c.r1)
            gx = j1 if gx is None else j1.add_(gx)
    if need_mod:
        mod_grads = [g if g is not None else mod.new_zeros(rows, dims) for g in mod_grads]
        grads[1] = torch.cat(mod_grads, dim=-1)
    if need[0]:
        grads[0] = gx if gx is not None else torch.zeros_like(x)
    return grads


# ----------------------------------------------------------------------------- second order
def _second_order(u, x, mod, w_qkv, w_proj, w_fc1, w_fc2, qkvh, probs, c, s, heads, need):
    """Reverse of :func:`_input_grad`: the adjoint ``u`` of ``gx`` -> adjoints of its inputs.

    ``need`` flags: gy, x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h, qkvh, probs.
    """
    batch, tokens, dims = x.shape
    total = batch * tokens
    dh = dims // heads
    scale = dh**-0.5
    rows = mod.shape[0]
    _, scale_a, gate_a, _, scale_m, gate_m = _split_mod(mod)
    q, k, v = qkvh.unbind(0)
    need_mod = need[2]
    out = [None] * 11
    mod_grads = [None] * 6

    # R1: gx = gx1 + J1(x) w1, w1 = gm1 (1 + s_a)
    ju1, out[1] = _ln_second(u, c.n1, c.r1, s.w1, s.w1_mean, s.c1, True, need[1])
    if need_mod:
        mod_grads[1] = _rows_dot(ju1, s.gm1, rows)
    ggm1 = ju1.mul_(scale_a + 1.0).view(total, dims)
    # R2: gm1 = gqkv w_qkv
    if need[3]:
        out[3] = torch.mm(s.gqkv.t(), ggm1)
    ggqkv = torch.mm(ggm1, w_qkv.t())
    del ggm1, ju1
    ag = _heads(ggqkv, 3, batch, tokens, heads)  # adjoints of gq, gk, gv
    del ggqkv
    a_q, a_k, a_v = ag.unbind(0)
    # R3: attention. gq = s gS k, gk = s gS^T q, gv = P^T gO, gS = P (gP - delta), gP = gO v^T
    g_qkvh = torch.empty_like(qkvh)
    torch.bmm(s.gs, a_k, out=g_qkvh[0]).mul_(scale)  # from gk
    torch.bmm(s.gs.transpose(1, 2), a_q, out=g_qkvh[1]).mul_(scale)  # from gq
    g_gs = torch.bmm(a_q, k.transpose(1, 2))
    g_gs.baddbmm_(q, a_k.transpose(1, 2)).mul_(scale)  # adjoint of gS
    eps = torch.linalg.vecdot(g_gs, probs).unsqueeze(-1)  # rowsum(G * P)
    g_gp = _softmax_backward(g_gs, probs, -1, probs.dtype)  # P (G - eps)
    # adjoint of P: G (gP - delta) - eps gP + gO a_v^T
    g_probs = torch.sub(s.gp, s.delta).mul_(g_gs)
    g_probs.addcmul_(s.gp, eps, value=-1.0)
    g_probs.baddbmm_(s.g_o, a_v.transpose(1, 2))
    del g_gs, eps
    gg_o = torch.bmm(probs, a_v)
    gg_o.baddbmm_(g_gp, v)
    torch.bmm(g_gp.transpose(1, 2), s.g_o, out=g_qkvh[2])
    del g_gp, ag, a_q, a_k, a_v
    out[9] = g_qkvh
    out[10] = g_probs
    ggo = _tokens(gg_o.unsqueeze(0), batch, tokens, heads)
    del gg_o
    # R4: go = ga w_proj, ga = gx1 g_a
    ga = s.gx1 * gate_a
    if need[4]:
        out[4] = torch.mm(ga.view(total, dims).t(), ggo)
    gga = torch.mm(ggo, w_proj.t()).view(batch, tokens, dims)
    del ggo, ga
    # R5: adjoint of gx1
    if need_mod:
        mod_grads[2] = _rows_dot(s.gx1, gga, rows)
    u2 = torch.addcmul(u, gga, gate_a)
    del gga
    # R6: gx1 = gy + J2(x1) w2, w2 = gm2 (1 + s_m)
    ju2, out[7] = _ln_second(u2, c.n2, c.r2, s.w2, s.w2_mean, s.c2, True, need[7])
    if need_mod:
        mod_grads[4] = _rows_dot(ju2, s.gm2, rows)
    ggm2 = ju2.mul_(scale_m + 1.0).view(total, dims)
    # R7: gm2 = gh w_fc1, gh = gz y'(h), gz = gf w_fc2
    if need[5]:
        out[5] = torch.mm(s.gh.t(), ggm2)
    ggh = torch.mm(ggm2, w_fc1.t())
    del ggm2, ju2
    if need[8]:
        out[8] = ggh * s.curv
    ggz = ggh.mul_(s.deriv)
    gf = s.gy * gate_m
    if need[6]:
        out[6] = torch.mm(gf.view(total, dims).t(), ggz)
    ggf = torch.mm(ggz, w_fc2.t()).view(batch, tokens, dims)
    del ggz, ggh
    # R8: gf = gy g_m
    if need_mod:
        mod_grads[5] = _rows_dot(s.gy, ggf, rows)
        zeros = mod.new_zeros(rows, dims)
        out[2] = torch.cat([zeros, mod_grads[1], mod_grads[2], zeros, mod_grads[4],
                            mod_grads[5]], dim=-1)
    out[0] = u2.addcmul_(ggf, gate_m)
    return out


# ----------------------------------------------------------------------------- Functions
def _alias(t: torch.Tensor) -> torch.Tensor:
    """A non-leaf handle on a parameter, so the backward can ask the engine whether the
    parameter's gradient is wanted (it cannot for leaves inside ``autograd.grad``)."""
    return t.view_as(t) if t.requires_grad else t


class _AdaLNBlockFn(Function):

    @staticmethod
    def forward(ctx, x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2, cfg):
        y, x1, h, qkvh, probs, saved = _forward(x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1,
                                                b_fc1, w_fc2, b_fc2, *cfg)
        ctx.cfg = cfg
        ctx.deriv = None
        ctx.save_for_backward(x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2,
                              x1, h, qkvh, probs, *_pack(saved, _CACHE_NAMES))
        ctx.set_materialize_grads(False)
        return y, x1, h, qkvh, probs

    @staticmethod
    def backward(ctx, gy, g_x1, g_h, g_qkvh, g_probs):
        saved = ctx.saved_tensors
        (x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2, x1, h, qkvh,
         probs) = saved[:14]
        caches = _unpack(saved[14:], _CACHE_NAMES)
        heads = ctx.cfg[0]
        need = [_will_compute(ctx, i) for i in range(10)]
        injections = (g_x1, g_h, g_qkvh, g_probs)
        if torch.is_grad_enabled():
            if gy is None or any(t is not None for t in injections) or any(need[1:]) \
                    or not need[0]:
                return _fallback_backward(saved[:10], ctx.cfg, (gy, ) + injections,
                                          need) + (None, )
            gx = _AdaLNBlockBackwardFn.apply(gy, x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h,
                                             qkvh, probs, caches, ctx)
            return (gx, ) + (None, ) * 10
        grads = _merged_backward(gy, g_x1, g_h.view_as(h) if g_h is not None else None,
                                 g_qkvh, g_probs, x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h,
                                 qkvh, probs, caches, heads, ctx.deriv, need)
        return tuple(grads) + (None, )


class _AdaLNBlockBackwardFn(Function):
    """``gx`` of the block as a function of ``gy``, the inputs and the four activations.

    ``caches`` are the forward's constant caches (LayerNorm statistics, ...), ``block_ctx``
    the forward node, which keeps ``y'(h)`` for its own second run.
    """

    @staticmethod
    def forward(ctx, gy, x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h, qkvh, probs, caches,
                block_ctx):
        heads = block_ctx.cfg[0]
        gx, inter = _input_grad(gy.contiguous(), x, mod, w_qkv, w_proj, w_fc1, w_fc2, x1, h,
                                qkvh, probs, caches, heads, keep=True)
        block_ctx.deriv = inter.deriv
        ctx.heads = heads
        ctx.save_for_backward(x, mod, w_qkv, w_proj, w_fc1, w_fc2, qkvh, probs,
                              *_pack(caches, _SECOND_CACHE_NAMES), *_pack(inter, _INTER_NAMES))
        return gx

    @staticmethod
    @once_differentiable
    def backward(ctx, u):
        saved = ctx.saved_tensors
        x, mod, w_qkv, w_proj, w_fc1, w_fc2, qkvh, probs = saved[:8]
        caches = _unpack(saved[8:12], _SECOND_CACHE_NAMES)
        inter = _unpack(saved[12:], _INTER_NAMES)
        need = list(ctx.needs_input_grad[:11])
        out = _second_order(u.contiguous(), x, mod, w_qkv, w_proj, w_fc1, w_fc2, qkvh, probs,
                            caches, inter, ctx.heads, need)
        out = [o if flag else None for o, flag in zip(out, need)]
        return tuple(out) + (None, None)


def _fallback_backward(inputs, cfg, adjoints, need):
    """Differentiable backward by recomputing the block with plain ops (rare paths)."""
    inputs = list(inputs)
    heads, eps1, eps2 = cfg
    with torch.enable_grad():
        outs = reference_adaln_block(*inputs, heads, eps1, eps2, return_activations=True)
        pairs = [(o, g) for o, g in zip(outs, adjoints) if g is not None]
        wanted = [i for i, t in enumerate(inputs) if need[i] and t.requires_grad]
        grads = [None] * 10
        if pairs and wanted:
            result = torch.autograd.grad([o for o, _ in pairs], [inputs[i] for i in wanted],
                                         [g.view_as(o) for o, g in pairs], create_graph=True,
                                         allow_unused=True)
            for i, g in zip(wanted, result):
                grads[i] = g
    return tuple(grads)


# ----------------------------------------------------------------------------- reference
def reference_adaln_block(x, mod, w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2,
                          heads: int, eps1: float = 1e-6, eps2: float = 1e-6,
                          return_activations: bool = False):
    """The block with plain differentiable PyTorch ops (the definition of the math)."""
    batch, tokens, dims = x.shape
    dh = dims // heads
    shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = _split_mod(mod)
    m1 = F.layer_norm(x, (dims, ), eps=eps1) * (1 + scale_a) + shift_a
    qkv = F.linear(m1, w_qkv, b_qkv)
    qkvh = qkv.reshape(batch, tokens, 3, heads, dh).permute(2, 0, 3, 1, 4).reshape(
        3, batch * heads, tokens, dh)
    q, k, v = qkvh.unbind(0)
    probs = torch.softmax((q @ k.transpose(1, 2)) * dh**-0.5, dim=-1)
    o = (probs @ v).reshape(batch, heads, tokens, dh).transpose(1, 2).reshape(
        batch, tokens, dims)
    x1 = x + gate_a * F.linear(o, w_proj, b_proj)
    m2 = F.layer_norm(x1, (dims, ), eps=eps2) * (1 + scale_m) + shift_m
    h = F.linear(m2, w_fc1, b_fc1)
    y = x1 + gate_m * F.linear(F.gelu(h, approximate='tanh'), w_fc2, b_fc2)
    if return_activations:
        return y, x1, h.reshape(batch * tokens, -1), qkvh, probs
    return y


def fused_adaln_block(x: torch.Tensor, mod: torch.Tensor, w_qkv: torch.Tensor,
                      b_qkv: torch.Tensor, w_proj: torch.Tensor, b_proj: torch.Tensor,
                      w_fc1: torch.Tensor, b_fc1: torch.Tensor, w_fc2: torch.Tensor,
                      b_fc2: torch.Tensor, heads: int, eps1: float = 1e-6,
                      eps2: float = 1e-6) -> torch.Tensor:
    """adaLN-Zero block ``y = x1 + g_m MLP(LN(x1) (1 + s_m) + b_m)``,
    ``x1 = x + g_a Attn(LN(x) (1 + s_a) + b_a)``, as one twice-differentiable node.

    Args:
        x: Tokens ``(B, N, D)``.
        mod: ``(R, 6D)`` with R = 1 or B: shift, scale, gate of the attention branch, then
            of the MLP branch.
        w_qkv, b_qkv, w_proj, b_proj, w_fc1, b_fc1, w_fc2, b_fc2: ``nn.Linear`` weights
            (``(out, in)``) and biases.
        heads: Attention heads.
        eps1, eps2: LayerNorm epsilons.
    """
    params = []
    for weight, bias in ((w_qkv, b_qkv), (w_proj, b_proj), (w_fc1, b_fc1), (w_fc2, b_fc2)):
        params += [_alias(weight),
                   _alias(bias) if bias is not None else weight.new_zeros(weight.shape[0])]
    y, *_ = _AdaLNBlockFn.apply(x.contiguous(), mod, *params, (heads, eps1, eps2))
    return y

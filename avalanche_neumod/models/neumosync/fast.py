"""NeuMoSync's speed paths: the same equations as :mod:`.mechanism`, computed faster.

Each function here computes one equation of :mod:`.mechanism` (numbers as in its
docstring) with fewer or cheaper operations; ``tests/test_neumosync_fast.py`` checks
each against the plain equation, values and gradients. Measured costs are in
docs/neumosync.md ("Parameters and cost").

- :func:`mix_outputs`: eq. (5) by linearity, ``w_inf,i . h = c_theta,i (theta_i . h) +
  c_phi,i (phi_i . h)``, fused with eq. (6) where the modulation sits on the same output;
  cheaper than materialising w_inf for Linear layers of small batches
  (:data:`OUTPUT_MIX_MAX_BATCH`).
- :func:`fold_modulation`: eq. (6) folded into the materialised weights of (5) where the
  modulation sits on the layer's own output: ``gain (w . h + b) + shift = (gain w) . h +
  (gain b + shift)``, so the work is per parameter, not per activation (a conv layer's
  output at batch 128 is 128 x C x H x W values, its weights C x C' x 3 x 3).
- :func:`fold_norm_modulation`: eq. (6) on an affine BatchNorm's output folded into the
  norm's affine parameters: ``gain (gamma x_hat + beta) + shift = (gain gamma) x_hat + (gain
  beta + shift)`` (per channel; x_hat the normalised input, in training and evaluation
  mode alike), so the work is per channel, not per activation.
- :class:`TransposedAttention` and :func:`encoder_layer`: NeuroSync's encoder, eq. (3),
  with the attention core in a transposed layout and a hand-written backward.
  :class:`BlockedTransposedAttention` runs the same attention by blocks of queries above
  :data:`BLOCKED_ATTENTION_MIN_TOKENS` tokens (the ResNet's), P never stored whole.
- :func:`ema_`: eq. (2) as one ``torch._foreach_lerp_``.
- :func:`mean_std`: the two-pass column mean and std of eq. (1)'s activity statistics.
- :func:`neuron_statistics`: eq. (1)'s activity statistics of a conv layer reduced over
  the captured ``(B, w, n, P)`` activity in place, instead of over its transposed
  ``(samples, n)`` copy.
- :func:`prefer_foreach`: the optimizer update of eq. (8) over all tensors at once.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..units import redo_scores_of_means

#: Batch context: a Linear layer mixes outputs (:func:`mix_outputs`) instead of
#: materialising w_inf up to this batch size.
OUTPUT_MIX_MAX_BATCH = 32


def channel_view(alpha: torch.Tensor, out: torch.Tensor, is_conv: bool) -> torch.Tensor:
    """Broadcast ``alpha`` ``(n,)`` or ``(B, n)`` over a layer output (channels dim 1 for
    convs, last dim for linears)."""
    if is_conv:
        return alpha.reshape(*alpha.shape, *([1] * (out.dim() - 2)))
    if alpha.dim() == 1:
        return alpha
    return alpha.reshape(alpha.shape[0], *([1] * (out.dim() - 2)), alpha.shape[1])


def mix_outputs(
    out: torch.Tensor,
    out_phi: Optional[torch.Tensor],
    c_theta: torch.Tensor,
    c_phi: torch.Tensor,
    is_conv: bool,
    gain: Optional[torch.Tensor] = None,
    shift: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Eq. (5) by outputs: ``c_theta (theta . h) + c_phi (phi . h)`` from the layer's outputs
    at theta (``out``) and at phi (``out_phi``; None without consolidation). With
    ``gain``/``shift``, eq. (6) too, in one expression:
    ``(gain c_theta)(theta . h) + (gain c_phi)(phi . h) + shift``, which is
    ``gain (c_theta (theta . h) + c_phi (phi . h)) + shift`` up to rounding."""
    if gain is not None:
        c_theta = gain * c_theta
        c_phi = gain * c_phi
    if shift is None:
        mixed = channel_view(c_theta, out, is_conv) * out
    else:
        mixed = torch.addcmul(
            channel_view(shift, out, is_conv), channel_view(c_theta, out, is_conv), out
        )
    if out_phi is not None:
        mixed = torch.addcmul(mixed, channel_view(c_phi, out, is_conv), out_phi)
    return mixed


def fold_modulation(
    theta_w: torch.Tensor,
    theta_b: torch.Tensor,
    phi_w: Optional[torch.Tensor],
    phi_b: Optional[torch.Tensor],
    c_theta: torch.Tensor,
    c_phi: torch.Tensor,
    gain: torch.Tensor,
    shift: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. (5) and (6) as one layer's weights and bias, per neuron i: ``w = (gain c_theta)_i
    theta_i + (gain c_phi)_i phi_i`` and ``b = (gain c_theta)_i theta_b,i + (gain c_phi)_i
    phi_b,i + shift_i`` (``phi`` None: without consolidation). The layer at (w, b) is
    ``gain (w_inf . h + b_inf) + shift`` by linearity, equal up to rounding."""
    a = gain * c_theta
    shape = (-1,) + (1,) * (theta_w.dim() - 1)
    w = a.reshape(shape) * theta_w
    b = torch.addcmul(shift, a, theta_b)
    if phi_w is not None:
        g = gain * c_phi
        w = torch.addcmul(w, g.reshape(shape), phi_w)
        b = torch.addcmul(b, g, phi_b)
    return w, b


def fold_norm_modulation(
    gamma: torch.Tensor, beta: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (6) folded into a BatchNorm's affine parameters: ``(gain gamma, gain beta +
    shift)`` per channel. The norm at these parameters is ``gain BN(z) + shift``, equal up to
    rounding (the batch or running statistics do not depend on gamma and beta)."""
    return gain * gamma, torch.addcmul(shift, gain, beta)


class TransposedAttention(torch.autograd.Function):
    """``o^T = v^T softmax(scale q k^T)^T`` for ``q^T, k^T, v^T`` given as ``(G, d_h, T)``
    (G = batch x heads); returns ``o^T`` ``(G, d_h, T)``. The attention core of eq. (3)
    (Vaswani et al. 2017, eq. 1) with every matrix product keeping the head size d_h as its
    *first* dimension: on the CPU these products were measured about 4x faster than the same
    products with d_h last (what ``F.scaled_dot_product_attention`` runs) at d_h = 4. The
    backward is written out (``dS = softmax'(dP)``, ``dq^T = scale k^T dS^T``, ``dk^T = scale
    q^T dS``, ``dv^T = do^T P``). Twice differentiable: with ``create_graph`` the backward
    recomputes P inside the graph."""

    @staticmethod
    def forward(ctx, qt: torch.Tensor, kt: torch.Tensor, vt: torch.Tensor, scale: float):
        p = torch.bmm(qt.transpose(1, 2) * scale, kt).softmax(-1)  # (G, T, T)
        ctx.save_for_backward(qt, kt, vt, p)
        ctx.scale = scale
        return torch.bmm(vt, p.transpose(1, 2))

    @staticmethod
    def backward(ctx, dot: torch.Tensor):
        qt, kt, vt, p = ctx.saved_tensors
        if torch.is_grad_enabled():  # double backward: P as a function of q and k
            p = torch.bmm(qt.transpose(1, 2) * ctx.scale, kt).softmax(-1)
        dvt = torch.bmm(dot, p)
        dp = torch.bmm(dot.transpose(1, 2), vt)
        ds = torch.ops.aten._softmax_backward_data(dp, p, -1, p.dtype)
        dqt = torch.bmm(kt, ds.transpose(1, 2)) * ctx.scale
        dkt = torch.bmm(qt, ds) * ctx.scale
        return dqt, dkt, dvt, None


#: Tokens above which :func:`encoder_layer` runs the attention by query blocks
#: (:class:`BlockedTransposedAttention`); below, the whole ``(G, T, T)`` matrix fits the cache.
BLOCKED_ATTENTION_MIN_TOKENS = 512
#: Query rows per block: the ``(G, rows, T)`` block of P stays in the cache.
ATTENTION_BLOCK_ROWS = 64


class BlockedTransposedAttention(torch.autograd.Function):
    """:class:`TransposedAttention` computed by blocks of ``rows`` queries: the same
    ``o^T = v^T softmax(scale q k^T)^T`` (each row of P depends on its own query only), with
    the ``(G, T, T)`` attention matrix never stored: the forward keeps q, k, v and the
    backward recomputes each block's P (``q k^T`` costs ``d_h`` = 4 products per entry,
    less than reading P back). With the ~1,500 neuron tokens of SlimResNet18, P is 36 MB
    per layer and the whole-matrix products run at memory speed; a block stays in the
    cache. ``dk^T`` and ``dv^T`` sum over the blocks (equal up to rounding). The double
    backward (``create_graph``) runs the whole-matrix formulas inside the graph."""

    @staticmethod
    def forward(ctx, qt: torch.Tensor, kt: torch.Tensor, vt: torch.Tensor, scale: float, rows: int):
        t = qt.shape[2]
        ot = qt.new_empty(vt.shape)
        for s in range(0, t, rows):
            p = torch.bmm(qt[:, :, s : s + rows].transpose(1, 2) * scale, kt).softmax(-1)
            torch.bmm(vt, p.transpose(1, 2), out=ot[:, :, s : s + rows])
        ctx.save_for_backward(qt, kt, vt)
        ctx.scale, ctx.rows = scale, rows
        return ot

    @staticmethod
    def backward(ctx, dot: torch.Tensor):
        qt, kt, vt = ctx.saved_tensors
        scale, rows = ctx.scale, ctx.rows
        if torch.is_grad_enabled():  # double backward: the whole-matrix formulas in the graph
            p = torch.bmm(qt.transpose(1, 2) * scale, kt).softmax(-1)
            ds = torch.ops.aten._softmax_backward_data(
                torch.bmm(dot.transpose(1, 2), vt), p, -1, p.dtype
            )
            dqt = torch.bmm(kt, ds.transpose(1, 2)) * scale
            return dqt, torch.bmm(qt, ds) * scale, torch.bmm(dot, p), None, None
        dqt = torch.empty_like(qt)
        dkt = torch.zeros_like(kt)
        dvt = torch.zeros_like(vt)
        for s in range(0, qt.shape[2], rows):
            qb, dob = qt[:, :, s : s + rows], dot[:, :, s : s + rows]
            p = torch.bmm(qb.transpose(1, 2) * scale, kt).softmax(-1)  # (G, rows, T)
            dvt.baddbmm_(dob, p)
            ds = torch.ops.aten._softmax_backward_data(
                torch.bmm(dob.transpose(1, 2), vt), p, -1, p.dtype
            )
            torch.bmm(kt, ds.transpose(1, 2), out=dqt[:, :, s : s + rows])
            dkt.baddbmm_(qb, ds)
        return dqt.mul_(scale), dkt.mul_(scale), dvt, None, None


def encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for a post-norm ``nn.TransformerEncoderLayer`` (ReLU, no dropout) on
    ``x`` ``(B, T, d)``: ``x = LN1(x + MHA(x))``, ``x = LN2(x + W2 relu(W1 x))``, with its own
    parameters and the attention core as :class:`TransposedAttention`."""
    attn = layer.self_attn
    b, t, d = x.shape
    h = attn.num_heads
    dh = d // h
    # (q; k; v)^T = W_in x^T + b_in: (B, 3d, T), split as (B, 3, heads, d_h, T)
    qkv = torch.baddbmm(
        attn.in_proj_bias[:, None], attn.in_proj_weight.expand(b, -1, -1), x.transpose(1, 2)
    ).view(b, 3, h, dh, t)
    qt, kt, vt = (part.reshape(b * h, dh, t) for part in qkv.unbind(1))
    if t > BLOCKED_ATTENTION_MIN_TOKENS:
        ot = BlockedTransposedAttention.apply(qt, kt, vt, dh**-0.5, ATTENTION_BLOCK_ROWS)
    else:
        ot = TransposedAttention.apply(qt, kt, vt, dh**-0.5)  # (B*heads, d_h, T)
    o = ot.view(b, d, t).transpose(1, 2)  # heads concatenated: (B, T, d)
    x = F.layer_norm(
        x + F.linear(o, attn.out_proj.weight, attn.out_proj.bias),
        (d,),
        layer.norm1.weight,
        layer.norm1.bias,
        layer.norm1.eps,
    )
    ff = F.linear(
        F.relu(F.linear(x, layer.linear1.weight, layer.linear1.bias)),
        layer.linear2.weight,
        layer.linear2.bias,
    )
    return F.layer_norm(x + ff, (d,), layer.norm2.weight, layer.norm2.bias, layer.norm2.eps)


@torch.no_grad()
def ema_(phis: Sequence[torch.Tensor], thetas: Sequence[torch.Tensor], decay: float) -> None:
    """Eq. (2), ``phi <- decay phi + (1 - decay) theta``, in place for every pair, as one
    ``torch._foreach_lerp_`` (``phi + (1 - decay)(theta - phi)``: equal up to rounding;
    measured 0.05 ms against 0.41 ms for the mul/add version on the MLP)."""
    torch._foreach_lerp_(list(phis), list(thetas), 1.0 - decay)


def mean_std(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and (population) standard deviations of ``rows``, two-pass. On the CPU
    this was measured about 10x faster than ``torch.std_mean`` over dim 0 for a few hundred
    columns."""
    mean = rows.mean(0)
    centred = rows - mean
    return mean, (centred * centred).mean(0).sqrt_()


def neuron_statistics(a: torch.Tensor) -> torch.Tensor:
    """Eq. (1)'s batch statistics ``(n, 5)`` (mean, mean |.|, population std, fraction > 0,
    ReDo score) of activity ``a`` ``(B, w, n, P)``, neurons in dim 2, reduced over the other
    dims: :func:`.mechanism.activity_statistics` of ``a.transpose(2, 3).reshape(-1, n)``
    (the same two-pass formulas; equal up to the summation order), without that copy of
    the activations (at batch 128 a ConvNet layer's 4 M values)."""
    dims = (0, 1, 3)
    count = a.numel() // a.shape[2]
    mean = a.mean(dims, keepdim=True)
    centred = a - mean
    std = (centred * centred).mean(dims).sqrt_()
    mean_abs = a.abs().mean(dims)
    frac = (a > 0).sum(dims) / count
    redo = redo_scores_of_means(mean_abs)  # ReDo score (Sokar et al. 2023, eq. 1)
    return torch.stack((mean.flatten(), mean_abs, std, frac, redo), dim=1)


def prefer_foreach(optimizer: torch.optim.Optimizer) -> None:
    """Let a given optimizer that left ``foreach`` unset use its multi-tensor implementation.

    ``foreach=None`` means, on the CPU, one Python loop over the parameter tensors with
    about ten operations each; NeuMoSync has 38 tensors (6 for theta on the MLP), and that
    loop was measured as the largest single item of an iteration with stock Adam
    (docs/neumosync.md, "Parameters and cost"). ``foreach=True`` is the same update
    computed with one operation per step over all tensors. Optimizers without the option,
    fused ones, ``differentiable`` ones and an explicit ``foreach`` are left alone.
    """
    defaults = optimizer.defaults
    if "foreach" not in defaults or defaults.get("fused") or defaults.get("differentiable"):
        return
    if defaults["foreach"] is None:
        defaults["foreach"] = True  # groups added later (Avalanche's make_optimizer)
    for group in optimizer.param_groups:
        if group.get("foreach") is None and not group.get("fused"):
            group["foreach"] = True

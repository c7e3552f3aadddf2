"""NeuroSync: the global modulatory Transformer of NeuMoSync (ours; docs/neumosync.md).

Input: one *context token* built from the input and one token per neuron built
from its feature vector f_i (:mod:`.neumosync_features`):

    c   = W_c (P^T mean_b x_b) + b_c            (context="batch": one token per minibatch)
    c_b = W_c (P^T x_b) + b_c                   (context="sample": one token per sample)
    t_i = W_f f_i + b_f

``P`` is a fixed random ``(D, d_model)`` matrix with N(0, 1/D) entries drawn from
``projection_seed`` (not trained, not saved: it is regenerated from the seed for
the input's flattened size D). An ``nn.TransformerEncoder`` (shared across
neurons) reads ``[c, t_1, ..., t_N]``; a linear head, zero-initialised, maps each
neuron's output token to four numbers r_i, so that at initialisation r = 0 and
the InferenceNetwork is the MainNetwork.

Variant ``context_to_neurons`` (ours, issue 13): the context is also added to every
neuron token, ``t_i = W_f f_i + b_f + c``. With the context as one token among
N + 1, the alphas were measured to change by about 1e-5 between batches of
different tasks (docs/neumosync.md): each neuron token reaches the input only
through one attention weight out of N + 1.

The encoder is ``nn.TransformerEncoder`` (post-norm layers, ReLU, no dropout): its
modules hold the parameters (and the state dict), but :meth:`NeuroSync.encode`
computes the same function with fewer operations: the attention core
``softmax(q k^T / sqrt(d_h)) v`` (Vaswani et al. 2017, eq. 1) runs in a
transposed layout, ``o^T = v^T softmax(...)^T`` with explicit backward
(:class:`_TransposedAttention`), in which every matrix product has the head size
(4) as its *first* dimension; on the CPU these products are about 4x faster than
the same products with 4 as the last dimension (what
``F.scaled_dot_product_attention`` runs), and the attention is most of
NeuroSync's cost (docs/neumosync.md, "Cost").

With ``neurosync=False`` (ablation) :class:`LinearModulator` replaces it:
``r_i = W f_i + b`` (zero-initialised), with no attention and no input context.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

N_ALPHAS = 4  # SM, WC, gain, shift
CONTEXTS = ("batch", "sample")


def _zero_linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nn.init.zeros_(lin.weight)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


class _TransposedAttention(torch.autograd.Function):
    """``o^T = v^T softmax(scale q k^T)^T`` for ``q^T, k^T, v^T`` given as ``(G, d_h, T)``
    (G = batch x heads); returns ``o^T`` ``(G, d_h, T)``. The backward is written out
    (``dS = softmax'(dP)``, ``dq^T = scale k^T dS^T``, ``dk^T = scale q^T dS``,
    ``dv^T = do^T P``) so that every product keeps d_h first. Twice differentiable:
    with ``create_graph`` the backward recomputes P inside the graph."""

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


def _encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> torch.Tensor:
    """One post-norm ``nn.TransformerEncoderLayer`` (ReLU, no dropout) on ``x`` ``(B, T, d)``:
    ``x = LN1(x + MHA(x))``, ``x = LN2(x + W2 relu(W1 x))``, with its own parameters."""
    attn = layer.self_attn
    b, t, d = x.shape
    h = attn.num_heads
    dh = d // h
    # (q; k; v)^T = W_in x^T + b_in: (B, 3d, T), split as (B, 3, heads, d_h, T)
    qkv = torch.baddbmm(
        attn.in_proj_bias[:, None], attn.in_proj_weight.expand(b, -1, -1), x.transpose(1, 2)
    ).view(b, 3, h, dh, t)
    qt, kt, vt = (part.reshape(b * h, dh, t) for part in qkv.unbind(1))
    ot = _TransposedAttention.apply(qt, kt, vt, dh**-0.5)  # (B*heads, d_h, T)
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


class NeuroSync(nn.Module):
    """Transformer over [context token, neuron tokens] -> r ``(N, 4)`` or ``(B, N, 4)``.

    Args:
        feature_size: length of f_i.
        d_model, num_layers, num_heads, dim_feedforward: the encoder's sizes
            (defaults 16, 2, 4, 32 keep the extra parameters on MLP 784-100-100-10
            near 7.7%).
        context: ``"batch"`` (one context token per minibatch, alphas shared by
            the batch) or ``"sample"`` (one per sample: alphas per sample).
        projection_seed: seed of the fixed random input projection P.
        head_bias: give the head its own bias [True]; False: ``r_i = W o_i`` (the
            network may then add a per-layer bias, ``head_bias="layer"``).
        context_to_neurons: also add the context to every neuron token [False].
    """

    def __init__(
        self,
        feature_size: int,
        d_model: int = 16,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 32,
        context: str = "batch",
        projection_seed: int = 0,
        head_bias: bool = True,
        context_to_neurons: bool = False,
    ):
        super().__init__()
        if min(feature_size, d_model, num_layers, num_heads, dim_feedforward) < 1:
            raise ValueError(
                "NeuroSync sizes must be positive: "
                f"feature_size={feature_size}, d_model={d_model}, num_layers={num_layers}, "
                f"num_heads={num_heads}, dim_feedforward={dim_feedforward}"
            )
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        if context not in CONTEXTS:
            raise ValueError(f"unknown context {context!r}; valid: {list(CONTEXTS)}")
        self.context = context
        self.context_to_neurons = bool(context_to_neurons)
        self.d_model = d_model
        self.projection_seed = int(projection_seed)
        self.feature_proj = nn.Linear(feature_size, d_model)
        self.context_proj = nn.Linear(d_model, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, num_heads, dim_feedforward, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = _zero_linear(d_model, N_ALPHAS, bias=head_bias)
        self.register_buffer("input_projection", torch.empty(0), persistent=False)

    def _projection(self, dim: int, like: torch.Tensor) -> torch.Tensor:
        p = self.input_projection
        if p.shape != (dim, self.d_model) or p.device != like.device:
            gen = torch.Generator().manual_seed(self.projection_seed)
            p = torch.randn(dim, self.d_model, generator=gen) / dim**0.5
            self.input_projection = p.to(device=like.device)
        return self.input_projection.to(like.dtype)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """``self.encoder(seq)`` for ``seq`` ``(B, T, d_model)``, computed layer by layer
        by :func:`_encoder_layer` (the same function, fewer operations)."""
        for layer in self.encoder.layers:
            seq = _encoder_layer(layer, seq)
        return seq

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """r for all neurons: ``(N, 4)`` with context "batch", ``(B, N, 4)`` with "sample"."""
        flat = x.flatten(1)
        proj = self._projection(flat.shape[1], flat)
        tokens = self.feature_proj(features)  # (N, d)
        if self.context == "batch":
            ctx = self.context_proj(flat.mean(0) @ proj)  # (d,)
            if self.context_to_neurons:
                tokens = tokens + ctx
            seq = torch.cat((ctx[None], tokens))[None]  # (1, 1 + N, d)
            return self.head(self.encode(seq)[0, 1:])
        ctx = self.context_proj(flat @ proj)  # (B, d)
        per_sample = tokens[None].expand(len(ctx), -1, -1)
        if self.context_to_neurons:
            per_sample = per_sample + ctx[:, None]
        seq = torch.cat((ctx[:, None], per_sample), dim=1)
        return self.head(self.encode(seq)[:, 1:])


class LinearModulator(nn.Module):
    """Ablation ``neurosync=False``: ``r_i = W f_i + b`` (zero-initialised), no attention,
    no input context."""

    context = "batch"

    def __init__(self, feature_size: int, head_bias: bool = True):
        super().__init__()
        if feature_size < 1:
            raise ValueError(f"feature_size must be positive, got {feature_size}")
        self.head = _zero_linear(feature_size, N_ALPHAS, bias=head_bias)

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.head(features)

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

With ``neurosync=False`` (ablation) :class:`LinearModulator` replaces it:
``r_i = W f_i + b`` (zero-initialised), with no attention and no input context.
"""

from __future__ import annotations

import torch
from torch import nn

N_ALPHAS = 4  # SM, WC, gain, shift
CONTEXTS = ("batch", "sample")


def _zero_linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nn.init.zeros_(lin.weight)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


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
            return self.head(self.encoder(seq)[0, 1:])
        ctx = self.context_proj(flat @ proj)  # (B, d)
        per_sample = tokens[None].expand(len(ctx), -1, -1)
        if self.context_to_neurons:
            per_sample = per_sample + ctx[:, None]
        seq = torch.cat((ctx[:, None], per_sample), dim=1)
        return self.head(self.encoder(seq)[:, 1:])


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

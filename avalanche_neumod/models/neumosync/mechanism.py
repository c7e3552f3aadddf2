"""NeuMoSync, the mechanism: every equation of the paper, as reconstructed here.

The paper (papers/neumosync_excerpt.txt, "Method"; its Figure 2 A-D) describes NeuMoSync
in one paragraph; the authors' code is not public, so everything below beyond that
paragraph is our reconstruction (each decision a constructor argument, docs/neumosync.md).
Numbers ``(k)`` are cited in the code where each equation is implemented; the faster
forms of some of them are in :mod:`.fast` (same values, tested).

Neurons: every output feature of a ``Linear`` and every output channel of a ``Conv2d`` of
the MainNetwork theta (:func:`..units.read_units`), hidden and output layers alike. For
neuron i of layer l(i), with n_l neurons in its layer:

(1) **Feature vector** (Fig. 2 A; :class:`NeuronFeatures`)::

        f_i = [ pos_i ; symlog(s_i) ; log1p(w_i) ; e_i ]
        pos_i = E[l(i)] + sin/cos(pi 2^k r_i),  r_i = index_i / (n_l - 1)
        s_i <- d s_i + (1 - d) s_i(batch)      (the first batch initialises)
        w_i = (||theta_i||, ||phi_i||, ||theta_i - phi_i||)

    ``s_i``: running means (no gradient) of the neuron's mean activation, mean
    |activation|, std, fraction active (> 0) and ReDo score ``mean|h_i| / mean_j
    mean|h_j|`` (j over its layer; Sokar et al. 2023, eq. 1), from training batches;
    ``symlog(x) = sign(x) log(1 + |x|)``; ``e_i`` a learned embedding; ``E`` a learned layer
    embedding; norms over the neuron's weights and bias, detached.

(2) **ConsolidatedNetwork** (Fig. 2 A; :meth:`NeuMoSyncNetwork.consolidate`), after every
    optimizer step::

        phi <- lambda phi + (1 - lambda) theta

(3) **NeuroSync** (Fig. 2 B; :class:`NeuroSync`), a Transformer over one context token and
    one token per neuron, four outputs per neuron::

        c   = W_c (P^T mean_b x_b) + b_c        (context "batch"; "sample": one c_b per x_b)
        t_i = W_f f_i + b_f
        (o_c, o_1, ..., o_N) = Encoder(c, t_1, ..., t_N)
        r_i = W_h o_i + b_h  in R^4             (W_h, b_h zero-initialised)

    ``P`` a fixed random ``(D, d_model)`` projection with N(0, 1/D) entries; ``Encoder`` a
    post-norm ``nn.TransformerEncoder`` (ReLU, no dropout).

(4) **The four alphas** (:meth:`NeuMoSyncNetwork.alphas`)::

        alpha_SM = 1 + a_SM tanh(r_1),     alpha_WC    = a_WC tanh(r_2),
        alpha_gain = 1 + a_gain tanh(r_3), alpha_shift = a_shift tanh(r_4)

    so that at initialisation (r = 0) the InferenceNetwork is the MainNetwork.

(5) **InferenceNetwork** (Fig. 2 C; :meth:`NeuMoSyncNetwork.inference_weights`), per neuron,
    weights and bias::

        w_inf,i = alpha_SM,i theta_i + alpha_WC,i phi_i

(6) **Activity modulation** (Fig. 2 D; :meth:`NeuMoSyncNetwork._modulate`), hidden units::

        h_i = act(alpha_gain,i z_i + alpha_shift,i)

    on the output of the unit's pre-activation module (the producer, or the normalisation
    between producer and activation). Output neurons, and in a ResNet the residual-stream
    convs, get (5) only.

(7) **Plasticity modulation**, a consequence of (5)::

        dL/dtheta_i = alpha_SM,i dL/dw_inf,i

(8) **Joint objective** (training/neumosync.py, :class:`NeuMoSync`): one optimizer over
    theta, the e_i, E and NeuroSync on::

        L = CE( InferenceNetwork(x; theta, phi, alpha(x)), y )

    then (2) and the statistics update of (1). Evaluation runs the InferenceNetwork with
    alphas from the evaluation batch and updates nothing.

**Scale-free reconstructions** (ours, options of :class:`NeuMoSyncNetwork`, off by default).
Issue 25 found the default's alphas at their bounds within a few hundred iterations
(alpha_SM = alpha_gain = 1.5, alpha_WC = 0.5 in every layer): with phi close to theta the
InferenceNetwork is then ``~2 theta`` per layer with gains of 1.5, and since a ReLU is
positively homogeneous (``relu(g z) = g relu(z)`` for ``g > 0``) a per-layer scale passes
straight to the logits; the cheapest way for NeuroSync to lower the cross-entropy is that
global rescaling (a learned temperature and step-size multiplier), not per-neuron
modulation. Each option removes one such global scale:

(5a) ``affine_mixing``: ``alpha_SM,i + alpha_WC,i = 1`` per neuron, i.e.::

        w_inf,i = theta_i + beta_i (theta_i - phi_i),   beta_i = -alpha_WC,i = -a_WC tanh(r_2)

    ``beta > 0`` extrapolates away from phi, ``beta < 0`` interpolates towards it; the
    paper's plots show alpha_SM and alpha_WC with opposite signs, which this map allows
    and the default's fits never showed. With phi = theta, w_inf = theta: no rescaling.

(6b) ``normalised_gains``: per layer, mean log-gain 0 and mean shift 0::

        alpha_gain,i = exp(u_i - mean_layer u),  u_i = a_gain tanh(r_3)
        alpha_shift,i = v_i - mean_layer v,      v_i = a_shift tanh(r_4)

    so a layer's gains cannot all rise together (no temperature through (6)) and its
    shifts cannot all fall together (a uniform negative shift silenced ConvNet layers,
    docs/neumosync.md); only the modulation of a neuron relative to its layer remains.

(7c) ``gradient_plasticity``: plasticity modulation as a per-neuron factor on theta's
    gradient only, not in the forward pass::

        w_inf,i = c_i theta_i + alpha_WC,i phi_i,   c_i = 1 (or 1 + beta_i with (5a))
        theta_i's gradient:  p_i dL/dtheta_i,       p_i = alpha_SM,i = 1 + a_SM tanh(r_1)

    A factor that is absent from the forward pass receives no gradient from the loss of
    the same minibatch, so p is trained through the lookahead objective only (the
    strategy refuses the joint one), where the inner step ``theta' = theta - eta p c g``
    makes the loss on the second half depend on p: a plasticity trained for its effect on
    learning, as the paper's comparison with MAML (its Table 2) suggests.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from ...argument_rules import checked, integer, one_of, real
from ..units import read_units, redo_scores_of_means, require_readable, unread_parameters
from .fast import (
    OUTPUT_MIX_MAX_BATCH,
    channel_view,
    ema_,
    encoder_layer,
    fold_modulation,
    fold_norm_modulation,
    mean_std,
    mix_outputs,
    neuron_statistics,
)

ALPHA_KINDS = ("sm", "wc", "gain", "shift")
N_ALPHAS = 4  # SM, WC, gain, shift
CONTEXTS = ("batch", "sample")
HEAD_BIASES = ("shared", "none", "layer")
FEATURE_NORMS = ("symlog", "layer", "both")
N_ACTIVITY = 5  # mean, mean |.|, std, fraction active, ReDo score
N_WEIGHT = 3  # ||theta||, ||phi||, ||theta - phi||
ACTIVITY_NAMES = ("mean", "mean_abs", "std", "frac_active", "redo_score")
WEIGHT_NAMES = ("theta_norm", "phi_norm", "theta_phi_dist")
# a per alpha (SM, WC, gain, shift): SM and gain in [0.5, 1.5], |WC| <= 0.5, |shift| <= 0.1.
# Chosen by the design study (docs/neumosync.md, "Design study"); DESIGN.md's a = 1 is
# ``alpha_scale=1.0``.
DEFAULT_ALPHA_SCALE = (0.5, 0.5, 0.5, 0.1)

__all__ = [
    "ALPHA_KINDS",
    "CONTEXTS",
    "DEFAULT_ALPHA_SCALE",
    "FEATURE_NORMS",
    "HEAD_BIASES",
    "OUTPUT_MIX_MAX_BATCH",
    "LinearModulator",
    "NeuMoSyncNetwork",
    "NeuronFeatures",
    "NeuronLayer",
    "NeuroSync",
    "activity_statistics",
    "sinusoidal_code",
    "symlog",
]


# ---------------------------------------------------------------- (1) neuron features


def symlog(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(1 + |x|)``."""
    return torch.sign(x) * torch.log1p(x.abs())


def sinusoidal_code(n: int, size: int) -> torch.Tensor:
    """``(n, size)`` code of relative positions ``r = i / (n - 1)``: sin/cos at ``pi * 2^k``."""
    r = torch.arange(n, dtype=torch.float32) / max(n - 1, 1)
    freqs = math.pi * 2.0 ** torch.arange((size + 1) // 2, dtype=torch.float32)
    ang = r[:, None] * freqs[None, :]
    code = torch.stack((ang.sin(), ang.cos()), dim=-1).flatten(1)
    return code[:, :size]


def activity_statistics(rows: torch.Tensor) -> torch.Tensor:
    """Per-neuron statistics of one layer's activity ``(samples, n)`` -> ``(n, 5)``."""
    mean, std = mean_std(rows)
    mean_abs = rows.abs().mean(0)
    frac = (rows > 0).float().mean(0)
    redo = redo_scores_of_means(mean_abs)  # ReDo score (Sokar et al. 2023, eq. 1)
    return torch.stack((mean, mean_abs, std, frac, redo), dim=1)


class NeuronFeatures(nn.Module):
    """Eq. (1): the feature vectors f_i of all neurons of a network, layer after layer.

    Normalisation (ours): the statistics enter through ``symlog`` (``log1p`` for the
    non-negative norms), which keeps their sign and order, compresses large norms and
    activations and keeps magnitudes comparable across layers and over time; a per-batch
    z-score would hide a global drift of the network, which is what NeuroSync should see.
    The learned projection to d_model is NeuroSync's ``W_f`` (eq. 3).

    Variant ``feature_norm`` (ours): measured on trained networks, the neurons of one layer
    differ far less in these features than the layers differ, and the alphas came out
    nearly uniform within a layer; ``"layer"`` standardises each of the 8 statistics within
    its layer after symlog, ``z = (x - mean_layer) / (std_layer + 1e-5)``, so that what
    distinguishes a neuron is on the unit scale (the global drift is then invisible);
    ``"both"`` feeds both (8 more features).

    Args:
        layer_sizes: neurons per layer, in forward order.
        position_size: size of the positional part (layer embedding + sinusoidal code).
        embedding_size: size of the learnable per-neuron embedding e_i.
        stats_decay: running-mean rate of the activity statistics, in [0, 1)
            (``s <- d * s + (1 - d) * batch``; the first batch initialises them).
        feature_norm: ``"symlog"`` [default], ``"layer"`` or ``"both"`` (above).
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        position_size: int = 8,
        embedding_size: int = 8,
        stats_decay: float = 0.99,
        feature_norm: str = "symlog",
    ):
        super().__init__()
        if feature_norm not in FEATURE_NORMS:
            raise ValueError(f"unknown feature_norm {feature_norm!r}; valid: {list(FEATURE_NORMS)}")
        self.feature_norm = feature_norm
        if len(layer_sizes) < 1 or any(n < 1 for n in layer_sizes):
            raise ValueError(f"layer sizes must be positive, got {list(layer_sizes)}")
        if position_size < 1 or embedding_size < 1:
            raise ValueError(
                f"position_size and embedding_size must be positive, got {position_size}, "
                f"{embedding_size}"
            )
        if not 0.0 <= stats_decay < 1.0:
            raise ValueError(f"stats_decay must be in [0, 1), got {stats_decay}")
        self.layer_sizes = tuple(int(n) for n in layer_sizes)
        self.n_neurons = sum(self.layer_sizes)
        self.stats_decay = float(stats_decay)
        self.position_size = position_size
        self.embedding_size = embedding_size
        layer_index = torch.cat(
            [torch.full((n,), k, dtype=torch.long) for k, n in enumerate(self.layer_sizes)]
        )
        self.register_buffer("layer_index", layer_index)
        self.register_buffer(
            "layer_onehot",
            nn.functional.one_hot(layer_index, len(self.layer_sizes)).float(),
            persistent=False,
        )
        self.register_buffer(
            "position_code", torch.cat([sinusoidal_code(n, position_size) for n in layer_sizes])
        )
        # (N, L): column k averages over layer k's neurons
        self.register_buffer(
            "layer_average", self.layer_onehot / self.layer_onehot.sum(0), persistent=False
        )
        self.register_buffer("activity", torch.zeros(self.n_neurons, N_ACTIVITY))
        self.register_buffer("activity_ready", torch.zeros((), dtype=torch.bool))
        # symlog(activity), refreshed with the statistics (computed once, not per forward)
        self.register_buffer(
            "activity_features", torch.zeros(self.n_neurons, N_ACTIVITY), persistent=False
        )
        self._register_load_state_dict_pre_hook(self._drop_cache)
        self.layer_embedding = nn.Embedding(len(self.layer_sizes), position_size)
        nn.init.normal_(self.layer_embedding.weight, std=0.1)
        self.embedding = nn.Parameter(0.1 * torch.randn(self.n_neurons, embedding_size))

    @property
    def size(self) -> int:
        """Length of f_i."""
        n_stats = (N_ACTIVITY + N_WEIGHT) * (2 if self.feature_norm == "both" else 1)
        return self.position_size + n_stats + self.embedding_size

    def layer_standardise(self, x: torch.Tensor) -> torch.Tensor:
        """Each column of ``x`` ``(N, k)`` standardised within each layer:
        ``(x - mean_layer) / (std_layer + 1e-5)`` (population std)."""
        mean = self.layer_onehot @ (self.layer_average.T @ x)
        centred = x - mean
        var = self.layer_onehot @ (self.layer_average.T @ (centred * centred))
        return centred / (var.sqrt() + 1e-5)

    def _drop_cache(self, *args, **kwargs) -> None:
        self._cache_valid = False

    @torch.no_grad()
    def update_activity(self, layer_rows: Sequence[torch.Tensor]) -> None:
        """Fold one training batch into the running statistics.

        ``layer_rows[k]`` is layer k's activity as ``(samples, n_k)``. Layers with
        the same number of rows are processed together (one set of ops).
        """
        batch = self.batch_statistics(layer_rows)
        if not bool(self.activity_ready):
            self.activity.copy_(batch)
            self.activity_ready.fill_(True)
        else:  # (1) s <- d s + (1 - d) batch
            self.activity.lerp_(batch, 1.0 - self.stats_decay)
        # symlog(activity) is computed when the features are next read (forward), not per
        # batch: with neurosync_every > 1 most batches' statistics are never read as such
        self._cache_valid = False

    def batch_statistics(self, layer_rows: Sequence[torch.Tensor]) -> torch.Tensor:
        """``(n_neurons, 5)`` statistics of one batch (1), vectorised over neurons: the layers
        with as many rows as each other in one set of operations (equal to
        :func:`activity_statistics` per layer, tested). A 4-d entry ``(B, w, n_k, P)`` (a
        conv layer's activity as captured, neurons in dim 2) is reduced in place by
        :func:`.fast.neuron_statistics`, without its ``(samples, n_k)`` copy."""
        if any(r.dim() == 4 for r in layer_rows):
            return torch.cat(
                [
                    neuron_statistics(r.float()) if r.dim() == 4 else activity_statistics(r.float())
                    for r in layer_rows
                ]
            )
        if all(r.shape[0] == layer_rows[0].shape[0] for r in layer_rows):
            rows = torch.cat(list(layer_rows), dim=1).float()  # (samples, N)
            mean, std = mean_std(rows)
            mean_abs = rows.abs().mean(0)
            frac = (rows > 0).sum(0) / rows.shape[0]
            # ReDo score s_i = mean|h_i| / (mean over i's layer of mean|h_j|)
            redo = redo_scores_of_means(mean_abs, self.layer_onehot)
            return torch.stack((mean, mean_abs, std, frac, redo), dim=1)
        return torch.cat([activity_statistics(r.float()) for r in layer_rows])

    def forward(self, weight_stats: torch.Tensor) -> torch.Tensor:
        """All f_i as ``(n_neurons, size)``, given ``weight_stats`` ``(n_neurons, 3)``
        (non-negative norms: ``symlog`` is ``log1p`` there)."""
        if not getattr(self, "_cache_valid", False):
            with torch.no_grad():
                self.activity_features.copy_(symlog(self.activity))
            self._cache_valid = True
        pos = torch.addmm(self.position_code, self.layer_onehot, self.layer_embedding.weight)
        stats = torch.cat((self.activity_features, torch.log1p(weight_stats.detach())), dim=1)
        if self.feature_norm == "layer":
            stats = self.layer_standardise(stats)
        elif self.feature_norm == "both":
            stats = torch.cat((stats, self.layer_standardise(stats)), dim=1)
        return torch.cat((pos, stats, self.embedding), dim=1)  # (1) f_i


# ---------------------------------------------------------------- (3) NeuroSync


def _zero_linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    lin = nn.Linear(n_in, n_out, bias=bias)
    nn.init.zeros_(lin.weight)
    if bias:
        nn.init.zeros_(lin.bias)
    return lin


class NeuroSync(nn.Module):
    """Eq. (3): Transformer over [context token, neuron tokens] -> r ``(N, 4)`` or
    ``(B, N, 4)``.

    ``P`` is regenerated from ``projection_seed`` for the input's flattened size D (not
    trained, not saved). The encoder's modules are ``nn.TransformerEncoder``'s (parameters,
    state dict), run by :meth:`encode` through :func:`.fast.encoder_layer` (the same
    function with the attention in a transposed layout, tested against the module).

    Variant ``context_to_neurons`` (ours): the context is also added to every neuron token,
    ``t_i = W_f f_i + b_f + c``. With the context as one token among N + 1, the alphas were
    measured to change by about 1e-5 between batches of different tasks (docs/neumosync.md):
    each neuron token reaches the input only through one attention weight out of N + 1.

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
        by :func:`.fast.encoder_layer` (the same function, fewer operations)."""
        for layer in self.encoder.layers:
            seq = encoder_layer(layer, seq)
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


# ---------------------------------------------------------------- (2), (4)-(7) the network


@dataclass(frozen=True)
class NeuronLayer:
    """One weight layer of the MainNetwork seen as a group of neurons."""

    index: int
    name: str
    module: nn.Module
    n: int
    offset: int  # first neuron's index in the network-wide order
    is_conv: bool
    modulated: bool  # activity modulation applies (a hidden unit with a pre-activation)


def _row_sq_norms(w: torch.Tensor, b: Optional[torch.Tensor]) -> torch.Tensor:
    """Squared norm of each neuron's weights and bias: ``||w_i||^2 + b_i^2``."""
    sq = torch.linalg.vector_norm(w.detach().flatten(1), dim=1).square_()
    return sq if b is None else sq.addcmul_(b.detach(), b.detach())


def _alpha_scales(alpha_scale: Union[float, Sequence[float]]) -> tuple[float, ...]:
    """``alpha_scale`` as four positive finite scales (SM, WC, gain, shift)."""
    one = isinstance(alpha_scale, numbers.Real) and not isinstance(alpha_scale, bool)
    many = isinstance(alpha_scale, (list, tuple)) and len(alpha_scale) == 4
    reals = many and all(
        isinstance(a, numbers.Real) and not isinstance(a, bool) for a in alpha_scale
    )
    if not (one or reals):
        raise ValueError(
            f"alpha_scale must be one number > 0 or four (SM, WC, gain, shift), got {alpha_scale!r}"
        )
    values = (float(alpha_scale),) * 4 if one else tuple(float(a) for a in alpha_scale)
    if not all(math.isfinite(a) and a > 0 for a in values):
        raise ValueError(f"alpha_scale must be > 0 and finite, got {alpha_scale!r}")
    return values


def _alpha_scale_rule(name: str, value):
    _alpha_scales(value)
    return value


class _NetHook:
    """A hook that calls a method of the network: an object, not a closure, so that a
    deep copy of the network (a probe's fork) gets hooks bound to the copy."""

    def __init__(self, net: nn.Module, method: str, *bound):
        self.net, self.method, self.bound = net, method, bound

    def __call__(self, *args):
        return getattr(self.net, self.method)(*self.bound, *args)


class NeuMoSyncNetwork(nn.Module):
    """MainNetwork theta + ConsolidatedNetwork phi + neuron features + NeuroSync: eqs.
    (1)-(7) of the module docstring.

    ``forward(x)`` returns the InferenceNetwork's output with alphas computed from
    ``x``. In training mode it also keeps the batch's activity (detached) for
    :meth:`update_statistics`; in evaluation mode it keeps nothing. Call
    :meth:`consolidate` and :meth:`update_statistics` after each optimizer step
    (the :class:`~avalanche_neumod.training.neumosync.NeuMoSync` strategy does).

    Args (all decided here; the table in docs/neumosync.md, "The mechanism"):
        model: the MainNetwork (our MLP/ConvNet/SlimResNet18 or an ``nn.Sequential`` of
            Linear/Conv2d/activation/pooling/flatten/norm layers).
        ema_decay: lambda of the EMA, in [0, 1) [0.99].
        consolidation: keep phi and use alpha_WC [True]; False: no phi, alpha_WC = 0.
        plasticity_modulation: use alpha_SM [True]; False: alpha_SM = 1.
        activity_modulation: use alpha_gain/alpha_shift [True]; False: gain 1, shift 0.
        neurosync: the Transformer [True]; False: alphas from a per-neuron linear map
            of f_i (no attention, no input context).
        context: ``"batch"`` [default] or ``"sample"`` (see module docstring).
        d_model, num_layers, num_heads, dim_feedforward: NeuroSync sizes [16, 2, 4, 32].
        embedding_size: size of the learnable e_i [8].
        position_size: size of the positional part of f_i [8].
        alpha_scale: a in the alpha maps, > 0: one number, or four, one per alpha
            (SM, WC, gain, shift) [``(0.5, 0.5, 0.5, 0.1)``: alpha_SM and alpha_gain in
            [0.5, 1.5], ``|alpha_WC| <= 0.5``, ``|alpha_shift| <= 0.1``, so that the
            modulation cannot silence a layer of ReLUs; chosen by the design study,
            docs/neumosync.md]. ``1.0`` is the unbounded map of DESIGN.md (a = 1).
        stats_decay: running-mean rate of the activity statistics, in [0, 1) [0.99].
        projection_seed: seed of the fixed random input projection [0].
        feature_norm: ``"symlog"`` [default], ``"layer"`` (statistics standardised
            within each layer) or ``"both"``; see :class:`NeuronFeatures`.
        head_bias: the bias of NeuroSync's head: ``"shared"`` [default, one bias for
            all neurons], ``"none"``, or ``"layer"`` (a zero-initialised bias per
            layer and alpha, ``r_i = W o_i + b_layer(i)``). The shared bias receives
            the gradient summed over all neurons and was measured to dominate the
            alphas (per-layer means equal within 0.01); see docs/neumosync.md.
        context_to_neurons: also add NeuroSync's context to every neuron token
            [False]; see :class:`NeuroSync` (needs ``neurosync=True``).
        affine_mixing: (5a) of the module docstring, ``alpha_SM = 1 - alpha_WC`` per neuron
            [False] (needs consolidation and plasticity modulation).
        normalised_gains: (6b), gains with mean log-gain 0 and shifts with mean 0 within
            each layer [False] (needs activity modulation).
        gradient_plasticity: (7c), alpha_SM as a factor on theta's gradient only, not in
            the forward pass [False] (needs plasticity modulation and context "batch";
            the strategy needs the lookahead objective to train it).
        allow_unread: a model with trainable parameters outside the Linear/Conv2d layers
            the unit reader sees (an LSTM, a ``Parameter`` used functionally) is refused
            (:class:`~avalanche_neumod.models.units.UnsupportedModelError`) [False];
            True: accepted, with a warning naming the layers NeuMoSync acts on and the
            parameters it leaves unmodulated (they are still trained).
    """

    @checked(
        ema_decay=real(0.0, 1.0, high_open=True),
        stats_decay=real(0.0, 1.0, high_open=True),
        context=one_of(*CONTEXTS),
        d_model=integer(1),
        num_layers=integer(1),
        num_heads=integer(1),
        dim_feedforward=integer(1),
        embedding_size=integer(1),
        position_size=integer(1),
        alpha_scale=_alpha_scale_rule,
        projection_seed=integer(0),
        feature_norm=one_of(*FEATURE_NORMS),
        head_bias=one_of(*HEAD_BIASES),
    )
    def __init__(
        self,
        model: nn.Module,
        *,
        ema_decay: float = 0.99,
        consolidation: bool = True,
        plasticity_modulation: bool = True,
        activity_modulation: bool = True,
        neurosync: bool = True,
        context: str = "batch",
        d_model: int = 16,
        num_layers: int = 2,
        num_heads: int = 4,
        dim_feedforward: int = 32,
        embedding_size: int = 8,
        position_size: int = 8,
        alpha_scale: Union[float, Sequence[float]] = DEFAULT_ALPHA_SCALE,
        stats_decay: float = 0.99,
        projection_seed: int = 0,
        feature_norm: str = "symlog",
        head_bias: str = "shared",
        context_to_neurons: bool = False,
        affine_mixing: bool = False,
        normalised_gains: bool = False,
        gradient_plasticity: bool = False,
        allow_unread: bool = False,
    ):
        super().__init__()
        scales = _alpha_scales(alpha_scale)
        if affine_mixing and not (consolidation and plasticity_modulation):
            raise ValueError(
                "affine_mixing needs consolidation=True and plasticity_modulation=True "
                "(w_inf = theta + beta (theta - phi) mixes theta and phi)"
            )
        if normalised_gains and not activity_modulation:
            raise ValueError("normalised_gains needs activity_modulation=True")
        if gradient_plasticity and not plasticity_modulation:
            raise ValueError("gradient_plasticity needs plasticity_modulation=True")
        if gradient_plasticity and context != "batch":
            raise ValueError(
                "gradient_plasticity needs context='batch' (one factor per neuron on "
                "theta's gradient, not one per sample)"
            )
        if not neurosync and context_to_neurons:
            raise ValueError(
                "context_to_neurons needs neurosync=True (the ablation has no context)"
            )
        if not neurosync and context != "batch":
            raise ValueError(
                f"context={context!r} needs neurosync=True: the neurosync=False ablation "
                "has no input context"
            )
        self.main = model
        self.ema_decay = float(ema_decay)
        self.consolidation = bool(consolidation)
        self.plasticity_modulation = bool(plasticity_modulation)
        self.activity_modulation = bool(activity_modulation)
        self.use_neurosync = bool(neurosync)
        self.alpha_scales = scales
        self.affine_mixing = bool(affine_mixing)
        self.normalised_gains = bool(normalised_gains)
        self.gradient_plasticity = bool(gradient_plasticity)
        # whether the InferenceNetwork's weights differ from theta's: (5) mixes phi in, or
        # alpha_SM scales theta in the forward pass
        self._mixes = self.consolidation or (plasticity_modulation and not gradient_plasticity)
        self.head_bias = head_bias

        if allow_unread:
            units = read_units(model)
            unread = unread_parameters(model, units)
            if unread:
                warnings.warn(
                    f"NeuMoSync acts on {', '.join(units.layers)} of {type(model).__name__} "
                    f"only; {', '.join(unread)} are trained but not modulated (allow_unread=True)",
                    stacklevel=2,
                )
        else:
            units = require_readable(
                model,
                "NeuMoSync",
                "pass allow_unread=True to accept that (the other parameters are trained "
                "but not modulated)",
            )
        pre_act = {u.name: u.pre_activation or u.producer for u in units.hidden}
        self.layers: list[NeuronLayer] = []
        offset = 0
        for k, (name, mod) in enumerate(units.layers.items()):
            n = mod.weight.shape[0]
            self.layers.append(
                NeuronLayer(k, name, mod, n, offset, isinstance(mod, nn.Conv2d), name in pre_act)
            )
            offset += n
        self.n_neurons = offset
        self.layer_names = [layer.name for layer in self.layers]

        self.features = NeuronFeatures(
            [layer.n for layer in self.layers],
            position_size,
            embedding_size,
            stats_decay,
            feature_norm,
        )
        own_bias = head_bias == "shared"
        if neurosync:
            self.neurosync: nn.Module = NeuroSync(
                self.features.size,
                d_model,
                num_layers,
                num_heads,
                dim_feedforward,
                context,
                projection_seed,
                head_bias=own_bias,
                context_to_neurons=context_to_neurons,
            )
        else:
            self.neurosync = LinearModulator(self.features.size, head_bias=own_bias)
        self.context = context
        # head_bias="layer": r_i += b_layer(i), one zero-initialised bias per layer and alpha
        self.layer_bias = (
            nn.Parameter(torch.zeros(len(self.layers), 4)) if head_bias == "layer" else None
        )

        # (2) ConsolidatedNetwork phi: buffers (never trained), initialised to theta.
        self._phi_names: list[tuple[Optional[str], Optional[str]]] = []
        for layer in self.layers:
            if not self.consolidation:  # ablation: no phi at all
                self._phi_names.append((None, None))
                continue
            w, b = f"phi_{layer.index}_weight", f"phi_{layer.index}_bias"
            self.register_buffer(w, layer.module.weight.detach().clone())
            if layer.module.bias is not None:
                self.register_buffer(b, layer.module.bias.detach().clone())
            else:
                b = None
            self._phi_names.append((w, b))
        mask = torch.zeros(self.n_neurons, dtype=torch.bool)
        for layer in self.layers:
            if layer.modulated:
                mask[layer.offset : layer.offset + layer.n] = True
        self.register_buffer("activity_mask", mask, persistent=False)
        offset, gate = self._alpha_maps()
        self.register_buffer("alpha_offset", offset, persistent=False)
        self.register_buffer("alpha_gate", gate, persistent=False)
        # the largest |alpha - neutral| each alpha can reach (0: fixed, or no fixed bound)
        bound = gate.clone()
        if self.affine_mixing and not self.gradient_plasticity:
            bound[:, 0] = gate[:, 1]  # alpha_SM = 1 - alpha_WC
        if self.normalised_gains:
            bound[:, 2:] = 0.0  # centred within the layer: no fixed bound
        self.register_buffer("alpha_bound", bound, persistent=False)
        self._sizes = [layer.n for layer in self.layers]
        self._all_layers = frozenset(layer.index for layer in self.layers)
        self._linear_layers = frozenset(layer.index for layer in self.layers if not layer.is_conv)
        # layers whose activity modulation sits on the producer's own output
        self._act_on_producer = frozenset(
            layer.index
            for layer in self.layers
            if layer.modulated and pre_act[layer.name] is layer.module
        )
        # conv layers whose (6) can be folded into their materialised weights: on the
        # producer's own output, with a bias to carry the shift, and mixed weights to fold
        # into. (Linear layers keep the hook: the committed cells' evaluation batches run
        # them materialised, and their numbers stay bit for bit.)
        self._foldable = frozenset(
            i
            for i in self._act_on_producer
            if self.layers[i].is_conv and self.layers[i].module.bias is not None and self._mixes
        )
        # layers whose (6) sits on an affine BatchNorm's output (a ResNet's convs): folded
        # into the norm's affine parameters (fast.fold_norm_modulation, O(channels))
        names = {id(m): n for n, m in model.named_modules()}
        self._norm_of: dict[int, str] = {
            layer.index: names[id(pre_act[layer.name])]
            for layer in self.layers
            if layer.modulated
            and layer.index not in self._act_on_producer
            and isinstance(pre_act[layer.name], nn.modules.batchnorm._BatchNorm)
            and pre_act[layer.name].weight is not None
            and pre_act[layer.name].bias is not None
        }
        self._norm_foldable = frozenset(self._norm_of)
        self._by_param = {
            f"{layer.name}.{p}": layer for layer in self.layers for p in ("weight", "bias")
        }

        self._state: Optional[dict] = None  # per-forward modulation state read by hooks
        self._captured: list[Optional[torch.Tensor]] = [None] * len(self.layers)
        self.last_alphas: Optional[torch.Tensor] = None
        self._install_hooks(units, pre_act)

    # ------------------------------------------------------------------ structure
    def phi(self, k: int) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """phi (weight, bias) of layer k; ``(None, None)`` without consolidation."""
        w, b = self._phi_names[k]
        return (getattr(self, w) if w else None), (getattr(self, b) if b else None)

    @property
    def main_network(self) -> nn.Module:
        """The MainNetwork theta (what :func:`.units.unit_network` reads)."""
        return self.main

    def extra_parameters(self) -> int:
        """Trainable parameters beyond the MainNetwork's (features + NeuroSync)."""
        main = {id(p) for p in self.main.parameters()}
        return sum(p.numel() for p in self.parameters() if id(p) not in main)

    def parameter_overhead(self) -> float:
        """Extra trainable parameters relative to the MainNetwork's."""
        return self.extra_parameters() / sum(p.numel() for p in self.main.parameters())

    def _install_hooks(self, units, pre_act: dict) -> None:
        ops: dict[int, tuple[nn.Module, list]] = {}

        def add(module: nn.Module, op: tuple) -> None:
            ops.setdefault(id(module), (module, []))[1].append(op)

        for layer in self.layers:
            add(layer.module, ("mix", layer))  # active for the layers in state["mix_out"]
            if layer.modulated:
                add(pre_act[layer.name], ("act", layer))
        self._handles = [
            module.register_forward_hook(_NetHook(self, "_modulate", todo))
            for module, todo in ops.values()
        ]
        # Activity capture: what the consumer reads for hidden units, the layer's
        # (modulated) output otherwise (output layer, residual-stream convs).
        hidden = {u.name: u for u in units.hidden}
        for layer in self.layers:
            u = hidden.get(layer.name)
            if u is not None:
                self._handles.append(
                    u.consumer.register_forward_pre_hook(_NetHook(self, "_capture_in", layer, u))
                )
            else:
                self._handles.append(
                    layer.module.register_forward_hook(_NetHook(self, "_capture_out", layer))
                )

    def _modulate(self, todo: list, module: nn.Module, args: tuple, out: torch.Tensor):
        """Forward hook: (6) the activity modulation, and (5) by outputs for the layers in
        ``mix_out`` (:func:`.fast.mix_outputs`, fused with (6) where both act on the same
        module's output, i.e. the producer is the pre-activation)."""
        st = self._state
        if st is None:
            return None
        fused = -1
        for kind, layer in todo:
            sm, wc, gain, shift = st["cols"][layer.index]
            if kind == "mix":
                if layer.index in st["mix_out"]:
                    out_phi = self._phi_output(layer, args[0])
                    if st["act"] and layer.index in self._act_on_producer:
                        fused = layer.index
                        out = mix_outputs(out, out_phi, sm, wc, layer.is_conv, gain, shift)
                    else:
                        out = mix_outputs(out, out_phi, sm, wc, layer.is_conv)
            elif st["act"] and layer.index != fused and layer.index not in st["folded"]:
                # (6) h = act(alpha_gain z + alpha_shift)
                view = channel_view
                out = torch.addcmul(
                    view(shift, out, layer.is_conv), view(gain, out, layer.is_conv), out
                )
        return out

    def _phi_output(self, layer: NeuronLayer, inp: torch.Tensor) -> Optional[torch.Tensor]:
        """``phi . h``: the layer's output at phi's weights (None without consolidation)."""
        if not self.consolidation:
            return None
        pw, pb = self.phi(layer.index)
        if layer.is_conv:
            return layer.module._conv_forward(inp, pw, pb)
        return F.linear(inp, pw, pb)

    def _capture_in(self, layer: NeuronLayer, unit, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook on a consumer: the hidden units' activity in training."""
        if self._state is not None and self._state["capture"]:
            a = unit.unit_activity(args[0].detach())  # (B, width_factor, n, positions)
            if layer.is_conv:  # kept as is: fast.neuron_statistics reduces it in place
                self._captured[layer.index] = a
            else:
                self._captured[layer.index] = a.transpose(2, 3).reshape(-1, layer.n)

    def _capture_out(self, layer: NeuronLayer, module: nn.Module, args: tuple, out) -> None:
        """Forward hook: a layer's output as its neurons' activity (no consumer unit)."""
        if self._state is not None and self._state["capture"]:
            o = out.detach()
            if layer.is_conv:  # (B, C, H, W) as (B, 1, C, H W), for fast.neuron_statistics
                self._captured[layer.index] = o.reshape(o.shape[0], 1, layer.n, -1)
            else:
                self._captured[layer.index] = o.reshape(-1, layer.n)

    # ------------------------------------------------------------------ alphas
    @torch.no_grad()
    def weight_statistics(self) -> torch.Tensor:
        """``(N, 3)``: (1)'s w_i = ||theta_i||, ||phi_i||, ||theta_i - phi_i|| over the neuron's
        weights and bias (zeros for phi without consolidation)."""
        if not self.consolidation:
            return torch.cat(
                [
                    F.pad(_row_sq_norms(layer.module.weight, layer.module.bias)[:, None], (0, 2))
                    for layer in self.layers
                ]
            ).sqrt_()
        thetas, phis = [], []
        for layer in self.layers:
            pw, pb = self.phi(layer.index)
            for t, q in ((layer.module.weight, pw), (layer.module.bias, pb)):
                if t is not None:
                    thetas.append(t.detach())
                    phis.append(q)
        diffs = iter(torch._foreach_sub(thetas, phis))  # theta - phi, all tensors at once
        cols = []
        for layer in self.layers:
            theta = (layer.module.weight, layer.module.bias)
            phi = self.phi(layer.index)
            diff = tuple(None if t is None else next(diffs) for t in theta)
            cols.append(torch.stack([_row_sq_norms(*t) for t in (theta, phi, diff)], 1))
        return torch.cat(cols).sqrt_()

    def _alpha_maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``offset`` and ``scale`` ``(N, 4)`` with ``alphas = offset + scale * tanh(r)``:
        offset 1 for SM and gain; scale ``a`` where a mechanism is on, 0 where it is
        ablated (or, for gain/shift, where the neuron has no activity modulation)."""
        offset = torch.zeros(self.n_neurons, 4)
        offset[:, 0] = offset[:, 2] = 1.0
        a_sm, a_wc, a_gain, a_shift = self.alpha_scales
        scale = torch.zeros(self.n_neurons, 4)
        scale[:, 0] = a_sm if self.plasticity_modulation else 0.0
        scale[:, 1] = a_wc if self.consolidation else 0.0
        if self.activity_modulation:
            mask = self.activity_mask.float()
            scale[:, 2] = a_gain * mask
            scale[:, 3] = a_shift * mask
        return offset, scale

    def alphas(self, x: torch.Tensor) -> torch.Tensor:
        """The four alphas per neuron for input batch ``x``: ``(N, 4)`` (context "batch")
        or ``(B, N, 4)`` ("sample"), columns (SM, WC, gain, shift), ablations applied:
        alpha_SM = 1 + a tanh(r1), alpha_WC = a tanh(r2), alpha_gain = 1 + a tanh(r3),
        alpha_shift = a tanh(r4); ``a`` per alpha kind (``alpha_scale``)."""
        r = self.neurosync(self.features(self.weight_statistics()), x)  # (1), (3)
        if self.layer_bias is not None:
            r = r + self.layer_bias[self.features.layer_index]
        if not (self.affine_mixing or self.normalised_gains):
            return torch.addcmul(self.alpha_offset, self.alpha_gate, torch.tanh(r))  # (4)
        sm, wc, gain, shift = (self.alpha_gate * torch.tanh(r)).unbind(-1)  # deviations
        sm = 1.0 + sm
        if self.affine_mixing and not self.gradient_plasticity:
            sm = 1.0 - wc  # (5a) alpha_SM + alpha_WC = 1
        if self.normalised_gains:  # (6b) mean log-gain 0, mean shift 0 per layer
            gain = torch.exp(self._layer_centred(gain))
            shift = self._layer_centred(shift)
        else:
            gain = 1.0 + gain
        return torch.stack((sm, wc, gain, shift), dim=-1)

    def _layer_centred(self, u: torch.Tensor) -> torch.Tensor:
        """``u_i - mean_{j in layer(i)} u_j`` for ``u`` ``(..., N)``."""
        means = u @ self.features.layer_average  # (..., L)
        return u - means @ self.features.layer_onehot.T

    def mixing_alphas(self, alphas: torch.Tensor) -> torch.Tensor:
        """The coefficients (c_theta, c_phi, gain, shift) the forward pass uses: the alphas
        themselves, except with ``gradient_plasticity`` (7c), where alpha_SM stays out of the
        forward pass: ``c_theta = 1`` (``1 - alpha_WC`` with ``affine_mixing``)."""
        if not self.gradient_plasticity:
            return alphas
        wc = alphas[..., 1]
        c_theta = 1.0 - wc if self.affine_mixing else torch.ones_like(wc)
        return torch.cat((c_theta[..., None], alphas[..., 1:]), dim=-1)

    @torch.no_grad()
    def modulate_gradients(self, alphas: torch.Tensor) -> None:
        """(7c) ``theta_i.grad <- alpha_SM,i theta_i.grad`` with ``gradient_plasticity`` (after
        the backward pass, before the optimizer step); nothing otherwise."""
        if not self.gradient_plasticity:
            return
        for name, t in self.neuron_parameters().items():
            if t.grad is not None:
                t.grad.mul_(self.sm_view(alphas.detach(), name, t, factor=False))

    # ------------------------------------------------------------------ forward
    def inference_weights(
        self,
        alphas: torch.Tensor,
        theta: Optional[dict[str, torch.Tensor]] = None,
        skip: frozenset = frozenset(),
        fold: frozenset = frozenset(),
        norm_fold: frozenset = frozenset(),
        cols: Optional[list] = None,
    ) -> dict[str, torch.Tensor]:
        """The InferenceNetwork's weights for batch-level alphas ``(N, 4)``:
        ``w_inf,i = alpha_SM,i theta_i + alpha_WC,i phi_i`` (weights and bias).
        ``theta`` (optional) replaces the MainNetwork's weights, by the same names
        (``"<layer>.weight"``/``"<layer>.bias"``; e.g. a lookahead theta'). Layers whose
        index is in ``skip`` are left out; those in ``fold`` get (6) folded in
        (:func:`.fast.fold_modulation`); those in ``norm_fold`` get (6) folded into the
        affine parameters of their BatchNorm (:func:`.fast.fold_norm_modulation`). ``cols``:
        the per-layer columns ``(c_theta, c_phi, gain, shift)`` of the mixing alphas, when the
        hooks' state already holds them (one split of the alphas per forward, not two)."""
        params: dict[str, torch.Tensor] = {}
        if cols is None:
            cols = [a.unbind(1) for a in self.mixing_alphas(alphas).split(self._sizes)]
        for layer, a in zip(self.layers, cols):
            if layer.index in norm_fold:
                norm = self.main.get_submodule(self._norm_of[layer.index])
                gamma, beta = fold_norm_modulation(norm.weight, norm.bias, a[2], a[3])
                params[f"{self._norm_of[layer.index]}.weight"] = gamma
                params[f"{self._norm_of[layer.index]}.bias"] = beta
            if layer.index in skip:
                continue
            if layer.index in fold:
                params.update(self._folded_weights(layer, a))
                continue
            sm, wc = a[:2]
            mod = layer.module
            pw, pb = self.phi(layer.index)
            for pname, theta_t, phi in (("weight", mod.weight, pw), ("bias", mod.bias, pb)):
                if theta_t is None:
                    continue
                key = f"{layer.name}.{pname}"
                if theta is not None:
                    theta_t = theta[key]
                shape = (layer.n,) + (1,) * (theta_t.dim() - 1)
                # (5) w_inf,i = alpha_SM,i theta_i + alpha_WC,i phi_i
                w = sm.reshape(shape) * theta_t
                if self.consolidation:
                    w = torch.addcmul(w, wc.reshape(shape), phi)
                params[key] = w
        return params

    def _folded_weights(
        self, layer: NeuronLayer, a: Sequence[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Layer ``layer``'s weights with (5) and (6) in them (:func:`.fast.fold_modulation`),
        from its columns ``a`` = (c_theta, c_phi, gain, shift)."""
        mod = layer.module
        pw, pb = self.phi(layer.index)
        w, b = fold_modulation(mod.weight, mod.bias, pw, pb, *a)
        return {f"{layer.name}.weight": w, f"{layer.name}.bias": b}

    def neuron_parameters(self) -> dict[str, torch.Tensor]:
        """theta's neuron weights and biases by name (``"<layer>.weight"``, ...)."""
        out = {}
        for layer in self.layers:
            for pname in ("weight", "bias"):
                t = getattr(layer.module, pname)
                if t is not None:
                    out[f"{layer.name}.{pname}"] = t
        return out

    def sm_view(
        self, alphas: torch.Tensor, name: str, like: torch.Tensor, factor: bool = True
    ) -> torch.Tensor:
        """alpha_SM of the neurons owning parameter ``name``, shaped to broadcast over
        ``like``. ``factor``: instead, the whole factor of (7), ``dL/dtheta_i = factor_i
        dL/dw_inf,i`` of a plasticity-modulated step: alpha_SM, or ``p_i c_i`` with
        ``gradient_plasticity`` (7c)."""
        layer = self._by_param[name]
        sm = alphas[layer.offset : layer.offset + layer.n, 0]
        if factor and self.gradient_plasticity:
            sm = sm * self.mixing_alphas(alphas)[layer.offset : layer.offset + layer.n, 0]
        return sm.reshape((layer.n,) + (1,) * (like.dim() - 1))

    @contextlib.contextmanager
    def _modulating(
        self,
        alphas: torch.Tensor,
        sample: bool,
        capture: Optional[bool] = None,
        mix_out: Optional[frozenset] = None,
        folded: frozenset = frozenset(),
    ):
        """Hooks active inside: activity modulation, activity capture, and the weight
        mixing by outputs for the layers in ``mix_out`` (default: all with per-sample
        alphas, none otherwise)."""
        if mix_out is None:
            mix_out = self._all_layers if sample else frozenset()
        alphas = self.mixing_alphas(alphas)
        self._state = {
            # per layer: (c_theta, c_phi, gain, shift), each (n,) or (B, n)
            "cols": [a.unbind(-1) for a in alphas.split(self._sizes, dim=-2)],
            "mix_out": mix_out if self._mixes else frozenset(),
            "act": self.activity_modulation,
            "folded": folded,  # layers whose (6) is in their weights
            "capture": self.training if capture is None else capture,
        }
        try:
            yield
        finally:
            self._state = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The InferenceNetwork's output for ``x`` (alphas from ``x``)."""
        alphas = self.alphas(x)
        self.last_alphas = alphas.detach()
        return self.inference_forward(x, alphas)

    def inference_forward(
        self,
        x: torch.Tensor,
        alphas: torch.Tensor,
        weights: Optional[dict[str, torch.Tensor]] = None,
        capture: Optional[bool] = None,
    ) -> torch.Tensor:
        """The InferenceNetwork for given alphas (``(N, 4)`` or per sample ``(B, N, 4)``).

        ``weights``: ready InferenceNetwork weights (from :meth:`inference_weights`,
        batch alphas only). ``capture``: keep the activity for the statistics
        (default: in training mode).
        """
        if alphas.shape[-2:] != (self.n_neurons, 4):
            raise ValueError(f"alphas must end in ({self.n_neurons}, 4), got {tuple(alphas.shape)}")
        sample = alphas.dim() == 3
        if sample and weights is not None:
            raise ValueError("weights are for batch alphas (N, 4), not per-sample alphas")
        if sample or weights is not None:
            with self._modulating(alphas, sample, capture):
                if weights is None:
                    return self.main(x)
                return functional_call(self.main, weights, (x,))
        # Batch alphas: a Linear layer of a small batch mixes its outputs (fast.mix_outputs,
        # cheaper than materialising w_inf: the same values up to rounding); the other
        # layers get w_inf materialised.
        # Where (6) sits on a materialised conv's own output, it is folded into the conv's
        # weights (fast.fold_modulation: O(parameters), not O(activations)).
        mix_out = self._linear_layers if len(x) <= OUTPUT_MIX_MAX_BATCH else frozenset()
        # Where (6) sits on a BatchNorm's output, it is folded into the norm's affine
        # parameters (fast.fold_norm_modulation: O(channels), not O(activations)).
        fold = norm_fold = frozenset()
        if self.activity_modulation:
            fold = self._foldable - mix_out
            norm_fold = self._norm_foldable - mix_out
        with self._modulating(alphas, sample, capture, mix_out, fold | norm_fold):
            if not self._mixes or mix_out == self._all_layers:
                return self.main(x)
            weights = self.inference_weights(
                alphas, skip=mix_out, fold=fold, norm_fold=norm_fold, cols=self._state["cols"]
            )
            return functional_call(self.main, weights, (x,))

    # ------------------------------------------------------------------ after each step
    @torch.no_grad()
    def consolidate(self) -> None:
        """(2) The ConsolidatedNetwork's EMA step ``phi <- lambda phi + (1 - lambda) theta``
        over all tensors at once (:func:`.fast.ema_`)."""
        if not self.consolidation:
            return
        phis, thetas = [], []
        for layer in self.layers:
            pw, pb = self.phi(layer.index)
            phis.append(pw)
            thetas.append(layer.module.weight.detach())
            if pb is not None:
                phis.append(pb)
                thetas.append(layer.module.bias.detach())
        ema_(phis, thetas, self.ema_decay)

    @torch.no_grad()
    def update_statistics(self) -> bool:
        """(1) Fold the last training forward's activity into the running statistics.

        Returns False (and changes nothing) when no training batch was captured
        since the last call (e.g. only evaluation forwards ran).
        """
        if any(c is None for c in self._captured):
            return False
        self.features.update_activity(self._captured)
        self._captured = [None] * len(self.layers)
        return True

    def alpha_summary(self, alphas: Optional[torch.Tensor] = None) -> dict:
        """Per layer and alpha kind, ``[mean, std]`` over neurons (and samples)."""
        a = self.last_alphas if alphas is None else alphas
        if a is None:
            return {}
        a = a.detach().reshape(-1, self.n_neurons, 4)
        out = {}
        for layer in self.layers:
            part = a[:, layer.offset : layer.offset + layer.n].reshape(-1, 4)
            mean, std = part.mean(0).tolist(), part.std(0, unbiased=False).tolist()
            out[layer.name] = {k: [mean[j], std[j]] for j, k in enumerate(ALPHA_KINDS)}
        return out

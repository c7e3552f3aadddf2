"""The NeuMoSync network (reconstructed from the paper's description; docs/neumosync.md).

:class:`NeuMoSyncNetwork` wraps a plain network, the *MainNetwork* theta, and adds

- the *ConsolidatedNetwork* phi: buffers, ``phi <- lambda * phi + (1 - lambda) * theta``
  after every optimizer step (:meth:`NeuMoSyncNetwork.consolidate`);
- neuron features f_i (:mod:`.neumosync_features`) and *NeuroSync*
  (:mod:`.neurosync`), which output four numbers r_i per neuron, turned into

      alpha_SM = 1 + a tanh(r1),  alpha_WC = a tanh(r2),
      alpha_gain = 1 + a tanh(r3), alpha_shift = a tanh(r4);

- the *InferenceNetwork*, which is what :meth:`forward` computes: per neuron i
  (a Linear output feature or a Conv2d output channel; weights and bias)
  ``w_inf,i = alpha_SM,i theta_i + alpha_WC,i phi_i``, and for hidden units
  ``h_i = act(alpha_gain,i z_i + alpha_shift,i)``. Output neurons (and, in a
  ResNet, the residual-stream convs, which have no activation of their own) get
  the weight mixing only. Since ``dL/dtheta_i = alpha_SM,i dL/dw_inf,i``, alpha_SM
  is also the neuron's plasticity modulation.

The model is walked only through :func:`.units.read_units`. Where the
modulation goes: on the output of the unit's *pre-activation* module
(``HiddenUnits.pre_activation``): the producer itself, or the normalisation
layer between producer and activation (conv -> BN -> ReLU: after BN, since BN
in training mode would cancel a per-channel affine map applied before it).

With ``context="batch"`` the alphas are per minibatch and the InferenceNetwork
runs as one ``torch.func.functional_call`` with the mixed weights. With
``context="sample"`` every sample has its own alphas, hence its own weights;
this is computed exactly, without materialising per-sample weights, from
linearity in the weights: ``w_inf,i . h = alpha_SM,i (theta_i . h) +
alpha_WC,i (phi_i . h)`` (bias alike), i.e. each layer also runs with phi and
the two outputs are mixed per sample.
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

from ..argument_rules import checked, integer, one_of, real
from .neumosync_features import FEATURE_NORMS, NeuronFeatures
from .neurosync import CONTEXTS, LinearModulator, NeuroSync
from .units import read_units, require_readable, unread_parameters

ALPHA_KINDS = ("sm", "wc", "gain", "shift")
HEAD_BIASES = ("shared", "none", "layer")
# a per alpha (SM, WC, gain, shift): SM and gain in [0.5, 1.5], |WC| <= 0.5, |shift| <= 0.1.
# Chosen by the design study (docs/neumosync.md, "Design study"); DESIGN.md's a = 1 is
# ``alpha_scale=1.0``.
DEFAULT_ALPHA_SCALE = (0.5, 0.5, 0.5, 0.1)
# Batch context: a Linear layer mixes outputs instead of weights up to this batch size
OUTPUT_MIX_MAX_BATCH = 32


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


def _channel_view(alpha: torch.Tensor, out: torch.Tensor, is_conv: bool) -> torch.Tensor:
    """Broadcast ``alpha`` ``(n,)`` or ``(B, n)`` over a layer output (channels dim 1 for
    convs, last dim for linears)."""
    if is_conv:
        return alpha.reshape(*alpha.shape, *([1] * (out.dim() - 2)))
    if alpha.dim() == 1:
        return alpha
    return alpha.reshape(alpha.shape[0], *([1] * (out.dim() - 2)), alpha.shape[1])


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
    """MainNetwork theta + ConsolidatedNetwork phi + neuron features + NeuroSync.

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
            within each layer) or ``"both"``; see :mod:`.neumosync_features`.
        head_bias: the bias of NeuroSync's head: ``"shared"`` [default, one bias for
            all neurons], ``"none"``, or ``"layer"`` (a zero-initialised bias per
            layer and alpha, ``r_i = W o_i + b_layer(i)``). The shared bias receives
            the gradient summed over all neurons and was measured to dominate the
            alphas (per-layer means equal within 0.01); see docs/neumosync.md.
        context_to_neurons: also add NeuroSync's context to every neuron token
            [False]; see :mod:`.neurosync` (needs ``neurosync=True``).
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
        allow_unread: bool = False,
    ):
        super().__init__()
        scales = _alpha_scales(alpha_scale)
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
        self.alpha_scale = alpha_scale
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

        # ConsolidatedNetwork phi: buffers (never trained), initialised to theta.
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
        self._sizes = [layer.n for layer in self.layers]
        self._all_layers = frozenset(layer.index for layer in self.layers)
        self._linear_layers = frozenset(layer.index for layer in self.layers if not layer.is_conv)
        # layers whose activity modulation sits on the producer's own output
        self._act_on_producer = frozenset(
            layer.index
            for layer in self.layers
            if layer.modulated and pre_act[layer.name] is layer.module
        )
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
        """Forward hook: weight mixing by outputs and activity modulation. When both act on
        the same module's output (the producer is the pre-activation), one expression:
        ``z' = (gain sm) (theta . h) + (gain wc) (phi . h) + shift``, which is
        ``gain (sm (theta . h) + wc (phi . h)) + shift`` up to rounding."""
        st = self._state
        if st is None:
            return None
        fused = -1
        for kind, layer in todo:
            sm, wc, gain, shift = st["cols"][layer.index]
            if kind == "mix":
                if layer.index in st["mix_out"]:
                    if st["act"] and layer.index in self._act_on_producer:
                        fused = layer.index
                        out = self._mix_outputs(layer, args[0], out, sm, wc, gain, shift)
                    else:
                        out = self._mix_outputs(layer, args[0], out, sm, wc)
            elif st["act"] and layer.index != fused:
                # h = act(alpha_gain z + alpha_shift)
                view = _channel_view
                out = torch.addcmul(
                    view(shift, out, layer.is_conv), view(gain, out, layer.is_conv), out
                )
        return out

    def _mix_outputs(
        self,
        layer: NeuronLayer,
        inp: torch.Tensor,
        out: torch.Tensor,
        sm: torch.Tensor,
        wc: torch.Tensor,
        gain: Optional[torch.Tensor] = None,
        shift: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """InferenceNetwork layer by outputs: alpha_SM (theta . h) + alpha_WC (phi . h);
        with ``gain``/``shift``, the activity modulation applied too (see :meth:`_modulate`)."""
        conv = layer.is_conv
        if gain is not None:
            sm = gain * sm
            wc = gain * wc
        if shift is None:
            mixed = _channel_view(sm, out, conv) * out
        else:
            mixed = torch.addcmul(
                _channel_view(shift, out, conv), _channel_view(sm, out, conv), out
            )
        if self.consolidation:
            pw, pb = self.phi(layer.index)
            if conv:
                out_phi = layer.module._conv_forward(inp, pw, pb)
            else:
                out_phi = F.linear(inp, pw, pb)
            mixed = torch.addcmul(mixed, _channel_view(wc, out, conv), out_phi)
        return mixed

    def _capture_in(self, layer: NeuronLayer, unit, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook on a consumer: the hidden units' activity in training."""
        if self._state is not None and self._state["capture"]:
            a = unit.unit_activity(args[0].detach())  # (B, width_factor, n, positions)
            self._captured[layer.index] = a.transpose(2, 3).reshape(-1, layer.n)

    def _capture_out(self, layer: NeuronLayer, module: nn.Module, args: tuple, out) -> None:
        """Forward hook: a layer's output as its neurons' activity (no consumer unit)."""
        if self._state is not None and self._state["capture"]:
            o = out.detach()
            o = o.movedim(1, -1) if layer.is_conv else o
            self._captured[layer.index] = o.reshape(-1, layer.n)

    # ------------------------------------------------------------------ alphas
    @torch.no_grad()
    def weight_statistics(self) -> torch.Tensor:
        """``(N, 3)``: ||theta_i||, ||phi_i||, ||theta_i - phi_i|| over the neuron's weights
        and bias (zeros for phi without consolidation)."""
        cols = []
        for layer in self.layers:
            theta = (layer.module.weight, layer.module.bias)
            if self.consolidation:
                phi = self.phi(layer.index)
                diff = tuple(None if t is None else t - q for t, q in zip(theta, phi))
                cols.append(torch.stack([_row_sq_norms(*t) for t in (theta, phi, diff)], 1))
            else:
                cols.append(F.pad(_row_sq_norms(*theta)[:, None], (0, 2)))
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
        r = self.neurosync(self.features(self.weight_statistics()), x)
        if self.layer_bias is not None:
            r = r + self.layer_bias[self.features.layer_index]
        return torch.addcmul(self.alpha_offset, self.alpha_gate, torch.tanh(r))

    # ------------------------------------------------------------------ forward
    def inference_weights(
        self,
        alphas: torch.Tensor,
        theta: Optional[dict[str, torch.Tensor]] = None,
        skip: frozenset = frozenset(),
    ) -> dict[str, torch.Tensor]:
        """The InferenceNetwork's weights for batch-level alphas ``(N, 4)``:
        ``w_inf,i = alpha_SM,i theta_i + alpha_WC,i phi_i`` (weights and bias).
        ``theta`` (optional) replaces the MainNetwork's weights, by the same names
        (``"<layer>.weight"``/``"<layer>.bias"``; e.g. a lookahead theta'). Layers whose
        index is in ``skip`` are left out."""
        params: dict[str, torch.Tensor] = {}
        for layer, a in zip(self.layers, alphas.split(self._sizes)):
            if layer.index in skip:
                continue
            sm, wc = a.unbind(1)[:2]
            mod = layer.module
            pw, pb = self.phi(layer.index)
            for pname, theta_t, phi in (("weight", mod.weight, pw), ("bias", mod.bias, pb)):
                if theta_t is None:
                    continue
                key = f"{layer.name}.{pname}"
                if theta is not None:
                    theta_t = theta[key]
                shape = (layer.n,) + (1,) * (theta_t.dim() - 1)
                w = sm.reshape(shape) * theta_t
                if self.consolidation:
                    w = torch.addcmul(w, wc.reshape(shape), phi)
                params[key] = w
        return params

    def neuron_parameters(self) -> dict[str, torch.Tensor]:
        """theta's neuron weights and biases by name (``"<layer>.weight"``, ...)."""
        out = {}
        for layer in self.layers:
            for pname in ("weight", "bias"):
                t = getattr(layer.module, pname)
                if t is not None:
                    out[f"{layer.name}.{pname}"] = t
        return out

    def sm_view(self, alphas: torch.Tensor, name: str, like: torch.Tensor) -> torch.Tensor:
        """alpha_SM of the neurons owning parameter ``name``, shaped to broadcast over ``like``."""
        layer = self._by_param[name]
        sm = alphas[layer.offset : layer.offset + layer.n, 0]
        return sm.reshape((layer.n,) + (1,) * (like.dim() - 1))

    @contextlib.contextmanager
    def _modulating(
        self,
        alphas: torch.Tensor,
        sample: bool,
        capture: Optional[bool] = None,
        mix_out: Optional[frozenset] = None,
    ):
        """Hooks active inside: activity modulation, activity capture, and the weight
        mixing by outputs for the layers in ``mix_out`` (default: all with per-sample
        alphas, none otherwise)."""
        mixing = self.plasticity_modulation or self.consolidation
        if mix_out is None:
            mix_out = self._all_layers if sample else frozenset()
        self._state = {
            "alphas": alphas,
            # per layer: (sm, wc, gain, shift), each (n,) or (B, n)
            "cols": [a.unbind(-1) for a in alphas.split(self._sizes, dim=-2)],
            "sample": sample,
            "mix_out": mix_out if mixing else frozenset(),
            "mix": self.plasticity_modulation or self.consolidation,
            "act": self.activity_modulation,
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
        # Batch alphas: a Linear layer of a small batch mixes its outputs,
        # alpha_SM (theta . h) + alpha_WC (phi . h) (cheaper than materialising w_inf:
        # the same values up to rounding); the other layers get w_inf materialised.
        mix_out = self._linear_layers if len(x) <= OUTPUT_MIX_MAX_BATCH else frozenset()
        with self._modulating(alphas, sample, capture, mix_out):
            mixing = self.plasticity_modulation or self.consolidation
            if not mixing or mix_out == self._all_layers:
                return self.main(x)
            return functional_call(self.main, self.inference_weights(alphas, skip=mix_out), (x,))

    # ------------------------------------------------------------------ after each step
    @torch.no_grad()
    def consolidate(self) -> None:
        """The ConsolidatedNetwork's EMA step ``phi <- lambda * phi + (1 - lambda) * theta``,
        as one ``torch._foreach_lerp_`` over all tensors (``phi + (1 - lambda) (theta - phi)``,
        equal up to rounding)."""
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
        torch._foreach_lerp_(phis, thetas, 1.0 - self.ema_decay)

    @torch.no_grad()
    def update_statistics(self) -> bool:
        """Fold the last training forward's activity into the running statistics.

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

"""NGM-SGD's gain layers: a per-unit gain on a layer's pre-activation (docs/ngm.md, Gain layers).

A gained layer computes ``z = (x @ W.T) * g + b`` (per output feature of a
``Linear``, per output channel of a ``Conv2d``): the effective weights are
``diag(g) W`` and the bias is not scaled. The gain ``g`` is a *buffer*, not a
parameter: it is saved in ``state_dict`` (key ``<layer>.gain``), moves with
``model.to(device)``, survives ``copy.deepcopy`` and is never seen by an optimizer.

:func:`attach_gains` puts gains on an existing model's layers in place: each
chosen ``nn.Linear``/``nn.Conv2d`` becomes a :class:`GainLinear`/:class:`GainConv2d`
(same module object, same parameters, so optimizers and references already
made stay valid). Layers are found with the hidden-unit helper
(:func:`~avalanche_neumod.models.units.read_units`), so it works on this library's
models and on traceable user models such as a plain ``nn.Sequential``.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...models.units import read_units, require_readable

LayerSpec = Union[str, Sequence[str]]
GainInit = Union[str, float]
#: Named initial gains: ``"one"`` (1, the authors' MLP) and ``"g0"`` (the resting gain,
#: the authors' ResNet head).
G_INIT_NAMES = ("one", "g0")


def resolve_g_init(g_init: GainInit, g0: float = 1.0) -> float:
    """The initial gain value: ``"one"`` -> 1, ``"g0"`` -> ``g0``, or a finite float > 0.

    The NGM-SGD authors' MLP starts every gain at 1 whatever ``g0``; their ResNet
    head starts at ``g0``. Raises ``ValueError`` for anything else.
    """
    if isinstance(g_init, str):
        if g_init == "one":
            return 1.0
        if g_init == "g0":
            return float(g0)
        raise ValueError(
            f"unknown g_init {g_init!r}; valid: {', '.join(G_INIT_NAMES)} or a float > 0"
        )
    if isinstance(g_init, bool) or not isinstance(g_init, (int, float)):
        raise ValueError(f"g_init must be one of {G_INIT_NAMES} or a float > 0, got {g_init!r}")
    if not (g_init > 0 and math.isfinite(g_init)):
        raise ValueError(f"g_init must be a finite number > 0, got {g_init}")
    return float(g_init)


class GainLinear(nn.Linear):
    """``nn.Linear`` with a per-output gain buffer: ``(x @ W.T) * gain + bias``."""

    gain: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.weight)
        # NGM: z = (x @ W.T) * g + b, g multiplies the pre-activation before the bias.
        return z * self.gain if self.bias is None else torch.addcmul(self.bias, z, self.gain)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", gain=True"


class GainConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a per-output-channel gain buffer: ``conv(x, W) * gain + bias``."""

    gain: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self._conv_forward(x, self.weight, None)
        g = self.gain.view(-1, 1, 1)
        return z * g if self.bias is None else torch.addcmul(self.bias.view(-1, 1, 1), z, g)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", gain=True"


GAIN_LAYERS = (GainLinear, GainConv2d)
_GAIN_CLASS = {nn.Linear: GainLinear, nn.Conv2d: GainConv2d}
_PLAIN_CLASS = {GainLinear: nn.Linear, GainConv2d: nn.Conv2d}


def resolve_layers(model: nn.Module, layers: LayerSpec = "all") -> dict[str, nn.Module]:
    """The weight layers named by ``layers`` (``"all"``, ``"head"`` or a list of names).

    Raises ``ValueError`` for an unknown keyword or layer name (listing the valid
    ones) and :class:`~avalanche_neumod.models.units.UnsupportedModelError` when
    the model cannot be read.
    """
    if isinstance(layers, str) and layers == "all":
        mu = require_readable(
            model,
            "gain modulation (layers='all')",
            "name the layers to put gains on (layers='head' or a list of names) to accept that",
        )
        return dict(mu.layers)
    mu = read_units(model)
    if isinstance(layers, str):
        if layers == "head":
            if mu.output_name is None:
                raise ValueError(
                    f"layers='head': no single Linear/Conv2d layer of {type(model).__name__} "
                    f"feeds the output; name the layers instead, one of {list(mu.layers)}"
                )
            return {mu.output_name: mu.layers[mu.output_name]}
        raise ValueError(
            f"layers must be 'all', 'head' or a list of layer names, got {layers!r} "
            f"(layer names of this model: {list(mu.layers)})"
        )
    names = list(layers)
    if not names:
        raise ValueError("layers: the list of layer names is empty")
    unknown = [n for n in names if n not in mu.layers]
    if unknown:
        raise ValueError(
            f"unknown layer name(s) {unknown}; the Linear/Conv2d layers of "
            f"{type(model).__name__} are {list(mu.layers)}"
        )
    return {n: mu.layers[n] for n in mu.layers if n in names}  # forward order


def attach_gains(
    model: nn.Module, layers: LayerSpec = "all", g0: float = 1.0, g_init: GainInit = "one"
) -> dict[str, torch.Tensor]:
    """Put gains on ``model``'s chosen layers, in place, initialised to
    :func:`resolve_g_init` ``(g_init, g0)``: 1 by default (the authors' MLP), ``g0``
    with ``g_init="g0"`` (the authors' ResNet head), or a given float.

    Idempotent: a layer that already has gains keeps them (their values are not
    reset). Only plain ``nn.Linear``/``nn.Conv2d`` layers can receive gains (a
    subclass with its own ``forward`` raises ``TypeError``).

    Returns ``{layer name: gain buffer}`` in forward order. The buffers are the
    current tensors; after ``model.to(other_device)`` read them again with
    :func:`gain_buffers`.
    """
    init = resolve_g_init(g_init, g0)
    chosen = resolve_layers(model, layers)
    for name, layer in chosen.items():
        if isinstance(layer, GAIN_LAYERS):
            continue
        cls = _GAIN_CLASS.get(type(layer))
        if cls is None:
            raise TypeError(
                f"cannot put gains on layer {name!r} of type {type(layer).__name__}: "
                "only plain nn.Linear and nn.Conv2d layers are supported"
            )
        w = layer.weight
        gain = torch.full((w.shape[0],), init, dtype=w.dtype, device=w.device)
        layer.__class__ = cls  # same object and parameters: optimizers stay valid
        layer.register_buffer("gain", gain)
    return {name: layer.gain for name, layer in chosen.items()}


def gain_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers of ``model`` that carry gains, by qualified name, in forward order."""
    return {n: m for n, m in read_units(model).layers.items() if isinstance(m, GAIN_LAYERS)}


def gain_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{layer name: gain buffer}`` of ``model``'s gained layers."""
    return {n: m.gain for n, m in gain_layers(model).items()}


def remove_gains(model: nn.Module, fold: bool = False) -> dict[str, torch.Tensor]:
    """Turn gained layers back into plain ones, in place; returns the removed gains.

    With ``fold=True`` the gains are folded into the weights (``W <- diag(g) W``),
    so the model computes the same function; otherwise they are dropped (g = 1).
    """
    removed = {}
    for name, layer in gain_layers(model).items():
        g = layer.gain
        if fold:
            with torch.no_grad():
                layer.weight.mul_(g.view(-1, *([1] * (layer.weight.dim() - 1))))
        del layer._buffers["gain"]
        layer.__class__ = _PLAIN_CLASS[type(layer)]
        removed[name] = g
    return removed

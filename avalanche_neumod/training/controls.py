"""Control rows for NeuMoSync's diagnosis (docs/neumosync.md "Diagnosis").

At its caps NeuMoSync's InferenceNetwork is ``alpha_gain (alpha_SM theta + alpha_WC phi)``
per hidden layer, so two global effects could explain what it does without any
per-neuron modulation. Each control gives plain fine-tuning one of them:

- :class:`NaiveTemperature`: a learned output temperature. The model's logits are
  divided by ``T = exp(s)``, ``s`` one scalar (0 at the start, ``T = 1``) trained with
  the network by the same optimizer (:class:`LearnedTemperature`);
- :class:`NaiveScaledLR`: a larger step. The optimizer's learning rate is multiplied by
  ``lr_factor``, by default NeuMoSync's step factor at its caps (:func:`cap_step_factor`).

Both are Naive fine-tuning on this library's fast path (:class:`FastTemplate`), named
in suites as ``NaiveTemperature`` and ``NaiveScaledLR``.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from ..argument_rules import checked, real
from ..evaluation.neumosync_diagnostics import alpha_scales
from ..models.neumosync import DEFAULT_ALPHA_SCALE
from .method import Method
from .template import FastTemplate

__all__ = [
    "NAIVE_SCALED_LR_METHOD",
    "NAIVE_TEMPERATURE_METHOD",
    "LearnedTemperature",
    "NaiveScaledLR",
    "NaiveTemperature",
    "cap_step_factor",
]


def cap_step_factor(alpha_scale: Union[float, Sequence[float]] = DEFAULT_ALPHA_SCALE) -> float:
    """NeuMoSync's effective step factor on a hidden layer with every alpha at its upper
    cap: ``((1 + a_SM) (1 + a_gain))^2`` (5.0625 at the default scales 0.5, 0.5).

    Derivation (docs/neumosync.md, "Diagnosis"): a hidden pre-activation of the
    InferenceNetwork is ``z' = g (s theta + c phi) h + shift`` (``g`` = alpha_gain,
    ``s`` = alpha_SM, ``c`` = alpha_WC; the paper's ``w_inf = alpha_SM theta + alpha_WC
    phi`` and the activity modulation). Its gradient on theta is ``dL/dtheta = g s
    (dL/dz') h^T``, so an SGD step of rate eta moves ``z'`` by ``g s (delta theta) h =
    -eta (g s)^2 |h|^2 dL/dz'``, where plain SGD on a layer computing ``z'`` directly moves
    it by ``-eta |h|^2 dL/dz'``: the same step as Naive at ``(g s)^2 eta``. phi follows
    theta only through the EMA (``1 - lambda`` per step) and is left out; the output
    layer (no gain) has ``s^2`` (2.25), and it holds about 1 % of the MLP's weights.
    """
    a = alpha_scales(alpha_scale)
    return ((1.0 + a["sm"]) * (1.0 + a["gain"])) ** 2


DEFAULT_LR_FACTOR = cap_step_factor()


class LearnedTemperature(nn.Module):
    """``model(x) / exp(log_temperature)``: the model with one learned scalar
    log-temperature on its logits (initialised to 0, i.e. ``T = 1``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.log_temperature = nn.Parameter(torch.zeros(()))

    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * torch.exp(-self.log_temperature)


def _same_optimizer(optimizer: torch.optim.Optimizer, params, **changes) -> torch.optim.Optimizer:
    """A new optimizer of ``optimizer``'s class and defaults (with ``changes``) over
    ``params``; the given one must have one parameter group and no state yet."""
    if len(optimizer.param_groups) != 1 or optimizer.state:
        raise ValueError(
            "a control strategy rebuilds the optimizer: give one with a single parameter "
            "group and no state"
        )
    return type(optimizer)(params, **{**optimizer.defaults, **changes})


class NaiveTemperature(FastTemplate):
    """Naive fine-tuning of ``LearnedTemperature(model)``: the logits divided by a learned
    temperature trained by the same optimizer (rebuilt, same class and settings, over the
    model's parameters and the log-temperature). ``strategy.model`` is the wrapper;
    ``strategy.model.model`` the given network."""

    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, **base_kwargs):
        wrapped = LearnedTemperature(model)
        optimizer = _same_optimizer(optimizer, wrapped.parameters())
        super().__init__(model=wrapped, optimizer=optimizer, **base_kwargs)

    def mechanism_activity(self, strategy=None) -> dict[str, float]:
        """The learned temperature (the method interface's per-experience record)."""
        return {"temperature": self.model.temperature}


class NaiveScaledLR(FastTemplate):
    """Naive fine-tuning with the optimizer's learning rate multiplied by ``lr_factor``
    (default :data:`DEFAULT_LR_FACTOR`, NeuMoSync's step factor at its default caps): the
    optimizer is rebuilt with ``lr = lr_factor * lr``, same class and other settings."""

    @checked(lr_factor=real(0.0, None, low_open=True))
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_factor: float = DEFAULT_LR_FACTOR,
        **base_kwargs,
    ):
        lr = float(optimizer.defaults["lr"]) * float(lr_factor)
        optimizer = _same_optimizer(optimizer, model.parameters(), lr=lr)
        self.lr_factor = float(lr_factor)
        super().__init__(model=model, optimizer=optimizer, **base_kwargs)


NAIVE_TEMPERATURE_METHOD = Method(
    "NaiveTemperature",
    NaiveTemperature,
    doc="Naive with a learned output temperature (a control for NeuMoSync's diagnosis)",
)
NAIVE_SCALED_LR_METHOD = Method(
    "NaiveScaledLR",
    NaiveScaledLR,
    tunable=("lr_factor",),
    doc="Naive with its lr times NeuMoSync's step factor at the caps (a control)",
)

"""Plasticity diagnostics (docs/metrics.md): dormant units, feature rank, |weight|, gradient norm.

Pure functions:

- :func:`~avalanche_neumod.models.units.redo_scores` /
  :func:`~avalanche_neumod.models.units.dormant_fraction` (in ``models/units.py``):
  ReDo's score of unit ``i`` of a layer, ``s_i = E|h_i| / ((1/H) sum_k E|h_k|)``
  (expectation over the batch, the spatial positions and CReLU copies); a unit is
  tau-dormant if ``s_i <= tau``
  (Sokar et al. 2023; a layer whose units are all silent has every score 0).
- :func:`effective_rank`: Roy & Vetterli's effective rank of a feature matrix,
  ``exp(-sum_i p_i log p_i)`` with ``p_i = sigma_i / sum_j sigma_j`` over its
  singular values (0 for an all-zero matrix), as used by Dohare et al. 2024 on the
  penultimate features.
- :func:`mean_abs_weight`: mean of ``|w|`` over every element of the given
  weight tensors; :func:`grad_norm`: ``sqrt(sum ||g||^2)`` over gradients.

:class:`PlasticityMetric` computes them through the hidden-unit helper
(:mod:`avalanche_neumod.models.units`) on a fixed subset of the current training
experience, in eval mode without gradients, after each training experience
and, with ``every=N``, every N training iterations.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from torch import nn

from ..argument_rules import check_integer, check_real
from ..models.units import (
    UnitRecorder,
    dormant_fraction,
    read_units,
    recording_paused,
    unit_network,
)
from .subset_eval import ForwardFn, default_forward, eval_mode, training_subset


def _tensor(a) -> torch.Tensor:
    return (
        a.detach().float()
        if isinstance(a, torch.Tensor)
        else torch.as_tensor(np.asarray(a, dtype=np.float32))
    )


def effective_rank(features) -> float:
    """Roy & Vetterli's effective rank of a ``(samples, features)`` matrix."""
    f = _tensor(features)
    if f.dim() != 2 or f.numel() == 0:
        raise ValueError(f"features must be a non-empty 2-D matrix, got shape {tuple(f.shape)}")
    s = torch.linalg.svdvals(f.double())
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_abs_weight(weights: Iterable) -> float:
    """Mean of ``|w|`` over all elements of ``weights``."""
    ts = [_tensor(w).flatten() for w in weights]
    n = sum(t.numel() for t in ts)
    if n == 0:
        raise ValueError("no weights given")
    return float(sum(t.abs().sum() for t in ts) / n)


def grad_norm(grads: Iterable) -> float:
    """Global L2 norm ``sqrt(sum ||g||^2)`` of gradients (``None`` entries skipped)."""
    total = 0.0
    for g in grads:
        if g is not None:
            total += float(_tensor(g).pow(2).sum())
    return math.sqrt(total)


class _PreInput:
    """Forward pre-hook keeping the output layer's input (an object, so it is deep-copyable)."""

    def __init__(self):
        self.value: Optional[torch.Tensor] = None

    def __call__(self, module, args) -> None:
        self.value = args[0].detach()


def diagnose(
    model: nn.Module,
    x: torch.Tensor,
    t: Optional[torch.Tensor] = None,
    tau: float = 0.1,
    forward: Optional[ForwardFn] = None,
) -> dict[str, float]:
    """Dormant fraction per hidden layer (``dormant/<layer>``) and overall (``dormant``),
    effective rank of the penultimate features (``effective_rank``) and mean |weight| of the
    weight layers (``mean_abs_weight``) on a batch ``x``, in eval mode without gradients.

    A wrapper (NeuMoSync) is read through :func:`~avalanche_neumod.models.units.unit_network`:
    the units and weights are its wrapped network's, the activity is what they compute in
    ``model``'s forward (NeuMoSync: the InferenceNetwork, modulated weights and activity)."""
    check_real("tau", tau, 0.0)
    units = read_units(unit_network(model))
    forward = forward or default_forward
    if t is None:
        t = torch.zeros(len(x), dtype=torch.long, device=x.device)
    keep = _PreInput()
    handle = units.output_layer.register_forward_pre_hook(keep) if units.output_layer else None
    rec = UnitRecorder(units.hidden, ignore_pause=True)
    try:
        with eval_mode(model), torch.no_grad(), recording_paused():
            forward(model, x, t)
    finally:
        rec.remove()
        if handle is not None:
            handle.remove()
    out: dict[str, float] = {}
    dormant, total = 0.0, 0
    for hu, act in rec:
        frac = dormant_fraction(act, tau)
        out[f"dormant/{hu.name}"] = frac
        dormant += frac * hu.n_units
        total += hu.n_units
    out["dormant"] = dormant / total if total else 0.0
    if keep.value is not None:
        out["effective_rank"] = effective_rank(keep.value.flatten(1))
    out["mean_abs_weight"] = mean_abs_weight(layer.weight for layer in units.layers.values())
    return out


class PlasticityMetric(PluginMetric[dict]):
    """Plasticity diagnostics as Avalanche metric values.

    After each training experience (and every ``every`` iterations if given), on
    ``samples`` fixed samples of the current training experience (drawn by a private
    generator): ``DormantFraction/train_phase/train_stream`` (all hidden units, tau =
    ``tau``) and ``.../<layer>`` per layer, ``EffectiveRank/...`` (penultimate
    features), ``MeanAbsWeight/...`` and, with ``grad_norm``, ``GradNorm/...``: the mean
    over the iterations since the last emission of the gradient norm after backward.
    x = ``clock.train_iterations``.
    """

    def __init__(
        self,
        tau: float = 0.1,
        samples: int = 1000,
        every: Optional[int] = None,
        grad_norm: bool = True,
        seed: int = 0,
        forward: Optional[ForwardFn] = None,
    ):
        super().__init__()
        check_real("tau", tau, 0.0)
        check_integer("samples", samples, 1)
        check_integer("every", every, 1, none_ok=True)
        self.tau = tau
        self.samples = samples
        self.every = every
        self.track_grad = grad_norm
        self.seed = seed
        self.forward = forward
        self.last: dict[str, float] = {}
        self.history: list[dict] = []
        self._grad_norms: list[float] = []
        self._iters = 0
        self._batch = None

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def before_training_exp(self, strategy):
        self._batch = training_subset(strategy.experience, self.samples, self.seed)
        self._iters = 0

    def after_backward(self, strategy):
        if self.track_grad:
            self._grad_norms.append(grad_norm(p.grad for p in strategy.model.parameters()))

    def after_training_iteration(self, strategy):
        self._iters += 1
        if self.every is not None and self._iters % self.every == 0:
            return self._emit(strategy, strategy.clock.train_iterations + 1)
        return None

    def after_training_exp(self, strategy):
        return self._emit(strategy, strategy.clock.train_iterations)

    def _emit(self, strategy, x: int) -> list[MetricValue]:
        b = self._batch.to(strategy.device)
        values = diagnose(strategy.model, b.x, b.t, self.tau, self.forward)
        if self.track_grad and self._grad_norms:
            values["grad_norm"] = float(np.mean(self._grad_norms))
            self._grad_norms = []
        self.last = values
        self.history.append({"x": x, **values})
        names = {
            "dormant": "DormantFraction",
            "effective_rank": "EffectiveRank",
            "mean_abs_weight": "MeanAbsWeight",
            "grad_norm": "GradNorm",
        }
        out = []
        for key, v in values.items():
            if key.startswith("dormant/"):
                name = f"DormantFraction/train_phase/train_stream/{key.split('/', 1)[1]}"
            else:
                name = f"{names[key]}/train_phase/train_stream"
            out.append(MetricValue(self, name, float(v), x))
        return out


def plasticity_metrics(**kwargs) -> Sequence[PluginMetric]:
    """``[PlasticityMetric(**kwargs)]``, in the style of Avalanche's ``*_metrics`` helpers."""
    return [PlasticityMetric(**kwargs)]

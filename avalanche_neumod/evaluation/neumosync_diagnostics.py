"""NeuMoSync diagnostics: does the modulation act per neuron, and does it depend on the input?

Pure functions over alphas ``(N, 4)`` (batch context) or ``(B, N, 4)`` (per sample;
reduced to the per-neuron mean over samples first), columns (SM, WC, gain, shift),
and ``slices``: layer name -> ``slice`` of the layer's neurons (:func:`layer_slices`).
Each returns ``{layer: {kind: value}}``:

- :func:`alpha_spread`: ``std`` (population) of each alpha across the layer's
  neurons, and ``dev = mean_i |alpha_i - neutral|`` with neutral (1, 0, 1, 0), the
  values at which the InferenceNetwork is the MainNetwork. A std near 0 with a
  large dev means one global value for the layer;
- :func:`alpha_difference`: ``mean_i |a_i - b_i|`` between two sets of alphas. Used
  for the change across tasks (the alphas used at the end of task k against those
  at the end of task k - 1) and for the sensitivity to the input: the same
  network's alphas for two different batches of one task ("within") against a
  batch of the current task and one of the previous task ("between").

:class:`NeuMoSyncDiagnostics` emits them as Avalanche metric values after each
training experience (x = ``clock.train_iterations``), on fixed batches drawn by a
private generator from the experience's data, in eval mode without gradients:
``AlphaStd/train_phase/train_stream/<layer>/<kind>``, ``AlphaDev/...``,
``AlphaInputWithin/...``, and from the second experience on ``AlphaTaskChange/...``
and ``AlphaInputBetween/...`` (Avalanche's ``Name/<phase>_phase/<stream>_stream/...``
scheme: measured in the training phase on training data; before issue 16 the kind
came second, ``AlphaStd/<kind>/train_phase/...``).
"""

from __future__ import annotations

from typing import Optional

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from ..models.neumosync import ALPHA_KINDS, NeuMoSyncNetwork
from ..models.units import recording_paused
from .subset_eval import eval_mode, training_subset

NEUTRAL = (1.0, 0.0, 1.0, 0.0)  # SM, WC, gain, shift: the InferenceNetwork is the MainNetwork
PREFIXES = ("AlphaStd", "AlphaDev", "AlphaTaskChange", "AlphaInputWithin", "AlphaInputBetween")


def metric_name(prefix: str, layer: str, kind: str) -> str:
    """``<prefix>/train_phase/train_stream/<layer>/<kind>``, e.g. ``AlphaStd/.../h1/sm``."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown diagnostic {prefix!r}; valid: {', '.join(PREFIXES)}")
    return f"{prefix}/train_phase/train_stream/{layer}/{kind}"


def layer_slices(net: NeuMoSyncNetwork) -> dict[str, slice]:
    """Layer name -> slice of its neurons in the network-wide order."""
    return {layer.name: slice(layer.offset, layer.offset + layer.n) for layer in net.layers}


def _per_neuron(alphas: torch.Tensor) -> torch.Tensor:
    a = alphas.detach().double()
    if a.dim() == 3:
        a = a.mean(0)
    if a.dim() != 2 or a.shape[1] != 4:
        raise ValueError(f"alphas must be (N, 4) or (B, N, 4), got {tuple(alphas.shape)}")
    return a


def alpha_spread(alphas: torch.Tensor, slices: dict[str, slice]) -> dict[str, dict[str, dict]]:
    """Per layer and kind: ``{"std": std_i alpha_i, "dev": mean_i |alpha_i - neutral|}``."""
    a = _per_neuron(alphas)
    neutral = torch.tensor(NEUTRAL, dtype=a.dtype, device=a.device)
    out = {}
    for name, sl in slices.items():
        part = a[sl]
        std = part.std(0, unbiased=False).tolist()
        dev = (part - neutral).abs().mean(0).tolist()
        out[name] = {k: {"std": std[j], "dev": dev[j]} for j, k in enumerate(ALPHA_KINDS)}
    return out


def alpha_difference(
    a: torch.Tensor, b: torch.Tensor, slices: dict[str, slice]
) -> dict[str, dict[str, float]]:
    """Per layer and kind: ``mean_i |a_i - b_i|`` over the layer's neurons (``b`` is read on
    ``a``'s device: a stored CPU copy compares with alphas computed on the model's)."""
    pa, pb = _per_neuron(a), _per_neuron(b).to(a.device)
    if pa.shape != pb.shape:
        raise ValueError(f"alphas differ in shape: {tuple(pa.shape)} and {tuple(pb.shape)}")
    out = {}
    for name, sl in slices.items():
        d = (pa[sl] - pb[sl]).abs().mean(0).tolist()
        out[name] = {k: d[j] for j, k in enumerate(ALPHA_KINDS)}
    return out


class NeuMoSyncDiagnostics(PluginMetric[dict]):
    """Spread, task change and input sensitivity of NeuMoSync's alphas, per layer.

    After each training experience, on two disjoint fixed batches of ``samples``
    rows of the experience (and the first batch of the previous experience), in eval
    mode without gradients. A model that is not a :class:`NeuMoSyncNetwork` emits
    nothing. ``history`` keeps every emission as a dict.
    """

    def __init__(self, samples: int = 256, seed: int = 0):
        super().__init__()
        if int(samples) != samples or samples < 1:
            raise ValueError(f"samples must be an integer >= 1, got {samples}")
        self.samples = int(samples)
        self.seed = int(seed)
        self.last: dict = {}
        self.history: list[dict] = []
        self._batches: Optional[tuple] = None
        self._prev_x: Optional[torch.Tensor] = None
        self._prev_alphas: Optional[torch.Tensor] = None

    def reset(self) -> None:
        self.last = {}

    def result(self) -> dict:
        return dict(self.last)

    def before_training_exp(self, strategy):
        rows = training_subset(strategy.experience, 2 * self.samples, self.seed)
        half = max(len(rows) // 2, 1)
        first = rows.subset(torch.arange(half))
        second = rows.subset(torch.arange(half, len(rows))) if len(rows) > 1 else first
        self._batches = (first.x, second.x)

    def after_training_exp(self, strategy):
        net = strategy.model
        if not isinstance(net, NeuMoSyncNetwork) or self._batches is None:
            return None
        x = strategy.clock.train_iterations
        dev = strategy.device
        with eval_mode(net), torch.no_grad(), recording_paused():
            a1 = net.alphas(self._batches[0].to(dev))
            a2 = net.alphas(self._batches[1].to(dev))
            prev = None if self._prev_x is None else net.alphas(self._prev_x.to(dev))
        slices = layer_slices(net)
        values: dict[str, dict[str, dict[str, float]]] = {}
        spread = alpha_spread(a1, slices)
        values["AlphaStd"] = {n: {k: v["std"] for k, v in d.items()} for n, d in spread.items()}
        values["AlphaDev"] = {n: {k: v["dev"] for k, v in d.items()} for n, d in spread.items()}
        values["AlphaInputWithin"] = alpha_difference(a1, a2, slices)
        if prev is not None:
            values["AlphaInputBetween"] = alpha_difference(a1, prev, slices)
        if self._prev_alphas is not None:
            values["AlphaTaskChange"] = alpha_difference(a1, self._prev_alphas, slices)
        self._prev_x = self._batches[0]
        self._prev_alphas = a1.detach().cpu()
        self.last = values
        self.history.append({"x": x, **values})
        out = []
        for prefix, per_layer in values.items():
            for layer, kinds in per_layer.items():
                for kind, v in kinds.items():
                    name = metric_name(prefix, layer, kind)
                    out.append(MetricValue(self, name, float(v), x))
        return out

    def __str__(self) -> str:
        return "NeuMoSyncDiagnostics"


def neumosync_diagnostics_metrics(**kwargs) -> list[PluginMetric]:
    """``[NeuMoSyncDiagnostics(**kwargs)]``, in the style of Avalanche's ``*_metrics`` helpers."""
    return [NeuMoSyncDiagnostics(**kwargs)]

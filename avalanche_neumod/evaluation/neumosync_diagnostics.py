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
scheme: measured in the training phase on training data; older records put the kind
second, ``AlphaStd/<kind>/train_phase/...``). On the same first batch it also
emits the logit scale of the InferenceNetwork against the MainNetwork:
``LogitScale/train_phase/train_stream/<inference|main>/<abs|std>``, the mean ``|logit|``
and the std of all logits of the batch; and ``AlphaScale/train_phase/train_stream/<layer>/<kind>``,
the caps' distance from neutral (:func:`alpha_bounds`, which :func:`alpha_saturation` of
a stored history needs).

Over a stored alpha history (``NeuMoSync.alpha_history``: per recorded iteration, per
layer and kind, the ``[mean, std]`` over the layer's neurons; docs/neumosync.md,
"Recorded alphas"), the saturation readings:

- :func:`alpha_saturation`: the fraction of recorded iterations at which a layer's mean
  alpha lies within ``tol`` (1 %) of a cap, ``|mean - neutral| >= (1 - tol) a`` with
  ``a`` the alpha's scale (``alpha = neutral + a tanh(r)``, so ``|tanh r| >= 0.99`` on
  average over the layer's neurons; since no neuron passes the cap, the mean is that
  close to the cap only if the neurons' mean distance from it is below ``tol a``);
- :func:`history_spread`: the std across neurons relative to the deviation from neutral,
  ``sum std / sum |mean - neutral|`` over the recorded iterations;
- :func:`task_switch_response`: per task, the mean alpha over the first and the last
  ``fraction`` (10 %) of the task's iterations.

An alpha that a cell switches off (an ablation; gain and shift of the output layer) is
neutral with std 0 at every record and reads ``None`` in all three.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from ..models.neumosync import ALPHA_KINDS, NeuMoSyncNetwork
from ..models.units import recording_paused
from .subset_eval import eval_mode, training_subset

NEUTRAL = (1.0, 0.0, 1.0, 0.0)  # SM, WC, gain, shift: the InferenceNetwork is the MainNetwork
ALPHA_PREFIXES = (
    "AlphaStd",
    "AlphaDev",
    "AlphaTaskChange",
    "AlphaInputWithin",
    "AlphaInputBetween",
)
PREFIXES = (*ALPHA_PREFIXES, "LogitScale", "AlphaScale")
SATURATION_TOL = 0.01  # "within 1 % of a cap", in units of the alpha's scale a
SWITCH_FRACTION = 0.1  # the first and last 10 % of each task's iterations


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


# --------------------------------------------------------------------- alpha histories


def alpha_scales(alpha_scale: Union[float, Sequence[float]]) -> dict[str, float]:
    """Kind -> the scale ``a`` of ``alpha = neutral + a tanh(r)``, from a NeuMoSync
    ``alpha_scale`` argument (one number or four: SM, WC, gain, shift)."""
    one = isinstance(alpha_scale, (int, float)) and not isinstance(alpha_scale, bool)
    values = [float(alpha_scale)] * 4 if one else [float(a) for a in alpha_scale]
    if len(values) != 4 or not all(math.isfinite(a) and a > 0 for a in values):
        raise ValueError(f"alpha_scale must be one number > 0 or four, got {alpha_scale!r}")
    return dict(zip(ALPHA_KINDS, values))


Scales = Union[dict[str, float], dict[str, dict[str, float]]]


def _scale(scales: Scales, layer: str, kind: str) -> float:
    """``a`` of ``kind`` in ``layer``: ``scales`` per kind (every layer alike) or per layer
    and kind (the metric's ``AlphaScale``)."""
    if set(scales) <= set(ALPHA_KINDS):
        return float(scales[kind])  # type: ignore[arg-type]
    return float(scales[layer][kind])  # type: ignore[index]


def _records(history: dict) -> list[dict]:
    recs = list(history.get("iterations") or [])
    return sorted(recs, key=lambda r: int(r["iteration"]))


def _layers(history: dict, recs: list[dict]) -> list[str]:
    names = list(history.get("layers") or [])
    for r in recs:
        names += [n for n in r["layers"] if n not in names]
    return names


def _is_off(recs: list[dict], layer: str, j: int) -> bool:
    """Neutral with std 0 at every record: the alpha is switched off in this cell."""
    kind = ALPHA_KINDS[j]
    for r in recs:
        mean, std = r["layers"].get(layer, {}).get(kind, (NEUTRAL[j], 0.0))
        if mean != NEUTRAL[j] or std != 0.0:
            return False
    return True


def alpha_saturation(
    history: dict, scales: Scales, tol: float = SATURATION_TOL
) -> dict[str, dict[str, Optional[dict[str, float]]]]:
    """Per layer and kind: ``{"upper": f, "lower": f}``, the fractions of the recorded
    iterations at which the layer's mean alpha is within ``tol * a`` of the upper cap
    (``neutral + a``) and of the lower one (``neutral - a``); ``None`` for an alpha that
    is off or has no fixed cap (``a = 0``: e.g. NeuMoSync's ``normalised_gains``). Empty
    without per-iteration records. ``scales``: ``a`` per kind, or per layer and kind."""
    recs = _records(history)
    if not recs:
        return {}
    out: dict = {}
    for layer in _layers(history, recs):
        out[layer] = {}
        for j, kind in enumerate(ALPHA_KINDS):
            a = _scale(scales, layer, kind)
            if _is_off(recs, layer, j) or a <= 0:
                out[layer][kind] = None
                continue
            edge = (1.0 - tol) * a
            dev = [r["layers"][layer][kind][0] - NEUTRAL[j] for r in recs if layer in r["layers"]]
            n = len(dev)
            out[layer][kind] = {
                "upper": sum(d >= edge for d in dev) / n,
                "lower": sum(d <= -edge for d in dev) / n,
            }
    return out


def range_used(history: dict, scales: Scales) -> dict[str, dict[str, Optional[float]]]:
    """Per layer and kind: the mean over the recorded iterations of ``|mean - neutral| / a``
    (0: neutral, 1: at a cap); ``None`` for an alpha that is off or has no fixed cap."""
    recs = _records(history)
    out: dict = {}
    for layer in _layers(history, recs) if recs else []:
        out[layer] = {}
        for j, kind in enumerate(ALPHA_KINDS):
            pts = [
                abs(r["layers"][layer][kind][0] - NEUTRAL[j]) for r in recs if layer in r["layers"]
            ]
            a = _scale(scales, layer, kind)
            off = _is_off(recs, layer, j) or a <= 0
            out[layer][kind] = None if off else sum(pts) / len(pts) / a
    return out


def history_spread(history: dict) -> dict[str, dict[str, Optional[float]]]:
    """Per layer and kind: ``sum std / sum |mean - neutral|`` over the recorded iterations
    (std across the layer's neurons over their mean deviation from neutral; near 0: one
    value for the layer); ``None`` for an alpha that is off or never leaves neutral."""
    recs = _records(history)
    out: dict = {}
    for layer in _layers(history, recs) if recs else []:
        out[layer] = {}
        for j, kind in enumerate(ALPHA_KINDS):
            pts = [r["layers"][layer][kind] for r in recs if layer in r["layers"]]
            dev = sum(abs(m - NEUTRAL[j]) for m, _ in pts)
            std = sum(s for _, s in pts)
            off = _is_off(recs, layer, j)
            out[layer][kind] = None if off or dev == 0 else std / dev
    return out


def _task_spans(history: dict, recs: list[dict]) -> list[tuple[int, int, int]]:
    """``(experience, first iteration, end)`` per task in training order: from the
    per-experience records' cumulative iteration counts, else the records' own range."""
    exps = history.get("experiences") or []
    if exps and all("iterations" in e for e in exps):
        spans, start = [], 0
        for e in exps:
            end = int(e["iterations"])
            spans.append((int(e["experience"]), start, end))
            start = end
        return spans
    spans: dict[int, list[int]] = {}
    for r in recs:
        spans.setdefault(int(r["experience"]), []).append(int(r["iteration"]))
    return [(e, min(its), max(its) + 1) for e, its in spans.items()]


def task_switch_response(history: dict, fraction: float = SWITCH_FRACTION) -> list[dict]:
    """Per task (training order): ``{"experience", "layers": {layer: {kind: {"early": m,
    "late": m}}}}``, the mean over the records in the task's first and last ``fraction``
    of its iterations of the layer's mean alpha (``None`` where no record falls in the
    window, or the alpha is off)."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    recs = _records(history)
    if not recs:
        return []
    layers = _layers(history, recs)
    off = {(lay, j) for lay in layers for j in range(4) if _is_off(recs, lay, j)}
    out = []
    for exp, start, end in _task_spans(history, recs):
        n = end - start
        early = [r for r in recs if start <= r["iteration"] < start + fraction * n]
        late = [r for r in recs if end - fraction * n <= r["iteration"] < end]
        per_layer: dict = {}
        for lay in layers:
            per_layer[lay] = {}
            for j, kind in enumerate(ALPHA_KINDS):
                cell = {}
                for name, part in (("early", early), ("late", late)):
                    vals = [r["layers"][lay][kind][0] for r in part if lay in r["layers"]]
                    ok = vals and (lay, j) not in off
                    cell[name] = sum(vals) / len(vals) if ok else None
                per_layer[lay][kind] = cell
        out.append({"experience": exp, "layers": per_layer})
    return out


def logit_scale(logits: torch.Tensor) -> dict[str, float]:
    """``{"abs": mean |logit|, "std": std of all logits}`` of a batch ``(B, C)``."""
    z = logits.detach().double()
    return {"abs": float(z.abs().mean()), "std": float(z.std(unbiased=False))}


def alpha_bounds(net: NeuMoSyncNetwork) -> dict[str, dict[str, float]]:
    """Per layer and kind, the largest ``|alpha - neutral|`` the network lets the alpha
    reach (its cap's distance from neutral; 0 where the alpha is fixed or has no fixed
    cap): the network's ``alpha_bound`` where it has one, else its gate ``a``."""
    bound = getattr(net, "alpha_bound", None)
    bound = net.alpha_gate if bound is None else bound
    return {
        name: dict(zip(ALPHA_KINDS, bound[sl].amax(0).tolist()))
        for name, sl in layer_slices(net).items()
    }


class NeuMoSyncDiagnostics(PluginMetric[dict]):
    """Spread, task change and input sensitivity of NeuMoSync's alphas, per layer, and
    the logit scale of the InferenceNetwork against the MainNetwork.

    After each training experience, on two disjoint fixed batches of ``samples``
    rows of the experience (and the first batch of the previous experience), in eval
    mode without gradients; the logit scale on the first batch (the InferenceNetwork
    with that batch's alphas, and the MainNetwork theta alone). A model that is not a
    :class:`NeuMoSyncNetwork` emits nothing. ``history`` keeps every emission as a dict.
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
            x1 = self._batches[0].to(dev)
            a1 = net.alphas(x1)
            a2 = net.alphas(self._batches[1].to(dev))
            prev = None if self._prev_x is None else net.alphas(self._prev_x.to(dev))
            logits = {"inference": net.inference_forward(x1, a1), "main": net.main(x1)}
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
        values["LogitScale"] = {k: logit_scale(z) for k, z in logits.items()}
        values["AlphaScale"] = alpha_bounds(net)
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

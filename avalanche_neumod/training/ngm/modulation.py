"""NGM-SGD's entropy-driven gain modulation as an Avalanche plugin (docs/ngm.md).

After each training iteration's optimizer step the plugin reads that
iteration's logits (``strategy.mb_output``, detached) and computes

    H = batch mean of the softmax entropy, in nats.

Before the next training forward it updates every gain of every gained layer:

    g <- gamma * g + (1 - gamma) * g0 + eta * H          (H = 0 before the first update)

so the gains relax to g0 with time constant 1 / (1 - gamma) iterations and sit
at the fixed point g* = g0 + eta * H / (1 - gamma) under a constant entropy:
they rise when the model is uncertain (at a task switch). Evaluation forwards
use the current gains and never change them or H. H carries over from one
experience (and one ``train`` call) to the next, as in one continuous run.

The plugin puts gains on the strategy's model itself (``attach_gains``,
idempotent) before training or evaluation, so it works in any Avalanche
strategy: ``Naive(model, opt, plugins=[GainModulationPlugin(eta=0.4)])``.

Collapse detection: an iteration is *saturated* when H >= (1 - ``collapse_tol``) ln C
(C classes: the maximum entropy; under it the gains sit at their upper bound
g0 + eta ln C / (1 - gamma)), and *input-blind* when every logit is the same for
every example of the batch (a network whose units all died predicts a constant).
After ``collapse_patience`` consecutive saturated (or input-blind) iterations the
plugin warns once (``RuntimeWarning``) and sets ``collapsed`` (with
``collapse_info``); :meth:`~GainModulationPlugin.mechanism_failure` hands it to the suite
runner, which records such a cell as ``collapsed``. Healthy
NGM runs of the authors' MLP stay saturated for at most 3 consecutive iterations
(their first ones).
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence, Union

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..._checks import checked, integer, real
from .gains import GainInit, attach_gains, resolve_g_init, resolve_layers


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Batch mean of the softmax entropy (nats) of ``logits`` ``(batch, classes)``."""
    # entr(p) = -p ln p, with entr(0) = 0 (a -inf logit, e.g. a masked class, adds nothing)
    return torch.special.entr(torch.softmax(logits, dim=-1)).sum() / (
        logits.numel() // logits.shape[-1]
    )


def _input_blind(logits: torch.Tensor) -> bool:
    """True iff every example of the batch gets the same logits (never for a batch of
    one: nothing to compare; a NaN logit differs from everything, so never blind)."""
    flat = logits.reshape(-1, logits.shape[-1])
    return flat.shape[0] > 1 and not bool((flat != flat[:1]).any())


class GainModulationPlugin(SupervisedPlugin):
    """Entropy-driven gain modulation (NGM-SGD) for any Avalanche strategy.

    Args:
        eta: entropy drive (>= 0); the paper's values: Split-MNIST 0.4,
            Permuted-MNIST 0.3, Rotated-MNIST 0.5, Split-CIFAR-10 and
            Domain-CIFAR-100 0.2.
        gamma: gain persistence, in [0, 1) (default 0.9).
        g0: resting gain (> 0, default 1).
        g_init: the gains' value when they are put on the model: ``"one"`` (1, the
            authors' MLP; default), ``"g0"`` (the authors' ResNet head) or a float > 0.
            Gains already on the model are kept.
        layers: ``"all"`` (every Linear/Conv2d; the paper's MLP setting),
            ``"head"`` (the output layer only; the paper's ResNet setting) or a
            list of layer names.
        record: keep the gain and entropy history (one Python float per
            iteration per layer).
        collapse_patience: consecutive saturated or input-blind iterations that
            mark a collapse (default 50; 0 disables the check).
        collapse_tol: relative tolerance of "H at its maximum ln C" (default 0.02).

    History (when ``record``): ``entropy_history[t]`` is H of training iteration
    t; ``gain_history[name][t]`` the mean gain of layer ``name`` used in
    iteration t's forward (computed in float64 by the same recurrence, re-read
    from the buffer at each experience start); ``experience_starts`` the iteration index at which
    each training experience began.
    """

    @checked(
        eta=real(0.0),
        gamma=real(0.0, 1.0, high_open=True),
        g0=real(0.0, low_open=True),
        collapse_patience=integer(0),
        collapse_tol=real(0.0, 1.0, low_open=True, high_open=True),
    )
    def __init__(
        self,
        eta: float,
        gamma: float = 0.9,
        g0: float = 1.0,
        layers: Union[str, Sequence[str]] = "all",
        record: bool = True,
        g_init: GainInit = "one",
        collapse_patience: int = 50,
        collapse_tol: float = 0.02,
    ):
        super().__init__()
        if isinstance(layers, str):
            if layers not in ("all", "head"):
                raise ValueError(f"layers must be 'all', 'head' or a list of names, got {layers!r}")
        else:
            layers = list(layers)
            if not layers or not all(isinstance(n, str) for n in layers):
                raise ValueError(f"layers must be a non-empty list of layer names, got {layers}")
        self.collapse_patience = int(collapse_patience)
        self.collapse_tol = float(collapse_tol)
        self.collapsed = False
        self.collapse_info: Optional[dict] = None
        self.iterations = 0
        self._saturated = 0
        self._blind = 0
        resolve_g_init(g_init, g0)  # validates
        self.g_init = g_init
        self.eta = float(eta)
        self.gamma = float(gamma)
        self.g0 = float(g0)
        self.layers = layers
        self.record = record
        self.entropy = 0.0  # H of the last training iteration (0 before the first)
        self.entropy_history: list[float] = []
        self.gain_history: dict[str, list[float]] = {}
        self.experience_starts: list[int] = []
        self._model: Optional[nn.Module] = None
        self._modules: dict[str, nn.Module] = {}
        self._mean: dict[str, float] = {}

    # ---- gains on the model ----
    def attach(self, model: nn.Module) -> dict[str, nn.Module]:
        """Put gains on ``model`` (idempotent) and remember its gained layers."""
        if model is not self._model:
            attach_gains(model, self.layers, self.g0, self.g_init)
            self._modules = resolve_layers(model, self.layers)
            self._model = model
            for name in self._modules:
                self.gain_history.setdefault(name, [])
            self._read_means()
        return self._modules

    def gains(self) -> dict[str, torch.Tensor]:
        """The current gain buffers of the modulated layers."""
        return {n: m.gain for n, m in self._modules.items()}

    @torch.no_grad()
    def update_gains(self) -> None:
        """g <- gamma * g + (1 - gamma) * g0 + eta * H, with H of the last iteration."""
        shift = (1.0 - self.gamma) * self.g0 + self.eta * self.entropy
        gains = [m.gain for m in self._modules.values()]
        # g <- gamma g + (1 - gamma) g0 + eta H, on every gained layer at once
        torch._foreach_mul_(gains, self.gamma)
        torch._foreach_add_(gains, shift)
        if self.record:
            # a layer's mean gain follows the same recurrence: tracked as a Python float
            # (no tensor read per iteration), re-read from the buffers at each experience start
            for name in self._modules:
                mean = self._mean[name] = self.gamma * self._mean[name] + shift
                self.gain_history[name].append(mean)

    def _read_means(self) -> None:
        self._mean = {n: m.gain.double().mean().item() for n, m in self._modules.items()}

    # ---- Avalanche events ----
    def before_training(self, strategy, **kwargs) -> None:
        self.attach(strategy.model)

    def before_eval(self, strategy, **kwargs) -> None:
        self.attach(strategy.model)

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self.record:
            self.experience_starts.append(len(self.entropy_history))
            self._read_means()

    def before_forward(self, strategy, **kwargs) -> None:
        # Right before the training forward (not in before_training_iteration): a tracker
        # that evaluates at the start of an iteration sees the gains of the last training
        # forward whatever the plugin order.
        self.attach(strategy.model)  # an identity check unless the model was replaced
        self.update_gains()

    def after_update(self, strategy, **kwargs) -> None:
        # H of this iteration's logits, taken right after its optimizer step (before
        # any evaluation another plugin may run in after_training_iteration).
        out = strategy.mb_output.detach()
        self.iterations += 1  # training iterations seen (1-based in collapse_info)
        self.entropy = softmax_entropy(out).item()
        if self.collapse_patience:
            self._check_collapse(out.shape[-1], _input_blind(out))
        if self.record:
            self.entropy_history.append(self.entropy)

    def gain_bound(self, n_classes: int) -> float:
        """The largest fixed point of the gains: ``g0 + eta ln C / (1 - gamma)``."""
        return self.g0 + self.eta * math.log(n_classes) / (1.0 - self.gamma)

    def _check_collapse(self, n_classes: int, blind: bool) -> None:
        saturated = n_classes > 1 and self.entropy >= (1 - self.collapse_tol) * math.log(n_classes)
        self._saturated = self._saturated + 1 if saturated else 0
        self._blind = self._blind + 1 if blind else 0
        if self.collapsed or max(self._saturated, self._blind) < self.collapse_patience:
            return
        reason = (
            "entropy at its maximum ln C (gains at their bound)"
            if self._saturated >= self.collapse_patience
            else "logits independent of the input"
        )
        gains = {n: m.gain.double().mean().item() for n, m in self._modules.items()}
        self.collapsed = True
        self.collapse_info = {
            "iteration": self.iterations,
            "reason": reason,
            "patience": self.collapse_patience,
            "entropy": self.entropy,
            "max_entropy": math.log(n_classes),
            "gain_bound": self.gain_bound(n_classes),
            "mean_gain": gains,
        }
        warnings.warn(
            f"NGM collapse at training iteration {self.iterations}: {reason} for "
            f"{self.collapse_patience} consecutive iterations (H = {self.entropy:.3f}, "
            f"ln C = {math.log(n_classes):.3f}; mean gains "
            f"{[round(g, 2) for g in gains.values()]}, "
            f"bound {self.gain_bound(n_classes):.2f}). The network predicts (nearly) the same "
            "for every input; see docs/ngm.md for settings that work on conv nets.",
            RuntimeWarning,
            stacklevel=2,
        )

    # ---- what the mechanism did (training.method.ReportsMechanism) ----
    def mechanism_history(self) -> dict[str, dict]:
        """``{"gains": ...}``: the mean gain of every layer per training iteration, the
        entropy, the experience boundaries and the settings (from :meth:`history`)."""
        h = self.history()
        n = max((len(v) for v in h["gain"].values()), default=0)
        return {
            "gains": {
                "iteration": list(range(1, n + 1)),
                "layers": h["gain"],
                "entropy": h["entropy"],
                "boundaries": h["experience_starts"],
                "settings": {k: h[k] for k in ("gamma", "eta", "g0")},
            }
        }

    def mechanism_failure(self) -> Optional[dict]:
        """The collapse record (``collapse_info``, with its ``reason``) once collapsed."""
        return self.collapse_info if self.collapsed else None

    def history(self) -> dict:
        """The recorded history as plain lists (JSON-ready)."""
        return {
            "entropy": list(self.entropy_history),
            "gain": {n: list(v) for n, v in self.gain_history.items()},
            "experience_starts": list(self.experience_starts),
            "gamma": self.gamma,
            "eta": self.eta,
            "g0": self.g0,
            "g_init": self.g_init,
            "collapsed": self.collapse_info,
        }

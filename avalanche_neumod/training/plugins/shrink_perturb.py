"""Shrink & Perturb (Ash & Adams, NeurIPS 2020) as an Avalanche plugin.

After every optimizer step (or, ``every="experience"``, before each training
experience after the first, as in Ash & Adams' warm-starting setting)::

    theta <- (1 - p) * theta + sigma * theta_fresh

with ``theta_fresh`` drawn from each parameter's initial distribution, PyTorch's
default initialisation: ``U(-b, b)`` with ``b = 1/sqrt(fan_in)``
(:func:`~avalanche_neumod.models.units.default_init_bound`) for the weights and
biases of ``Linear``/``Conv`` layers, 1 (weight) and 0 (bias) for normalisation
layers. The uniforms come from torch's global generator (one ``uniform_`` per
parameter per step), so ``torch.manual_seed`` reproduces a run and a deep copy of
the plugin keeps drawing fresh noise. For other modules, or with ``init`` given, a
scratch copy is re-initialised every time (``module.reset_parameters()`` or
``init(model_copy)``) and its parameters are used.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..._checks import callable_or_none, checked, one_of, real
from ...models.units import default_init_bound

_UNIFORM = (nn.Linear, nn.modules.conv._ConvNd)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
EVERY = ("iteration", "experience")


class ShrinkPerturbPlugin(SupervisedPlugin):
    """``theta <- (1 - p) * theta + sigma * theta_fresh`` after every step.

    Args:
        p: shrink factor, in [0, 1] (default 1e-4).
        sigma: perturbation scale, >= 0 (default 1e-2).
        every: ``"iteration"`` (after every optimizer step) or ``"experience"``
            (before every training experience but the first).
        init: ``None`` (PyTorch's default initialisation, see the module
            docstring) or ``init(model_copy)`` re-initialising a copy of the model
            in place (e.g. a custom initialisation scheme).
    """

    @checked(p=real(0.0, 1.0), sigma=real(0.0), every=one_of(*EVERY), init=callable_or_none)
    def __init__(
        self,
        p: float = 1e-4,
        sigma: float = 1e-2,
        every: str = "iteration",
        init: Optional[Callable[[nn.Module], None]] = None,
    ):
        super().__init__()
        self.p = float(p)
        self.sigma = float(sigma)
        self.every = every
        self.init = init
        self._model: Optional[nn.Module] = None
        self._experiences = 0
        self.applications = 0  # shrink-and-perturb steps applied so far

    def attach(self, model: nn.Module) -> None:
        """Sort ``model``'s trainable parameters by how their ``theta_fresh`` is drawn."""
        self._model = model
        self.params = [q for q in model.parameters() if q.requires_grad]
        self._uniform: list[torch.Tensor] = []  # theta_fresh ~ U(-b, b)
        self._half_width: list[float] = []  # sigma * b
        self._const: list[torch.Tensor] = []  # theta_fresh constant (normalisation layers)
        self._const_values: list[float] = []  # sigma * theta_fresh
        self._fresh: list[tuple[torch.Tensor, torch.Tensor]] = []  # (param, scratch param)
        self._scratch: list[nn.Module] = []  # re-initialised each step
        if self.init is not None:
            self._scratch = [copy.deepcopy(model)]
            scratch = dict(self._scratch[0].named_parameters())
            self._fresh = [(q, scratch[n]) for n, q in model.named_parameters() if q.requires_grad]
        else:
            for module in model.modules():
                own = {n: q for n, q in module.named_parameters(recurse=False) if q.requires_grad}
                if not own:
                    continue
                if isinstance(module, _UNIFORM):
                    b = default_init_bound(module)
                    self._uniform += own.values()
                    self._half_width += [self.sigma * b] * len(own)
                elif isinstance(module, _NORMS):
                    self._const += own.values()
                    self._const_values += [self.sigma * (n == "weight") for n in own]
                elif hasattr(module, "reset_parameters"):
                    self._scratch.append(copy.deepcopy(module))
                    scratch = dict(self._scratch[-1].named_parameters(recurse=False))
                    self._fresh += [(q, scratch[n]) for n, q in own.items()]
                else:
                    raise ValueError(
                        f"ShrinkPerturb: cannot draw fresh parameters for {type(module).__name__} "
                        "(no reset_parameters); pass init=callable(model_copy)"
                    )
        self._noise = [torch.empty_like(q) for q in self._uniform]

    def _draw_noise(self) -> None:
        """Fill the noise buffers with ``sigma * theta_fresh ~ U(-sigma b, sigma b)``."""
        for buf, h in zip(self._noise, self._half_width):
            buf.uniform_(-h, h)

    @torch.no_grad()
    def shrink_perturb(self) -> None:
        """Apply ``theta <- (1 - p) theta + sigma theta_fresh`` once to the attached model."""
        self.applications += 1
        if self.params:
            torch._foreach_mul_(self.params, 1.0 - self.p)
        if self._uniform:
            self._draw_noise()
            torch._foreach_add_(self._uniform, self._noise)
        if self._const:
            torch._foreach_add_(self._const, self._const_values)
        if self._fresh:
            for m in self._scratch:
                if self.init is not None:
                    self.init(m)
                else:
                    m.reset_parameters()
            params, fresh = zip(*self._fresh)
            torch._foreach_add_(list(params), list(fresh), alpha=self.sigma)

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._model is not strategy.model:
            self.attach(strategy.model)
        if self.every == "experience" and self._experiences > 0:
            self.shrink_perturb()
        self._experiences += 1

    def after_update(self, strategy, **kwargs) -> None:
        if self.every == "iteration":
            self.shrink_perturb()

    # -- what the mechanism did (training.method.ReportsMechanism) ------------------------------
    def mechanism_activity(self, strategy) -> dict[str, int]:
        """``shrink_perturb_steps``: shrink-and-perturb applications so far."""
        return {"shrink_perturb_steps": self.applications}

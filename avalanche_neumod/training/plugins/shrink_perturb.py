"""Shrink & Perturb (Ash & Adams, NeurIPS 2020) as an Avalanche plugin (DESIGN 5.6).

After every optimizer step (or, ``every="experience"``, before each training
experience after the first, as in Ash & Adams' warm-starting setting)::

    theta <- (1 - p) * theta + sigma * theta_fresh

with ``theta_fresh`` a freshly initialised copy of the parameters. By default
``theta_fresh`` is drawn in closed form from PyTorch's default initialisation:
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the weights and biases of
``Linear``/``Conv`` layers, 1 (weight) and 0 (bias) for normalisation layers,
with one random draw for the whole model per step: on the CPU from the plugin's
own NumPy PCG64 stream (float32 uniforms with 24 random bits, as torch's, at about
0.6 of the cost of torch's Mersenne Twister for the same numbers; seeded from
torch's global RNG when the model is attached, so ``torch.manual_seed`` makes a
run reproducible), elsewhere from torch's global generator. For other modules, or with
``init`` given, a scratch copy of the model is re-initialised every time
(``module.reset_parameters()`` or ``init(copy)``) and its parameters are used.
"""

from __future__ import annotations

import copy
from typing import Callable, Optional

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..._checks import check_real

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

    def __init__(
        self,
        p: float = 1e-4,
        sigma: float = 1e-2,
        every: str = "iteration",
        init: Optional[Callable[[nn.Module], None]] = None,
    ):
        super().__init__()
        p = check_real("p (shrink factor)", p, 0.0, 1.0)
        sigma = check_real("sigma (perturbation scale)", sigma, 0.0)
        if every not in EVERY:
            raise ValueError(f"unknown every={every!r}; valid: {list(EVERY)}")
        if init is not None and not callable(init):
            raise ValueError("init must be None or a callable re-initialising a model in place")
        self.p = float(p)
        self.sigma = float(sigma)
        self.every = every
        self.init = init
        self._model: Optional[nn.Module] = None
        self._experiences = 0

    # -- preparing the fresh-parameter sampler --------------------------------------------------
    def attach(self, model: nn.Module) -> None:
        """Group ``model``'s trainable parameters by how a fresh copy of them is drawn."""
        self._model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        self._uniform: list[torch.Tensor] = []  # U(-b, b) entries
        self._const: list[torch.Tensor] = []  # constant init (norm layers)
        self._const_values: list[float] = []
        self._scratch: list[tuple[torch.Tensor, torch.Tensor]] = []  # (param, scratch param)
        self._scratch_modules: list[nn.Module] = []
        self._scratch_model: Optional[nn.Module] = None
        if self.init is not None:
            self._scratch_model = copy.deepcopy(model)
            pairs = dict(self._scratch_model.named_parameters())
            for name, p in model.named_parameters():
                if p.requires_grad:
                    self._scratch.append((p, pairs[name]))
            self._build_uniform([])
            return
        bounds: list[float] = []
        seen: set[int] = set()
        for module in model.modules():
            own = [p for p in module.parameters(recurse=False) if p.requires_grad]
            if not own:
                continue
            seen.update(id(p) for p in own)
            if isinstance(module, _UNIFORM):
                b = 1.0 / module.weight[0].numel() ** 0.5
                for p in own:
                    self._uniform.append(p)
                    bounds.append(b)
            elif isinstance(module, _NORMS):
                for name, p in module.named_parameters(recurse=False):
                    if p.requires_grad:
                        self._const.append(p)
                        self._const_values.append(1.0 if name == "weight" else 0.0)
            elif hasattr(module, "reset_parameters"):
                scratch = copy.deepcopy(module)
                self._scratch_modules.append(scratch)
                pairs = dict(scratch.named_parameters(recurse=False))
                for name, p in module.named_parameters(recurse=False):
                    if p.requires_grad:
                        self._scratch.append((p, pairs[name]))
            else:
                raise ValueError(
                    f"ShrinkPerturb: cannot draw fresh parameters for {type(module).__name__} "
                    "(no reset_parameters); pass init=callable(model_copy)"
                )
        self._build_uniform(bounds)

    def _build_uniform(self, bounds: list[float]) -> None:
        # sigma * theta_fresh ~ U(-sigma b, sigma b) for every entry, drawn as one flat
        # vector u ~ U[0, 1) per step and mapped with per-entry scale 2 sigma b, shift -sigma b
        sizes = [p.numel() for p in self._uniform]
        device = self._uniform[0].device if self._uniform else torch.device("cpu")
        scale = [torch.full((k,), 2.0 * self.sigma * b) for k, b in zip(sizes, bounds)]
        self._scale = torch.cat(scale).to(device) if scale else torch.empty(0)
        self._shift = self._scale * -0.5
        self._noise_flat = torch.empty(sum(sizes), device=device)
        self._noise = [v.view_as(p) for v, p in zip(self._noise_flat.split(sizes), self._uniform)]
        self._numpy_rng = None  # elsewhere than on the CPU: torch's global generator
        if device.type == "cpu":
            seed = int(torch.randint(0, 2**62, ()))
            self._numpy_rng = np.random.Generator(np.random.PCG64(seed))
            self._u = np.empty(sum(sizes), dtype=np.float32)

    def _draw_noise(self) -> None:
        """Fill the noise buffers with sigma * theta_fresh for every uniform entry."""
        if self._numpy_rng is not None:
            self._numpy_rng.random(dtype=np.float32, out=self._u)
            u = torch.from_numpy(self._u)  # a view, made here: deep copies stay consistent
        else:
            u = torch.rand(self._noise_flat.shape, device=self._noise_flat.device)
        torch.addcmul(self._shift, u, self._scale, out=self._noise_flat)

    # -- the mechanism --------------------------------------------------------------------------
    @torch.no_grad()
    def shrink_perturb(self) -> None:
        """Apply ``theta <- (1 - p) theta + sigma theta_fresh`` once to the attached model."""
        if self.params:
            torch._foreach_mul_(self.params, 1.0 - self.p)
        if self._uniform:
            self._draw_noise()
            torch._foreach_add_(self._uniform, self._noise)
        if self._const:
            torch._foreach_add_(self._const, [self.sigma * v for v in self._const_values])
        if self._scratch:
            if self._scratch_model is not None:
                self.init(self._scratch_model)
            for m in self._scratch_modules:
                m.reset_parameters()
            torch._foreach_add_(
                [p for p, _ in self._scratch],
                [f.to(p.device) for p, f in self._scratch],
                alpha=self.sigma,
            )

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._model is not strategy.model:
            self.attach(strategy.model)
        if self.every == "experience" and self._experiences > 0:
            self.shrink_perturb()
        self._experiences += 1

    def after_update(self, strategy, **kwargs) -> None:
        if self.every == "iteration":
            self.shrink_perturb()

"""Thin strategy wrappers, in the style of Avalanche's ``strategy_wrappers.py``.

Each is :class:`~avalanche_neumod.training.template.FastTemplate` (Avalanche's
``SupervisedTemplate`` on the fast path) plus its mechanism's plugin; every
argument of ``SupervisedTemplate`` (``train_mb_size``, ``train_epochs``,
``eval_mb_size``, ``device``, ``evaluator``, ``eval_every``, ...) is forwarded
through ``**base_kwargs``. The plugins work in any other Avalanche strategy too.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from avalanche.training.plugins import EWCPlugin
from torch import nn

from .._checks import check_real
from ..models.crelu import match_params as _match_params
from .plugins.cbp import CBPPlugin
from .plugins.l2init import L2InitPlugin
from .plugins.redo import ReDoPlugin
from .plugins.shrink_perturb import ShrinkPerturbPlugin
from .template import FastTemplate

# ---- plasticity baselines (DESIGN 5) ---------------------------------------------------------

__all__ = ["CBP", "CReLU", "L2Init", "L2InitEWC", "ReDo", "ShrinkPerturb"]


def _plugins(plugins: Optional[Sequence], *ours) -> list:
    return [*ours, *(plugins or [])]


class CBP(FastTemplate):
    """Continual Backprop (Dohare et al. 2024): Naive training + :class:`CBPPlugin`."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        rho: float = 1e-4,
        m: int = 100,
        d: float = 0.99,
        utility: str = "adaptable",
        accumulate: bool = True,
        next_bias_correction: bool = True,
        init: Optional[Callable[[torch.Tensor], None]] = None,
        sampling: str = "gnt",
        reset_sgd_momentum: bool = False,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        self.cbp = CBPPlugin(
            rho,
            m,
            d,
            utility,
            accumulate,
            next_bias_correction,
            init,
            sampling=sampling,
            reset_sgd_momentum=reset_sgd_momentum,
        )
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=_plugins(plugins, self.cbp),
            **base_kwargs,
        )


class ReDo(FastTemplate):
    """Recycling dormant neurons (Sokar et al. 2023): Naive training + :class:`ReDoPlugin`."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        tau: float = 0.1,
        F: int = 1000,
        every: str = "iterations",
        init: Optional[Callable[[torch.Tensor], None]] = None,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        self.redo = ReDoPlugin(tau, F, every, init)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=_plugins(plugins, self.redo),
            **base_kwargs,
        )


class L2Init(FastTemplate):
    """L2Init (Kumar et al. 2024): Naive training + :class:`L2InitPlugin` (``lam``)."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        lam: float = 1e-2,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        self.l2init = L2InitPlugin(lam)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=_plugins(plugins, self.l2init),
            **base_kwargs,
        )


class L2InitEWC(FastTemplate):
    """L2Init + EWC: :class:`L2InitPlugin` and Avalanche's own ``EWCPlugin``.

    ``ewc_lambda`` (required, as in Avalanche's ``EWC``), ``mode``
    (``"separate"``/``"online"``) and ``decay_factor`` are ``EWCPlugin``'s arguments.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        ewc_lambda: float,
        lam: float = 1e-2,
        mode: str = "separate",
        decay_factor: Optional[float] = None,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        ewc_lambda = check_real("ewc_lambda", ewc_lambda, 0.0)
        if mode not in ("separate", "online"):
            raise ValueError(f"unknown EWC mode {mode!r}; valid: ['separate', 'online']")
        if mode == "online":
            decay_factor = check_real("decay_factor (online EWC)", decay_factor, 0.0, 1.0)
        self.l2init = L2InitPlugin(lam)
        self.ewc = EWCPlugin(ewc_lambda, mode=mode, decay_factor=decay_factor)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=_plugins(plugins, self.l2init, self.ewc),
            **base_kwargs,
        )


class ShrinkPerturb(FastTemplate):
    """Shrink & Perturb (Ash & Adams 2020): Naive training + :class:`ShrinkPerturbPlugin`."""

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        p: float = 1e-4,
        sigma: float = 1e-2,
        every: str = "iteration",
        init: Optional[Callable[[nn.Module], None]] = None,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        self.shrink_perturb = ShrinkPerturbPlugin(p, sigma, every, init)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=_plugins(plugins, self.shrink_perturb),
            **base_kwargs,
        )


def _rebuild_optimizer(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    if len(optimizer.param_groups) != 1:
        raise ValueError(
            "CReLU: the model was replaced by its CReLU version, but the optimizer has "
            f"{len(optimizer.param_groups)} parameter groups and cannot be rebuilt; build the "
            "CReLU model first (avalanche_neumod.models.crelu.match_params) and its optimizer"
        )
    return type(optimizer)(model.parameters(), **optimizer.defaults)


class CReLU(FastTemplate):
    """CReLU (Abbas et al. 2023): a CReLU network trained with Naive fine-tuning.

    ``model`` may be:

    - a network that already uses CReLU (e.g. ``MLP(activation="crelu")``):
      trained as given;
    - one of this library's ReLU models (``MLP``, ``ConvNet``, ``SlimResNet18``):
      replaced by its CReLU version with hidden widths scaled so that the
      parameter count is within ``tol`` (5%) of the ReLU model's
      (``match_params=True``, default) or with the same widths
      (``match_params=False``). The new model is freshly initialised and the
      optimizer is rebuilt on its parameters with the same class and defaults
      (one parameter group only). The model trained is ``strategy.model``.

    Any other model raises ``ValueError``.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        match_params: bool = True,
        tol: float = 0.05,
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        tol = check_real("tol", tol, 0.0, 1.0, low_open=True, high_open=True)
        crelu_model = _match_params(model, tol=tol, match=match_params)
        if crelu_model is not model:
            optimizer = _rebuild_optimizer(optimizer, crelu_model)
        super().__init__(
            model=crelu_model,
            optimizer=optimizer,
            criterion=criterion,
            plugins=plugins,
            **base_kwargs,
        )


# ---- end of plasticity baselines -------------------------------------------------------------

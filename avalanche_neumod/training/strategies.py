"""Thin strategy wrappers, in the style of Avalanche's ``strategy_wrappers.py``.

Each is :class:`~avalanche_neumod.training.template.FastTemplate` (Avalanche's
``SupervisedTemplate`` on the fast path) plus its mechanism's plugin; every
argument of ``SupervisedTemplate`` (``train_mb_size``, ``train_epochs``,
``eval_mb_size``, ``device``, ``evaluator``, ``eval_every``, ...) is forwarded
through ``**base_kwargs``. A wrapper takes its plugin's arguments by name, with the
plugin's defaults (:mod:`.forwarding`: they are named in its signature and validated
by the plugin); the plugin comes before the user's ``plugins``. The plugins work in any
other Avalanche strategy too.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.training.plugins import EWCPlugin
from torch import nn

from .._checks import check_real, checked, forwards_to, one_of, real
from ..models.crelu import match_params as _match_params
from .forwarding import pop_arguments_of, takes_arguments_of
from .method import Method
from .plugins.cbp import CBPPlugin
from .plugins.l2init import L2InitPlugin
from .plugins.redo import ReDoPlugin
from .plugins.shrink_perturb import ShrinkPerturbPlugin
from .template import FastTemplate

# ---- plasticity baselines (docs/baselines.md) ------------------------------------------------

__all__ = [
    "CBP",
    "CBP_METHOD",
    "CReLU",
    "CRELU_METHOD",
    "L2INITEWC_METHOD",
    "L2INIT_METHOD",
    "L2Init",
    "L2InitEWC",
    "REDO_METHOD",
    "ReDo",
    "SHRINK_PERTURB_METHOD",
    "ShrinkPerturb",
]


class _PluginStrategy(FastTemplate):
    """``FastTemplate`` with the method's own plugins placed before the user's ``plugins``."""

    def __init__(
        self, *, ours: Sequence = (), plugins: Optional[Sequence] = None, **base_kwargs
    ):  # keyword-only: Avalanche warns about positional arguments to a strategy
        super().__init__(plugins=[*ours, *(plugins or [])], **base_kwargs)


class CBP(_PluginStrategy):
    """Continual Backprop (Dohare et al. 2024): Naive training + :class:`CBPPlugin`,
    built from ``CBPPlugin``'s arguments (``rho``, ``m``, ``d``, ...) given by name."""

    @takes_arguments_of(CBPPlugin)
    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, **base_kwargs):
        self.cbp = CBPPlugin(**pop_arguments_of(CBPPlugin, base_kwargs))
        super().__init__(ours=[self.cbp], model=model, optimizer=optimizer, **base_kwargs)


CBP_METHOD = Method("CBP", CBP, CBPPlugin, tunable=("rho", "m", "d"), doc="Continual Backprop")


class ReDo(_PluginStrategy):
    """Recycling dormant neurons (Sokar et al. 2023): Naive training + :class:`ReDoPlugin`,
    built from ``ReDoPlugin``'s arguments (``tau``, ``F``, ``every``, ``init``) given by name."""

    @takes_arguments_of(ReDoPlugin)
    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, **base_kwargs):
        self.redo = ReDoPlugin(**pop_arguments_of(ReDoPlugin, base_kwargs))
        super().__init__(ours=[self.redo], model=model, optimizer=optimizer, **base_kwargs)


REDO_METHOD = Method(
    "ReDo", ReDo, ReDoPlugin, tunable=("tau", "F"), doc="recycling dormant neurons"
)


class L2Init(_PluginStrategy):
    """L2Init (Kumar et al. 2024): Naive training + :class:`L2InitPlugin` (``lam``)."""

    @takes_arguments_of(L2InitPlugin)
    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, **base_kwargs):
        self.l2init = L2InitPlugin(**pop_arguments_of(L2InitPlugin, base_kwargs))
        super().__init__(ours=[self.l2init], model=model, optimizer=optimizer, **base_kwargs)


L2INIT_METHOD = Method(
    "L2Init", L2Init, L2InitPlugin, tunable=("lam",), doc="L2 regularisation towards init"
)


class L2InitEWC(_PluginStrategy):
    """L2Init + EWC: :class:`L2InitPlugin` and Avalanche's own ``EWCPlugin``.

    ``ewc_lambda`` (required, as in Avalanche's ``EWC``), ``mode``
    (``"separate"``/``"online"``) and ``decay_factor`` are ``EWCPlugin``'s arguments.
    """

    @checked(
        ewc_lambda=real(0.0),
        mode=one_of("separate", "online"),
        decay_factor=real(0.0, 1.0, none_ok=True),
    )
    @forwards_to(L2InitPlugin)
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        ewc_lambda: float,
        lam: float = 1e-2,
        mode: str = "separate",
        decay_factor: Optional[float] = None,
        **base_kwargs,
    ):
        if mode == "online":
            decay_factor = check_real("decay_factor (online EWC)", decay_factor, 0.0, 1.0)
        self.l2init = L2InitPlugin(lam)
        self.ewc = EWCPlugin(ewc_lambda, mode=mode, decay_factor=decay_factor)
        super().__init__(
            ours=[self.l2init, self.ewc], model=model, optimizer=optimizer, **base_kwargs
        )


L2INITEWC_METHOD = Method(
    "L2InitEWC",
    L2InitEWC,
    L2InitPlugin,  # with Avalanche's EWCPlugin
    tunable=("lam", "ewc_lambda", "decay_factor"),
    args={"ewc_lambda": 100.0},
    doc="L2Init + EWC",
)


class ShrinkPerturb(_PluginStrategy):
    """Shrink & Perturb (Ash & Adams 2020): Naive training + :class:`ShrinkPerturbPlugin`,
    built from its arguments (``p``, ``sigma``, ``every``, ``init``) given by name."""

    @takes_arguments_of(ShrinkPerturbPlugin)
    def __init__(self, *, model: nn.Module, optimizer: torch.optim.Optimizer, **base_kwargs):
        self.shrink_perturb = ShrinkPerturbPlugin(
            **pop_arguments_of(ShrinkPerturbPlugin, base_kwargs)
        )
        super().__init__(
            ours=[self.shrink_perturb], model=model, optimizer=optimizer, **base_kwargs
        )


SHRINK_PERTURB_METHOD = Method(
    "ShrinkPerturb",
    ShrinkPerturb,
    ShrinkPerturbPlugin,
    tunable=("p", "sigma"),
    doc="Shrink & Perturb",
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

    @checked(tol=real(0.0, 1.0, low_open=True, high_open=True))
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        match_params: bool = True,
        tol: float = 0.05,
        **base_kwargs,
    ):
        crelu_model = _match_params(model, tol=tol, match=match_params)
        if crelu_model is not model:
            optimizer = _rebuild_optimizer(optimizer, crelu_model)
        super().__init__(model=crelu_model, optimizer=optimizer, **base_kwargs)


CRELU_METHOD = Method("CReLU", CReLU, tunable=(), doc="CReLU network")


# ---- end of plasticity baselines -------------------------------------------------------------

"""The NGM-SGD strategy and its paper's baseline optimisers (docs/ngm.md).

:class:`NGMSGD` is the fast ``SupervisedTemplate`` + :class:`GainModulationPlugin`
+ the authors' optimiser: plain SGD on the gained layers' trainable parameters
and, where only some layers are gained (the ResNet setting, ``layers="head"``),
SGD with momentum 0.9 on the rest. :func:`ngm_baseline` builds the paper's
baselines (SGD, momentum-SGD 0.9, Adam) on the same network with gains fixed
at 1 (no gains: ``(x @ W.T) * 1 + b`` is the plain layer).

Only parameters with ``requires_grad`` are optimised: the authors' MLP
(:func:`~avalanche_neumod.models.ngm_mlp.ngm_mlp`) freezes its biases, so every
optimiser leaves them at 0.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..._checks import check_real, checked, forwards_to, real
from ..method import OWNS_OPTIMIZER, Method
from ..template import FastTemplate
from .gains import GainInit, attach_gains, resolve_layers
from .modulation import GainModulationPlugin

#: The baselines of NGM-SGD's study (its suite preset: ``stability_gap --preset ngm``).
BASELINE_OPTIMIZERS = ("sgd", "msgd", "adam")


def _trainable(params) -> list[nn.Parameter]:
    return [p for p in params if p.requires_grad]


def ngm_sgd_optimizer(
    model: nn.Module,
    lr: float = 0.01,
    layers: Union[str, Sequence[str]] = "all",
    backbone_momentum: float = 0.9,
) -> torch.optim.SGD:
    """The authors' optimiser: plain SGD on the ``layers``' parameters, momentum on the rest.

    With ``layers="all"`` (MLP) everything is plain SGD; with ``layers="head"``
    (ResNet) the backbone uses SGD with ``backbone_momentum`` and the head plain SGD.
    """
    check_real("lr", lr, 0.0, low_open=True)
    check_real("backbone_momentum", backbone_momentum, 0.0, 1.0, high_open=True)
    gained = {id(p) for m in resolve_layers(model, layers).values() for p in m.parameters()}
    head = _trainable(p for p in model.parameters() if id(p) in gained)
    rest = _trainable(p for p in model.parameters() if id(p) not in gained)
    groups = [{"params": head, "momentum": 0.0}]
    if rest:
        groups.append({"params": rest, "momentum": backbone_momentum})
    return torch.optim.SGD(groups, lr=lr)


def baseline_optimizer(
    model: nn.Module, name: str, lr: float = 0.01, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """One of the study's baseline optimisers over ``model``'s trainable parameters.

    ``"sgd"``: plain SGD; ``"msgd"``: SGD with ``momentum`` (0.9); ``"adam"``: Adam
    (PyTorch defaults besides ``lr``).
    """
    check_real("lr", lr, 0.0, low_open=True)
    params = _trainable(model.parameters())
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "msgd":
        check_real("momentum", momentum, 0.0, 1.0, high_open=True)
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"unknown baseline optimizer {name!r}; valid: {list(BASELINE_OPTIMIZERS)}")


class NGMSGD(FastTemplate):
    """NGM-SGD: SGD with entropy-driven gain modulation (Rodriguez-Garcia et al.).

    Puts gains on ``model``'s ``layers`` at construction and modulates them with
    a :class:`GainModulationPlugin` (``strategy.gain_plugin``, which also holds
    the gain history); the gains start at ``g_init`` (``"one"``: 1, the authors' MLP;
    ``"g0"``: the resting gain, their ResNet head; or a float). Without ``optimizer``,
    builds :func:`ngm_sgd_optimizer` (plain SGD with ``lr``; momentum
    ``backbone_momentum`` on ungained layers).
    ``collapse_patience``/``collapse_tol`` set the plugin's collapse detection.
    Other arguments are Avalanche's ``SupervisedTemplate`` ones, keyword-only.
    """

    @checked(lr=real(0.0, low_open=True), backbone_momentum=real(0.0, 1.0, high_open=True))
    @forwards_to(GainModulationPlugin)
    def __init__(
        self,
        *,
        model: nn.Module,
        eta: float,
        lr: float = 0.01,
        gamma: float = 0.9,
        g0: float = 1.0,
        g_init: GainInit = "one",
        layers: Union[str, Sequence[str]] = "all",
        optimizer: Optional[torch.optim.Optimizer] = None,
        backbone_momentum: float = 0.9,
        collapse_patience: int = 50,
        collapse_tol: float = 0.02,
        criterion=None,
        train_mb_size: int = 128,
        train_epochs: int = 1,
        eval_mb_size: Optional[int] = None,
        device="cpu",
        plugins: Optional[Sequence] = None,
        **base_kwargs,
    ):
        self.gain_plugin = GainModulationPlugin(
            eta=eta,
            gamma=gamma,
            g0=g0,
            layers=layers,
            g_init=g_init,
            collapse_patience=collapse_patience,
            collapse_tol=collapse_tol,
        )
        attach_gains(model, layers, g0, g_init)
        if optimizer is None:
            optimizer = ngm_sgd_optimizer(model, lr, layers, backbone_momentum)
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*(plugins or []), self.gain_plugin],
            **base_kwargs,
        )


NGMSGD_METHOD = Method(
    "NGMSGD",
    NGMSGD,
    GainModulationPlugin,
    optimizer=OWNS_OPTIMIZER,  # the authors' SGD (momentum on ungained layers), built by NGMSGD
    tunable=("eta", "gamma", "g0", "backbone_momentum"),
    args={"eta": 0.3, "lr": 0.01},
    doc="NGM-SGD gain modulation",
)


def ngm_baseline(
    name: str,
    *,
    model: nn.Module,
    lr: float = 0.01,
    momentum: float = 0.9,
    train_mb_size: int = 128,
    **base_kwargs,
) -> FastTemplate:
    """A baseline of the NGM study (``"sgd"``, ``"msgd"``, ``"adam"``) on ``model``, gains at 1.

    A plain fast strategy (``FastTemplate``) with :func:`baseline_optimizer`;
    ``base_kwargs`` go to it (``eval_mb_size``, ``device``, ``plugins``, ``evaluator``...).
    """
    optimizer = baseline_optimizer(model, name, lr, momentum)
    return FastTemplate(
        model=model, optimizer=optimizer, train_mb_size=train_mb_size, **base_kwargs
    )

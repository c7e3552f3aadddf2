"""CReLU networks with the parameter count of their ReLU counterparts (docs/baselines.md, CReLU).

CReLU doubles each hidden layer's output, so the next layer's fan-in doubles.
To compare at equal size (Abbas et al. 2023), the hidden widths are scaled by a
common factor, chosen so that the CReLU network's parameter count is as close as
possible to the ReLU network's (and within ``tol``, 5% by default).
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import nn

from .activations import CReLU
from .convnet import ConvNet
from .mlp import MLP
from .resnet import SlimResNet18


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def mlp_params(
    input_size: int,
    hidden_sizes: Sequence[int],
    num_classes: int,
    factor: int = 1,
    bias: bool = True,
) -> int:
    """Parameter count of ``MLP`` (``factor`` = 2 for CReLU)."""
    total, fan_in = 0, input_size
    for w in list(hidden_sizes) + [num_classes]:
        total += fan_in * w + (w if bias else 0)
        fan_in = w * factor
    return total


def _match(
    widths: Sequence[int], count: Callable[[list[int]], int], target: int, tol: float
) -> list[int]:
    """Scale ``widths`` by one factor so that ``count(scaled)`` is closest to ``target``."""

    def scaled(alpha: float) -> list[int]:
        return [max(1, round(alpha * w)) for w in widths]

    lo, hi = 0.0, 1.0
    while count(scaled(hi)) < target:  # CReLU is larger at equal widths; guard anyway
        hi *= 2
    for _ in range(60):  # count(scaled(alpha)) is non-decreasing in alpha
        if scaled(lo) == scaled(hi) or all(abs(a - b) <= 1 for a, b in zip(scaled(lo), scaled(hi))):
            break
        mid = (lo + hi) / 2
        if count(scaled(mid)) < target:
            lo = mid
        else:
            hi = mid
    best = min((scaled(lo), scaled(hi)), key=lambda ws: abs(count(ws) - target))
    err = abs(count(best) - target) / target
    if err > tol:
        raise ValueError(
            f"cannot match {target} parameters within {tol:.0%} by scaling widths {list(widths)} "
            f"(best {count(best)} with {best})"
        )
    return best


def crelu_widths(
    hidden_sizes: Sequence[int],
    input_size: int = 784,
    num_classes: int = 10,
    bias: bool = True,
    tol: float = 0.05,
) -> list[int]:
    """Hidden widths of a CReLU ``MLP`` whose parameter count matches the ReLU ``MLP``'s.

    E.g. ``crelu_widths((100, 100))`` for MNIST gives ``[91, 91]`` (89,918 against 89,610).
    """
    target = mlp_params(input_size, hidden_sizes, num_classes, 1, bias)
    return _match(
        hidden_sizes, lambda ws: mlp_params(input_size, ws, num_classes, 2, bias), target, tol
    )


def _is_crelu(model: nn.Module) -> bool:
    return any(isinstance(m, CReLU) for m in model.modules())


def match_params(model: nn.Module, tol: float = 0.05, match: bool = True) -> nn.Module:
    """A CReLU version of one of this library's ReLU models, parameter-matched within ``tol``.

    Accepts ``MLP``, ``ConvNet`` and ``SlimResNet18`` (any activation other than
    CReLU); the hidden widths (MLP ``hidden_sizes``; ConvNet ``channels`` and
    ``hidden``; ResNet ``nf``) are scaled by one common factor. With
    ``match=False`` the widths are kept (the CReLU network is then larger). A
    model that already uses CReLU is returned as is. The new model is freshly
    initialised. Other models raise ``ValueError``.
    """
    if _is_crelu(model):
        return model
    target = count_params(model)
    if isinstance(model, MLP):
        linear = [m for m in model if isinstance(m, nn.Linear)]
        bias = linear[0].bias is not None

        def build(ws: Sequence[int]) -> nn.Module:
            return MLP(model.input_size, ws, model.num_classes, activation="crelu", bias=bias)

        widths = list(model.hidden_sizes)
        if match:
            widths = _match(
                widths,
                lambda ws: mlp_params(model.input_size, ws, model.num_classes, 2, bias),
                target,
                tol,
            )
        return build(widths)
    if isinstance(model, ConvNet):
        channels = model[0].out_channels
        hidden = model[7].out_features

        def build(ws: Sequence[int]) -> nn.Module:
            return ConvNet(
                model.in_channels,
                model.num_classes,
                model.input_size,
                channels=ws[0],
                hidden=ws[1],
                activation="crelu",
            )

        widths = [channels, hidden]
        if match:
            widths = _match(widths, lambda ws: count_params(build(ws)), target, tol)
        return build(widths)
    if isinstance(model, SlimResNet18):

        def build(ws: Sequence[int]) -> nn.Module:
            return SlimResNet18(
                model.num_classes, ws[0], model.conv1.in_channels, activation="crelu"
            )

        widths = [model.conv1.out_channels]
        if match:
            widths = _match(widths, lambda ws: count_params(build(ws)), target, tol)
        return build(widths)
    raise ValueError(
        f"match_params supports this library's MLP, ConvNet and SlimResNet18, "
        f"got {type(model).__name__}; build the CReLU model yourself (e.g. with crelu_widths)"
    )

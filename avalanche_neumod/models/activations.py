"""Activation modules shared by the models (including CReLU, Abbas et al. 2023)."""

from __future__ import annotations

import torch
from torch import nn


class CReLU(nn.Module):
    """Concatenated ReLU (Abbas et al. 2023): ``ReLU(concat(x, -x))`` along dim 1.

    The output has twice the input's features (or channels): output column
    ``j * n + i`` (j in {0, 1}) is copy j of unit i.
    """

    width_factor = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.cat((x, -x), dim=1))


ACTIVATIONS = {
    "relu": nn.ReLU,
    "crelu": CReLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def make_activation(name: str) -> nn.Module:
    """A fresh activation module by name; unknown names list the valid ones."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}") from None


def width_factor(name: str) -> int:
    """How many outputs an activation makes per input unit (2 for CReLU)."""
    make_activation(name)  # validates the name
    return getattr(ACTIVATIONS[name], "width_factor", 1)

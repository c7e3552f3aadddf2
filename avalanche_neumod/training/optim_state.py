"""Resetting an optimizer's per-parameter state for re-initialised weights (CBP, ReDo).

Every state tensor shaped like its parameter (Adam's ``exp_avg``/``exp_avg_sq``/
``max_exp_avg_sq``, SGD's ``momentum_buffer``, RMSprop's ``square_avg``, ...)
gets the entries of the reset rows/columns set to 0, as for a weight never
updated. Scalar state (Adam's ``step``) is shared by the whole tensor and is
kept: the reset entries then get Adam's bias correction of the current step,
so their first updates are smaller than a fresh Adam's would be (the authors'
CBP code keeps a per-entry step instead; PyTorch's optimizers have one per tensor).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.units import HiddenUnits


@torch.no_grad()
def reset_optimizer_state(
    optimizer: torch.optim.Optimizer | None,
    param: torch.Tensor | None,
    index: torch.Tensor,
    dim: int,
) -> None:
    """Zero ``optimizer``'s state entries of ``param`` at ``index`` along ``dim``."""
    if optimizer is None or param is None:
        return
    state = optimizer.state.get(param)
    if not state:
        return
    for value in state.values():
        if torch.is_tensor(value) and value.shape == param.shape and value.dim() > dim:
            value.index_fill_(dim, index.to(value.device), 0)


def reset_unit_optimizer_state(
    optimizer: torch.optim.Optimizer | None, hu: HiddenUnits, units: torch.Tensor
) -> None:
    """Reset the state of the units' incoming rows, bias, norm entries and outgoing columns."""
    if optimizer is None:
        return
    units = torch.as_tensor(units, dtype=torch.long).flatten()
    reset_optimizer_state(optimizer, hu.producer.weight, units, 0)
    reset_optimizer_state(optimizer, hu.producer.bias, units, 0)
    norm = hu.norm
    if norm is not None:
        for p in (getattr(norm, "weight", None), getattr(norm, "bias", None)):
            if isinstance(p, nn.Parameter) and p.dim() == 1 and p.numel() == hu.n_units:
                reset_optimizer_state(optimizer, p, units, 0)
    cols = hu.outgoing_index(units.cpu()).flatten()
    reset_optimizer_state(optimizer, hu.consumer.weight, cols, 1)

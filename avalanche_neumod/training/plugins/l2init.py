"""L2Init (Kumar et al., CoLLAs 2024) as an Avalanche plugin (DESIGN 5.3).

Adds ``lambda * ||theta - theta_0||^2`` to the training loss, over all trainable
weights and biases, with ``theta_0`` the parameters at the start of training (the
first training experience this plugin sees), not of each experience.
"""

from __future__ import annotations

from typing import Optional

import torch
from avalanche.core import SupervisedPlugin
from torch import nn


class L2InitPlugin(SupervisedPlugin):
    """Regularise towards the initial parameters: ``loss += lam * ||theta - theta_0||^2``.

    Args:
        lam: regularisation strength lambda (>= 0), default 1e-2.

    ``theta_0`` is recorded once, at the first ``before_training_exp`` (or by
    :meth:`set_anchor`), for the parameters that require gradients then;
    parameters added to the model later are not regularised.
    """

    def __init__(self, lam: float = 1e-2):
        super().__init__()
        if lam < 0:
            raise ValueError(f"lam (L2Init strength) must be >= 0, got {lam}")
        self.lam = float(lam)
        self.names: list[str] = []
        self.theta0: list[torch.Tensor] = []
        self._model: Optional[nn.Module] = None

    @torch.no_grad()
    def set_anchor(self, model: nn.Module) -> None:
        """Record ``theta_0`` = the current trainable parameters of ``model``."""
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.theta0 = [p.detach().clone() for _, p in named]
        self._model = model

    def _params(self, model: nn.Module) -> list[torch.Tensor]:
        params = dict(model.named_parameters())
        out = []
        for name, p0 in zip(self.names, self.theta0):
            p = params.get(name)
            if p is None or p.shape != p0.shape:
                raise ValueError(
                    f"L2Init: parameter {name!r} changed since theta_0 was recorded "
                    f"({tuple(p0.shape)} -> {None if p is None else tuple(p.shape)})"
                )
            out.append(p)
        return out

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``lam * sum_p ||p - p_0||^2`` (differentiable)."""
        params = self._params(model)
        if not params:
            return torch.zeros(())
        if params[0].device != self.theta0[0].device:
            self.theta0 = [t.to(params[0].device) for t in self.theta0]
        diffs = torch._foreach_sub(params, self.theta0)
        sq = torch.stack(torch._foreach_norm(diffs)).pow(2).sum()
        return self.lam * sq

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._model is None:
            self.set_anchor(strategy.model)
        elif self._model is not strategy.model:
            raise ValueError(
                "L2InitPlugin: the strategy's model changed after theta_0 was recorded"
            )

    def before_backward(self, strategy, **kwargs) -> None:
        if self.lam > 0:
            strategy.loss = strategy.loss + self.penalty(strategy.model)

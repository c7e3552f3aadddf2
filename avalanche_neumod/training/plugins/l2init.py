"""L2Init (Kumar et al., CoLLAs 2024) as an Avalanche plugin (docs/baselines.md).

Adds ``lambda * ||theta - theta_0||^2`` to the training loss, over all trainable
weights and biases, with ``theta_0`` the parameters at the start of training (the
first training experience this plugin sees), not of each experience. The value
is added to ``strategy.loss`` before the backward pass and its exact gradient
``2 lambda (theta - theta_0)`` to the parameters' ``.grad`` right after it
(``after_backward``), which is what backpropagating the penalty would add but
cheaper. (With a loss scaler, e.g. mixed precision, scale accordingly.)
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from ..._checks import checked, real


class L2InitPlugin(SupervisedPlugin):
    """Regularise towards the initial parameters: ``loss += lam * ||theta - theta_0||^2``.

    Args:
        lam: regularisation strength lambda (>= 0), default 1e-2.

    ``theta_0`` is recorded once, at the first ``before_training_exp`` (or by
    :meth:`set_anchor`), for the parameters that require gradients then;
    parameters added to the model later are not regularised.
    """

    @checked(lam=real(0.0))
    def __init__(self, lam: float = 1e-2):
        super().__init__()
        self.lam = lam
        self.names: list[str] = []
        self.theta0: list[torch.Tensor] = []
        self._model: Optional[nn.Module] = None
        self._diffs: Optional[list[torch.Tensor]] = None
        self._exp_params: Optional[list[torch.Tensor]] = None
        self._params_cache: Optional[list[torch.Tensor]] = None

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

    @torch.no_grad()
    def distance_from_anchor(self, model: nn.Module) -> float:
        """``||theta - theta_0||_2`` (float64 sum of each parameter's float32 sum of squares,
        the arithmetic of the runner's ``distance_from_init``)."""
        total = 0.0
        for p, p0 in zip(self._params(model), self.theta0):
            total += float((p.detach() - p0.to(p.device)).pow(2).sum())
        return math.sqrt(total)

    # -- what the mechanism did (training.method.ReportsMechanism) ------------------------------
    def mechanism_activity(self, strategy) -> dict[str, Union[float, int]]:
        """``l2init_penalty`` (``lam ||theta - theta_0||^2`` now) and
        ``l2init_penalty_share`` (its share of the last minibatch's loss, NaN when unknown)."""
        if self._model is None:
            return {}
        d = self.distance_from_anchor(strategy.model)
        pen = float(self.lam) * d * d
        loss = getattr(strategy, "loss", None)
        ok = isinstance(loss, torch.Tensor) and loss.numel() == 1
        lv = float(loss.detach()) if ok else math.nan
        share = pen / lv if lv and math.isfinite(lv) else math.nan
        return {"l2init_penalty": pen, "l2init_penalty_share": share}

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._model is None:
            self.set_anchor(strategy.model)
        elif self._model is not strategy.model:
            raise ValueError(
                "L2InitPlugin: the strategy's model changed after theta_0 was recorded"
            )
        # the parameters, checked against theta_0 once per experience (not every step)
        self._exp_params = self._params(strategy.model)

    def before_backward(self, strategy, **kwargs) -> None:
        # The penalty's value joins the loss (for logging and metrics); its gradient,
        # 2 lam (theta - theta_0), is added to .grad in after_backward, which is what
        # autograd would add, without differentiating the penalty every step.
        self._diffs = None
        if self.lam > 0:
            params = self._exp_params
            if params is None or self._model is not strategy.model:
                params = self._params(strategy.model)
            if not params:
                return
            if params[0].device != self.theta0[0].device:
                self.theta0 = [t.to(params[0].device) for t in self.theta0]
            with torch.no_grad():
                diffs = torch._foreach_sub(params, self.theta0)
                value = torch.stack(torch._foreach_norm(diffs)).square().sum() * self.lam
            self._params_cache, self._diffs = params, diffs
            strategy.loss = strategy.loss + value

    def after_backward(self, strategy, **kwargs) -> None:
        if self._diffs is None:
            return
        params, diffs = self._params_cache, self._diffs
        with torch.no_grad():
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            torch._foreach_add_([p.grad for p in params], diffs, alpha=2.0 * self.lam)
        self._diffs = self._params_cache = None

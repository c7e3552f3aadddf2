"""ReDo, recycling dormant neurons (Sokar et al., ICML 2023) as an Avalanche plugin
(docs/baselines.md).

Score of unit i of layer l over a batch (:func:`redo_scores`)::

    s_i = E|h_i| / ((1/H_l) * sum_k E|h_k|)

A unit is tau-dormant if ``s_i <= tau``. Every ``F`` training iterations
(``every="iterations"``), and/or at the end of each training experience
(``every="experience"``; ``"both"`` does both), every dormant unit gets fresh
incoming weights from the layer's initial distribution, bias 0, outgoing
weights 0 and its optimizer state reset. Only hidden units are recycled (the
output layer never is). The scores are taken on the activity of the most recent
training forward (recorded on the consumers by ``UnitRecorder``), so ReDo costs
no extra forward pass.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from ..._checks import callable_or_none, checked, integer, one_of, real
from ...models.units import redo_scores, reinit_units
from ..optim_state import reset_unit_optimizer_state
from .unit_activity import UnitActivityPlugin

EVERY = ("iterations", "experience", "both")


class ReDoPlugin(UnitActivityPlugin):
    """Recycle tau-dormant hidden units periodically.

    Args:
        tau: dormancy threshold on the score (>= 0).
        F: recycling period in training iterations (>= 1), for ``every`` in
            ``("iterations", "both")``.
        every: ``"iterations"``, ``"experience"`` (end of each training
            experience) or ``"both"``.
        init: ``None`` for PyTorch's default distribution of the producing layer,
            or ``init(rows)`` filling new incoming rows in place.

    The recorder and the hooks that keep it on training forwards only come from
    :class:`~.unit_activity.UnitActivityPlugin`. After each recycling,
    ``last_scores`` holds each layer's scores,
    ``last_dormant_fraction`` the fraction of dormant units, and ``recycled`` the
    running count of recycled units per layer.
    """

    unit_user = "ReDo"

    @checked(tau=real(0.0), F=integer(1), every=one_of(*EVERY), init=callable_or_none)
    def __init__(
        self,
        tau: float = 0.1,
        F: int = 1000,
        every: str = "iterations",
        init: Optional[Callable[[torch.Tensor], None]] = None,
    ):
        super().__init__()
        self.tau = tau
        self.F = F
        self.every = every
        self.init = init
        self.iterations = 0
        self.recycled: dict[str, int] = {}
        self.last_scores: dict[str, torch.Tensor] = {}
        self.last_dormant_fraction: dict[str, float] = {}

    def attach(self, model: nn.Module) -> None:
        super().attach(model)
        self.recycled = {hu.name: 0 for hu in self.units}

    # -- Avalanche hooks (and the recorder's, from UnitActivityPlugin) ---------------------------
    def after_update(self, strategy, **kwargs) -> None:
        self.iterations += 1
        if self.every != "experience" and self.iterations % self.F == 0:
            self.recycle(self.recorder.activity, strategy.optimizer)

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.every != "iterations" and self.recorder is not None:
            self.recycle(self.recorder.activity, strategy.optimizer)

    # -- what the mechanism did (training.method.ReportsMechanism) ------------------------------
    def mechanism_activity(self, strategy) -> dict[str, int]:
        """``redo_recycled``: units recycled so far, over all layers."""
        return {"redo_recycled": int(sum(self.recycled.values()))}

    # -- the mechanism --------------------------------------------------------------------------
    @torch.no_grad()
    def recycle(
        self, activity: dict[str, torch.Tensor], optimizer: Optional[torch.optim.Optimizer] = None
    ) -> dict[str, torch.Tensor]:
        """Recycle the dormant units of every hidden layer; returns their indices per layer."""
        out: dict[str, torch.Tensor] = {}
        for hu in self.units:
            h = activity.get(hu.name)
            if h is None:
                continue
            scores = redo_scores(h)
            dormant = scores <= self.tau
            self.last_scores[hu.name] = scores
            self.last_dormant_fraction[hu.name] = float(dormant.float().mean())
            idx = dormant.nonzero().flatten()
            if idx.numel():
                reinit_units(hu, idx, self.init, zero_outgoing=True)
                reset_unit_optimizer_state(optimizer, hu, idx)
                self.recycled[hu.name] += int(idx.numel())
            out[hu.name] = idx
        return out

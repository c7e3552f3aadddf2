"""What each method's mechanism did, recorded in every cell.

:class:`ActivityRecorder` is a plugin added to every cell. At the end of each training
experience it records, in ``result["measures"]["activity"]["per_experience"]``, the
readings every method gets:

- ``distance_from_init``: ``||theta - theta_0||_2`` over the trainable parameters present
  at the start (the pull of L2Init and Shrink & Perturb shows as a smaller distance than
  Naive's);
- ``dormant`` (fraction of tau-dormant hidden units, tau = 0.1) and ``effective_rank`` of
  the penultimate features, by :func:`avalanche_neumod.evaluation.plasticity.diagnose` on a
  fixed subset of the experience's training data (no gradient, eval mode, no RNG drawn
  from the global generators, so the cell's training is unchanged);

and merges in what the method reports of its own mechanism: the ``mechanism_activity``
hook of the strategy and of each of its plugins
(:class:`~avalanche_neumod.training.method.ReportsMechanism`; e.g. ``cbp_replaced``,
``redo_recycled``, ``l2init_penalty``, ``shrink_perturb_steps``). The recorder knows no
method.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from avalanche.core import SupervisedPlugin

from ..benchmarks.tensor_data import experience_tensors
from ..evaluation.plasticity import diagnose
from ..evaluation.subset_eval import fixed_subset
from ..training.method import mechanism_hooks


class ActivityRecorder(SupervisedPlugin):
    """Per-experience record of the method's mechanism activity (see the module doc).

    Args:
        samples: training samples of the experience used for dormancy and rank (>= 1).
        tau: dormancy threshold (>= 0).
        seed: seed of the private generator drawing the subset.
    """

    def __init__(self, samples: int = 500, tau: float = 0.1, seed: int = 0):
        super().__init__()
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        self.samples = int(samples)
        self.tau = float(tau)
        self.seed = int(seed)
        self.per_experience: list[dict] = []
        self._theta0: Optional[dict[str, torch.Tensor]] = None

    def before_training_exp(self, strategy, **kwargs) -> None:
        if self._theta0 is None:
            self._theta0 = {
                n: p.detach().clone()
                for n, p in strategy.model.named_parameters()
                if p.requires_grad
            }

    @torch.no_grad()
    def distance_from_init(self, model) -> float:
        total = 0.0
        for n, p in model.named_parameters():
            p0 = (self._theta0 or {}).get(n)
            if p0 is not None and p0.shape == p.shape:
                total += float((p.detach() - p0.to(p.device)).pow(2).sum())
        return math.sqrt(total)

    def after_training_exp(self, strategy, **kwargs) -> None:
        rec: dict = {"experience": len(self.per_experience)}
        for hook in mechanism_hooks(strategy, "mechanism_activity"):
            rec.update(hook(strategy))
        rec["distance_from_init"] = self.distance_from_init(strategy.model)
        rec.update(self._diagnose(strategy))
        self.per_experience.append(rec)

    def _diagnose(self, strategy) -> dict:
        try:
            data = experience_tensors(strategy.experience)
            b = fixed_subset(data, self.samples, self.seed * 1_000_003 + len(self.per_experience))
            b = b.to(strategy.device)
            d = diagnose(strategy.model, b.x, b.t, self.tau)
        except Exception as e:  # noqa: BLE001 - a model the unit walker does not read
            return {"diagnose_error": f"{type(e).__name__}: {e}"}
        return {k: d[k] for k in ("dormant", "effective_rank") if k in d}

    def to_dict(self) -> dict:
        return {"per_experience": list(self.per_experience), "tau": self.tau}

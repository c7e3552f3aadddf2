"""Continual Backprop (Dohare et al., Nature 2024) as an Avalanche plugin (docs/baselines.md).

After every optimizer step, from the activity ``h`` of that iteration's training
forward (``UnitRecorder``), first *test* every hidden layer (``models.units``),
then *generate* (replace) the units chosen in all of them, as the authors'
generate-and-test (GnT) code does: a layer's utilities are computed from the
weights before any layer is changed::

    # test, for every hidden layer
    age_i += 1
    f_i  = d*f_i + (1-d)*mean_batch(h_i);          fhat_i = f_i / (1 - d**age_i)
    y_i  = mean_k|W_out[k,i]| * mean_batch|h_i - fhat_i| / mean_j|W_in[i,j]|   (adaptable)
    y_i  = mean_k|W_out[k,i]| * mean_batch|h_i|                                (contribution)
    u_i  = d*u_i + (1-d)*y_i;                       uhat_i = u_i / (1 - d**age_i)
    eligible = {i : age_i > m};  n = rho * |eligible|   (accumulated or sampled)
    select the n eligible units with the smallest uhat
    # generate, for every hidden layer, its selected units i
    W_in[i,:] ~ the layer's initial distribution;  b_i = 0
    b_next += W_out[:,i] * fhat_i;  W_out[:,i] = 0;  age_i = f_i = u_i = 0
    the optimizer state of those weights is reset (not SGD's momentum by default, as in GnT)

Units of conv layers are channels. ``f`` is kept per consumer input column
group: for conv -> conv it is averaged over space (one mean per channel, the
bias correction uses the kernel's sum), for conv -> flatten -> linear one mean
per channel and position (so the correction is exact), and for CReLU one per
copy. All per-step work is vectorised over units (a Python loop over layers only).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable, Optional

import torch
from torch import nn

from ..._checks import callable_or_none, checked, integer, one_of, real
from ...models.units import HiddenUnits, reinit_units
from ..optim_state import reset_unit_optimizer_state
from .unit_activity import UnitActivityPlugin

UTILITIES = ("adaptable", "contribution")
SAMPLINGS = ("gnt", "floor_bernoulli")


class _LayerState:
    """Per-layer CBP state: ages, running mean activity f, utility u, replacement count.

    Ages are kept as birth steps (``age = steps - birth``) plus the bias correction
    ``corr = 1 - d**age`` (updated by ``corr <- lerp(corr, 1, 1 - d)`` each step),
    and the number of eligible units is kept in Python from a count of units per
    birth step, so that the per-step work is a fixed, small number of vectorised
    tensor operations.
    """

    def __init__(self, hu: HiddenUnits, device: torch.device, dtype: torch.dtype):
        n = hu.n_units
        self.steps = 0
        self.birth = torch.zeros(n, device=device, dtype=torch.long)
        self.corr = torch.zeros(n, device=device, dtype=dtype)  # 1 - d ** age
        self.ones = torch.ones(n, device=device, dtype=dtype)
        self.f = torch.zeros(hu.width_factor, n, hu.spatial, device=device, dtype=dtype)
        self.u = torch.zeros(n, device=device, dtype=dtype)
        self.births: Counter = Counter({0: n})  # units per birth step, not yet eligible
        self.eligible = 0  # units with age > m
        self.to_replace = 0.0  # accumulated fractional replacement count

    @property
    def age(self) -> torch.Tensor:
        return (self.steps - self.birth).to(self.u.dtype)

    def fhat(self, d: float | None = None) -> torch.Tensor:
        return self.f / self.corr.clamp_min(1e-12).view(1, -1, 1)

    def uhat(self, d: float | None = None) -> torch.Tensor:
        return self.u / self.corr.clamp_min(1e-12)

    def to(self, device: torch.device) -> None:
        for k in ("birth", "corr", "ones", "f", "u"):
            setattr(self, k, getattr(self, k).to(device))


class CBPPlugin(UnitActivityPlugin):
    """Continual Backprop: replace a small fraction of low-utility mature units after each step.

    Args:
        rho: replacement rate, in [0, 1] (fraction of eligible units per step).
        m: maturity threshold; only units with ``age > m`` can be replaced (>= 0).
        d: decay rate of the running averages, in [0, 1).
        utility: ``"adaptable"`` (the paper's adaptable contribution) or ``"contribution"``.
        accumulate: carry fractional replacement counts across steps (True), or
            draw the count each step with ``sampling`` (False).
        next_bias_correction: add the replaced units' mean contribution to the
            next layer's bias (the paper's rule; True) or not (the authors' code's
            behaviour; False). Skipped for a consumer without bias.
        init: ``None`` for PyTorch's default distribution of the producing layer
            (``U(+-1/sqrt(fan_in))``), or ``init(rows)`` filling new incoming rows in place.
        sampling: the count for ``accumulate=False`` with ``n = rho * |eligible|``:
            ``"gnt"`` (the authors' code): ``Bernoulli(n)`` units when ``n < 1``, else
            ``floor(n)``; ``"floor_bernoulli"``: ``floor(n) + Bernoulli(n - floor(n))``
            (unbiased: ``n`` units on average for every ``n``).
        reset_sgd_momentum: with ``torch.optim.SGD``, zero the momentum buffer of the
            replaced units' weights (True) or keep it (False, the authors' code, which
            resets only Adam's moments). Other optimizers' per-weight state is always reset.
    """

    unit_user = "CBP"

    @checked(
        rho=real(0.0, 1.0),
        m=integer(0),
        d=real(0.0, 1.0, high_open=True),
        utility=one_of(*UTILITIES),
        sampling=one_of(*SAMPLINGS),
        init=callable_or_none,
    )
    def __init__(
        self,
        rho: float = 1e-4,
        m: int = 100,
        d: float = 0.99,
        utility: str = "adaptable",
        accumulate: bool = True,
        next_bias_correction: bool = True,
        init: Optional[Callable[[torch.Tensor], None]] = None,
        *,
        sampling: str = "gnt",
        reset_sgd_momentum: bool = False,
    ):
        super().__init__()
        self.rho = float(rho)
        self.m = int(m)
        self.d = float(d)
        self.sampling = sampling
        self.reset_sgd_momentum = reset_sgd_momentum
        self.utility = utility
        self.accumulate = accumulate
        self.next_bias_correction = next_bias_correction
        self.init = init
        self.state: dict[str, _LayerState] = {}
        self.replaced: dict[str, int] = {}  # total units replaced per layer

    # -- attaching to a model (the recorder and its hooks: UnitActivityPlugin) -------------------
    def attach(self, model: nn.Module) -> None:
        """Read ``model``'s hidden units, start their state at 0 and hook the recorder."""
        super().attach(model)
        p = next(model.parameters())
        self.state = {hu.name: _LayerState(hu, p.device, p.dtype) for hu in self.units}
        self.replaced = {hu.name: 0 for hu in self.units}

    def before_training_exp(self, strategy, **kwargs) -> None:
        super().before_training_exp(strategy, **kwargs)
        dev = next(strategy.model.parameters()).device
        for st in self.state.values():
            if st.u.device != dev:
                st.to(dev)

    def after_update(self, strategy, **kwargs) -> None:
        self.update_units(self.recorder.activity, strategy.optimizer)

    # -- what the mechanism did (training.method.ReportsMechanism) ------------------------------
    def mechanism_activity(self, strategy) -> dict[str, int]:
        """``cbp_replaced``: units replaced so far, over all layers."""
        return {"cbp_replaced": int(sum(self.replaced.values()))}

    # -- the mechanism --------------------------------------------------------------------------
    @torch.no_grad()
    def update_units(
        self, activity: dict[str, torch.Tensor], optimizer: Optional[torch.optim.Optimizer] = None
    ) -> dict[str, torch.Tensor]:
        """One CBP step from each layer's activity ``(batch, width_factor, n, positions)``.

        Every layer is tested (statistics, utilities, selection) before any is changed,
        then the selected units of every layer are replaced (generate-and-test order).
        Returns the indices of the units replaced in each layer.
        """
        d = self.d
        selected: list[tuple[HiddenUnits, _LayerState, torch.Tensor]] = []
        for hu in self.units:
            h = activity.get(hu.name)
            if h is None:
                continue
            st = self.state[hu.name]
            n = hu.n_units
            # age_i += 1 (as d**age and the birth-step count of newly eligible units)
            st.steps += 1
            st.corr.lerp_(st.ones, 1.0 - d)  # 1 - d**(age+1) = lerp(1 - d**age, 1, 1 - d)
            st.eligible += st.births.pop(st.steps - self.m - 1, 0)
            # f_i = d f_i + (1-d) mean_batch(h_i)
            fb = h.mean(dim=0)  # (wf, n, positions)
            if hu.spatial == 1 and fb.shape[-1] != 1:
                fb = fb.mean(dim=-1, keepdim=True)  # conv -> conv: average over space
            st.f.lerp_(fb, 1.0 - d)
            # sum_k |W_out[k, i]| over outputs, CReLU copies, positions and kernel
            w_out = hu.consumer.weight
            w_out = w_out.view(w_out.shape[0], hu.width_factor, n, -1)
            out_sum = w_out.abs().sum(dim=(0, 1, 3))  # abs().sum(): faster than an L1 norm op
            n_out = w_out.numel() // n
            if self.utility == "adaptable":
                # y_i = mean_k|W_out[k,i]| * mean_batch|h_i - fhat_i| / mean_j|W_in[i,j]|
                # h - fhat = h - f / (1 - d**age)
                dev = torch.addcdiv(h, st.f, st.corr.view(1, n, 1), value=-1.0)
                dev_sum = dev.abs_().sum(dim=(0, 1, 3))
                n_dev = h.numel() // n
                w_in = hu.producer.weight.view(n, -1)
                in_sum = w_in.abs().sum(dim=1).clamp_min_(1e-30)
                scale = w_in.shape[1] / (n_out * n_dev)
                # u_i = d u_i + (1-d) y_i
                st.u.mul_(d).addcdiv_(out_sum.mul_(dev_sum), in_sum, value=(1.0 - d) * scale)
            else:
                # y_i = mean_k|W_out[k,i]| * mean_batch|h_i|
                dev_sum = h.abs().sum(dim=(0, 1, 3))
                scale = 1.0 / (n_out * (h.numel() // n))
                st.u.mul_(d).add_(out_sum.mul_(dev_sum), alpha=(1.0 - d) * scale)
            k = self._count(st, st.eligible)
            if k > 0:
                scores = st.uhat().masked_fill((st.steps - st.birth) <= self.m, math.inf)
                selected.append((hu, st, torch.topk(scores, k, largest=False).indices))
        # generate: only now change weights (a layer's replacement cuts the next layer's
        # incoming columns, which that layer's adaptable utility above has read intact)
        out: dict[str, torch.Tensor] = {}
        for hu, st, idx in selected:
            self._replace(hu, st, idx, optimizer)
            out[hu.name] = idx
        return out

    def _count(self, st: _LayerState, n_eligible: int) -> int:
        if n_eligible == 0 or self.rho == 0.0:
            return 0
        x = self.rho * n_eligible
        if self.accumulate:
            st.to_replace += x
            k = int(st.to_replace)
            st.to_replace -= k
        elif self.sampling == "gnt":  # Bernoulli(x) below one unit, else floor(x)
            k = int(float(torch.rand(())) < x) if x < 1.0 else int(x)
        else:  # floor(x) + Bernoulli(frac(x))
            k = int(x)
            frac = x - k
            if frac > 0 and float(torch.rand(())) < frac:
                k += 1
        return min(k, n_eligible)

    def _replace(
        self,
        hu: HiddenUnits,
        st: _LayerState,
        idx: torch.Tensor,
        optimizer: Optional[torch.optim.Optimizer],
    ) -> None:
        consumer = hu.consumer
        if self.next_bias_correction and consumer.bias is not None:
            # b_next += W_out[:, i] * fhat_i, per consumer column the unit feeds
            fhat = (st.f[:, idx, :] / st.corr[idx].view(1, -1, 1)).permute(1, 0, 2)
            cols = hu.outgoing_index(idx.cpu()).flatten().to(idx.device)
            w = consumer.weight[:, cols]
            if w.dim() > 2:  # conv consumer: a constant input contributes the kernel's sum
                w = w.flatten(2).sum(dim=2)
            consumer.bias.add_(w @ fhat.reshape(-1))
        reinit_units(hu, idx, self.init, zero_outgoing=True)
        if self.reset_sgd_momentum or not isinstance(optimizer, torch.optim.SGD):
            reset_unit_optimizer_state(optimizer, hu, idx)
        # age_i = f_i = u_i = 0
        st.birth[idx] = st.steps
        st.births[st.steps] += int(idx.numel())
        st.eligible -= int(idx.numel())
        st.corr[idx] = 0.0
        st.f[:, idx, :] = 0
        st.u[idx] = 0
        self.replaced[hu.name] += int(idx.numel())

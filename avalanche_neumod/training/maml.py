"""MAML (Finn et al. 2017) as an Avalanche meta-learning strategy (docs/baselines.md, MAML).

Each training iteration splits the minibatch into a support part (the first
``support_fraction``) and a query part (the rest), adapts a functional copy of
the model with ``inner_steps`` SGD steps of rate ``inner_lr`` on the support
loss::

    theta_{s+1} = theta_s - inner_lr * grad L_support(theta_s),   theta_0 = theta

and updates the meta-weights ``theta`` with the strategy's optimizer on the
meta-gradient ``d L_query(theta_S) / d theta``: second order by default,
first order (``first_order=True``: the inner gradients are treated as
constants, FOMAML) on request. Evaluation uses the meta-weights.

Backends: ``"torch.func"`` (``torch.func.functional_call`` + ``torch.autograd``,
default) and ``"higher"`` (the optional ``higher`` package), which give the same
meta-gradient.

Built on Avalanche's ``SupervisedMetaLearningTemplate``, whose loop per iteration
is: ``_before_inner_updates``, ``_inner_updates``, ``_after_inner_updates``,
``_before_outer_update``, ``_outer_update``, ``_after_outer_update``, then a
forward of the whole minibatch for the metrics (done here without building a
graph). Inside the outer update the ordinary ``before_backward``,
``after_backward``, ``before_update`` and ``after_update`` plugin events are
fired around the meta backward and step, so loss-adding plugins (e.g. L2Init)
and per-step plugins work with MAML too. The fast data path
(``FastDataPlugin``) is on by default, as in ``FastTemplate``.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from avalanche.models import MultiTaskModule
from avalanche.training.templates import SupervisedMetaLearningTemplate
from torch import nn
from torch.func import functional_call

from .._checks import checked, integer, one_of, real
from .method import Method
from .template import TEMPLATE_RULES, template_defaults

BACKENDS = ("torch.func", "higher")

__all__ = ["MAML", "MAML_METHOD", "BACKENDS"]


def _higher():
    try:
        import higher
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='higher' needs the optional 'higher' package (pip install higher); "
            "backend='torch.func' needs nothing extra"
        ) from exc
    return higher


class MAML(SupervisedMetaLearningTemplate):
    """Model-agnostic meta-learning on each minibatch (support/query split).

    Args:
        model, optimizer, criterion: as in ``SupervisedTemplate``; ``optimizer``
            makes the outer (meta) update.
        inner_lr: inner-loop SGD rate (>= 0), default 0.01.
        inner_steps: inner SGD steps (>= 1), default 1.
        first_order: use the first-order approximation (FOMAML).
        backend: ``"torch.func"`` or ``"higher"``.
        support_fraction: share of each minibatch used as support, in (0, 1);
            a minibatch of one sample is used as both support and query.
        fast_data: serve minibatches from in-memory tensors (``FastDataPlugin``).
    """

    @checked(
        **TEMPLATE_RULES,
        inner_lr=real(0.0),
        inner_steps=integer(1),
        backend=one_of(*BACKENDS),
        support_fraction=real(0.0, 1.0, low_open=True, high_open=True),
    )
    def __init__(
        self,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion=None,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        backend: str = "torch.func",
        support_fraction: float = 0.5,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: Optional[int] = None,
        device="cpu",
        plugins: Optional[Sequence] = None,
        fast_data: bool = True,
        **base_kwargs,
    ):
        if backend == "higher":
            _higher()
        self.inner_lr = float(inner_lr)
        self.inner_steps = int(inner_steps)
        self.first_order = bool(first_order)
        self.backend = backend
        self.support_fraction = float(support_fraction)
        self._query_output: Optional[torch.Tensor] = None
        super().__init__(
            model=model,
            optimizer=optimizer,
            train_epochs=train_epochs,
            device=device,
            **template_defaults(criterion, train_mb_size, eval_mb_size, plugins, fast_data),
            **base_kwargs,
        )

    # -- the loop ---------------------------------------------------------------------------------
    def training_epoch(self, **kwargs):
        """``SupervisedMetaLearningTemplate``'s loop, with the metrics' forward under no_grad."""
        for self.mbatch in self.dataloader:  # noqa: B020 (Avalanche's loop idiom)
            if self._stop_training:
                break
            self._unpack_minibatch()
            self._before_training_iteration(**kwargs)
            self.optimizer.zero_grad()
            self.loss = self._make_empty_loss()
            self._before_inner_updates(**kwargs)
            self._inner_updates(**kwargs)
            self._after_inner_updates(**kwargs)
            self._before_outer_update(**kwargs)
            self._outer_update(**kwargs)
            self._after_outer_update(**kwargs)
            with torch.no_grad():
                self.mb_output = self.forward()
            self._after_training_iteration(**kwargs)

    def split(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """``((x_s, y_s, t_s), (x_q, y_q, t_q))`` of the current minibatch."""
        x, y, t = self.mb_x, self.mb_y, self.mb_task_id
        n = len(y)
        if n < 2:
            return (x, y, t), (x, y, t)
        k = min(n - 1, max(1, round(n * self.support_fraction)))
        return (x[:k], y[:k], t[:k]), (x[k:], y[k:], t[k:])

    def _inner_updates(self, **kwargs):
        support, query = self.split()
        self._query = query
        self._query_output = self.adapted_forward(support, query[0], query[2])

    def _outer_update(self, **kwargs):
        self.loss = self.loss + self._criterion(self._query_output, self._query[1])
        self._before_backward(**kwargs)
        self.backward()
        self._after_backward(**kwargs)
        self._before_update(**kwargs)
        self.optimizer_step()
        self._after_update(**kwargs)
        self._query_output = None

    # -- adaptation -------------------------------------------------------------------------------
    def adapted_forward(
        self, support: tuple[torch.Tensor, ...], x: torch.Tensor, t: torch.Tensor
    ) -> torch.Tensor:
        """Adapt on ``support`` (``inner_steps`` SGD steps) and return the adapted model's output
        on ``x``, differentiable w.r.t. the meta-weights."""
        if self.backend == "higher":
            return self._adapted_forward_higher(support, x, t)
        return self._adapted_forward_func(support, x, t)

    def _call(self, params: dict, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, MultiTaskModule):
            return functional_call(self.model, params, (x, t))
        return functional_call(self.model, params, (x,))

    def _adapted_forward_func(self, support, x, t) -> torch.Tensor:
        xs, ys, ts = support
        named = dict(self.model.named_parameters())
        fast = {n: p for n, p in named.items() if p.requires_grad}
        fixed = {n: p for n, p in named.items() if not p.requires_grad}
        fixed.update(dict(self.model.named_buffers()))
        names = list(fast)
        for _ in range(self.inner_steps):
            loss = self._criterion(self._call({**fast, **fixed}, xs, ts), ys)
            grads = torch.autograd.grad(
                loss, [fast[n] for n in names], create_graph=not self.first_order, allow_unused=True
            )
            # theta_{s+1} = theta_s - inner_lr * grad L_support(theta_s)
            fast = {
                n: fast[n] if g is None else fast[n] - self.inner_lr * g
                for n, g in zip(names, grads)
            }
        return self._call({**fast, **fixed}, x, t)

    def _adapted_forward_higher(self, support, x, t) -> torch.Tensor:
        higher = _higher()
        xs, ys, ts = support
        fmodel = higher.monkeypatch(self.model, copy_initial_weights=False, track_higher_grads=True)
        inner = torch.optim.SGD(self.model.parameters(), lr=self.inner_lr)
        diffopt = higher.get_diff_optim(inner, self.model.parameters(), fmodel=fmodel)
        callback = (lambda gs: [g.detach() for g in gs]) if self.first_order else None

        def call(xx, tt):
            return fmodel(xx, tt) if isinstance(self.model, MultiTaskModule) else fmodel(xx)

        for _ in range(self.inner_steps):
            loss = self._criterion(call(xs, ts), ys)
            diffopt.step(loss, grad_callback=callback)
        return call(x, t)


MAML_METHOD = Method(
    "MAML", MAML, tunable=("inner_lr", "inner_steps", "support_fraction"), doc="MAML"
)

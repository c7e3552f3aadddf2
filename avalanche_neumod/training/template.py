"""The base of this library's strategies: Avalanche's ``SupervisedTemplate`` on the fast path.

Two things make a plain run cost little more than a hand-written PyTorch loop
(DESIGN 10, P1), without changing what any plugin or metric sees:

1. :class:`~avalanche_neumod.training.fast_data.FastDataPlugin` serves
   minibatches by slicing in-memory tensors (on by default, ``fast_data=False``
   turns it off).
2. Per-iteration events skip the calls that cannot do anything: a plugin hook
   inherited unchanged from Avalanche's no-op base classes, and the
   ``EvaluationPlugin`` when none of its metrics or loggers handles the event
   (Avalanche's dispatcher copies the experience on every call even then).
   Everything else is called exactly as ``trigger_plugins`` would.
"""

from __future__ import annotations

from typing import Optional, Sequence

from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin
from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.logging import BaseLogger
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.nn import CrossEntropyLoss

from .fast_data import FastDataPlugin

_ITERATION_EVENTS = (
    "before_training_iteration",
    "before_forward",
    "after_forward",
    "before_backward",
    "after_backward",
    "before_update",
    "after_update",
    "after_training_iteration",
    "before_eval_iteration",
    "before_eval_forward",
    "after_eval_forward",
    "after_eval_iteration",
)


def _noops(event: str) -> set:
    """The functions that implement ``event`` as a no-op in Avalanche's bases."""
    out = set()
    for cls in (BasePlugin, BaseSGDPlugin, SupervisedPlugin, PluginMetric, BaseLogger):
        f = cls.__dict__.get(event)
        if f is not None:
            out.add(f)
    return out


_NOOPS = {e: _noops(e) for e in _ITERATION_EVENTS}


def _acts_on(obj, event: str) -> bool:
    """Whether ``obj``'s class implements ``event`` with something other than a no-op."""
    for cls in type(obj).__mro__:
        if event in cls.__dict__:
            return cls.__dict__[event] not in _NOOPS[event]
    return False


def _evaluator_acts_on(ev: EvaluationPlugin, event: str) -> bool:
    return ev._active and (
        any(_acts_on(m, event) for m in ev.metrics) or any(_acts_on(lg, event) for lg in ev.loggers)
    )


def with_fast_data(plugins: Optional[Sequence], fast_data: bool) -> list:
    """``plugins`` with a :class:`FastDataPlugin` first, unless present or ``fast_data`` is off."""
    plugins = list(plugins or [])
    if fast_data and not any(isinstance(p, FastDataPlugin) for p in plugins):
        plugins.insert(0, FastDataPlugin())
    return plugins


class FastTemplate(SupervisedTemplate):
    """``SupervisedTemplate`` with the fast data path and lean per-iteration dispatch.

    Takes Avalanche's ``SupervisedTemplate`` arguments (keyword-only, extra ones
    forwarded as ``**base_kwargs``) plus ``fast_data`` (default True).
    """

    def __init__(
        self,
        *,
        model,
        optimizer,
        criterion=None,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: Optional[int] = None,
        device="cpu",
        plugins: Optional[Sequence] = None,
        fast_data: bool = True,
        **base_kwargs,
    ):
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=CrossEntropyLoss() if criterion is None else criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size if eval_mb_size is not None else max(train_mb_size, 256),
            device=device,
            plugins=with_fast_data(plugins, fast_data),
            **base_kwargs,
        )
        self._dispatch_cache: dict = {}

    def _handlers(self, event: str) -> list:
        handlers = self._dispatch_cache.get(event)
        if handlers is None:
            handlers = []
            for p in self.plugins:
                if isinstance(p, EvaluationPlugin):
                    if _evaluator_acts_on(p, event):
                        handlers.append(getattr(p, event))
                elif _acts_on(p, event):
                    handlers.append(getattr(p, event))
            self._dispatch_cache[event] = handlers
        return handlers

    def _dispatch(self, event: str, **kwargs) -> None:
        for h in self._handlers(event):
            h(self, **kwargs)

    # The per-iteration handlers are read once per experience (after its
    # before-experience hooks, which may add plugins or metrics).
    def _before_training_exp(self, **kwargs):
        super()._before_training_exp(**kwargs)
        self._dispatch_cache.clear()

    def _before_eval_exp(self, **kwargs):
        super()._before_eval_exp(**kwargs)
        self._dispatch_cache.clear()

    def _before_training_iteration(self, **kwargs):
        self._dispatch("before_training_iteration", **kwargs)

    def _before_forward(self, **kwargs):
        self._dispatch("before_forward", **kwargs)

    def _after_forward(self, **kwargs):
        self._dispatch("after_forward", **kwargs)

    def _before_backward(self, **kwargs):
        self._dispatch("before_backward", **kwargs)

    def _after_backward(self, **kwargs):
        self._dispatch("after_backward", **kwargs)

    def _before_update(self, **kwargs):
        self._dispatch("before_update", **kwargs)

    def _after_update(self, **kwargs):
        self._dispatch("after_update", **kwargs)

    def _after_training_iteration(self, **kwargs):
        self._dispatch("after_training_iteration", **kwargs)

    def _before_eval_iteration(self, **kwargs):
        self._dispatch("before_eval_iteration", **kwargs)

    def _before_eval_forward(self, **kwargs):
        self._dispatch("before_eval_forward", **kwargs)

    def _after_eval_forward(self, **kwargs):
        self._dispatch("after_eval_forward", **kwargs)

    def _after_eval_iteration(self, **kwargs):
        self._dispatch("after_eval_iteration", **kwargs)


class FastNaive(FastTemplate):
    """Naive fine-tuning on the fast path: the "our Naive" that overheads are measured against."""

"""The base of this library's strategies: Avalanche's ``SupervisedTemplate`` on the fast path.

These make a plain run, training and ``eval(test_stream)``, cost little more
than a hand-written PyTorch loop (bars P1 and P5: docs/suites.md#performance-bars),
without changing what any plugin, metric or logger sees:

1. :class:`~avalanche_neumod.training.fast_data.FastDataPlugin` serves
   minibatches by slicing in-memory tensors (on by default, ``fast_data=False``
   turns it off), for training and evaluation. Per experience, our loader is
   built directly (the stock one is not built first), and the dataset
   adaptation (``experience.dataset.train()``/``.eval()``, a copy of the
   dataset) is deferred until something reads ``adapted_dataset``.
2. Events skip the calls that cannot do anything: a plugin hook inherited
   unchanged from Avalanche's no-op base classes, and, inside the
   ``EvaluationPlugin``, every metric that does nothing on the event (a
   ``GenericPluginMetric`` acts only in its mode and at its reset/emit points,
   e.g. an evaluation accuracy does nothing during training). The
   ``EvaluationPlugin`` itself is skipped when none of its metrics or loggers
   acts (Avalanche's dispatcher copies the experience on every call even then);
   otherwise it runs its ``_update_metrics_and_loggers`` steps for the acting
   metrics only. Everything else is called exactly as ``trigger_plugins``
   would, in plugin order. Per-iteration handlers are read once per experience.
3. The model is moved to the device only when something is elsewhere. Our
   strategies stay on the same random stream as an Avalanche strategy with a
   ``FastDataPlugin`` and as a stock evaluation: the same seed gives identical
   runs and identical metric values.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence as _SequenceABC
from typing import Callable, Optional, Sequence

import torch
from avalanche.benchmarks import OnlineCLExperience
from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin
from avalanche.evaluation.metric_definitions import GenericPluginMetric, PluginMetric
from avalanche.logging import BaseLogger
from avalanche.models.utils import avalanche_model_adaptation
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.nn import CrossEntropyLoss

from .._checks import check_device, checked, instance_of, integer
from .fast_data import FastDataPlugin, TensorBatchLoader
from .method import Method

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
# Events Avalanche's templates implement as a bare ``trigger_plugins`` call, once per
# experience, epoch or stream.
_EXPERIENCE_EVENTS = (
    "before_training",
    "after_training",
    "after_training_exp",
    "before_training_epoch",
    "after_training_epoch",
    "before_train_dataset_adaptation",
    "after_train_dataset_adaptation",
    "before_eval",
    "after_eval",
    "after_eval_exp",
    "before_eval_dataset_adaptation",
    "after_eval_dataset_adaptation",
)
# Dispatched at the end of an experience's set-up (``_before_training_exp``/``_before_eval_exp``).
_SETUP_EVENTS = ("before_training_exp", "before_eval_exp")


def _noops(event: str) -> set:
    """The functions that implement ``event`` as a no-op in Avalanche's bases."""
    out = set()
    for cls in (BasePlugin, BaseSGDPlugin, SupervisedPlugin, PluginMetric, BaseLogger):
        f = cls.__dict__.get(event)
        if f is not None:
            out.add(f)
    return out


_NOOPS = {e: _noops(e) for e in _ITERATION_EVENTS + _EXPERIENCE_EVENTS + _SETUP_EVENTS}


@functools.lru_cache(maxsize=None)
def _class_acts_on(klass: type, event: str) -> bool:
    """Whether ``klass`` implements ``event`` with something other than a no-op."""
    for cls in klass.__mro__:
        if event in cls.__dict__:
            return cls.__dict__[event] not in _NOOPS[event]
    return False


def _acts_on(obj, event: str) -> bool:
    """Whether ``obj``'s class implements ``event`` with something other than a no-op."""
    return _class_acts_on(type(obj), event)


# When a GenericPluginMetric's own hook does something: (mode, attribute, value) = it acts
# in that mode when the attribute (``_reset_at``/``_emit_at``) has that value, or always in
# that mode when the attribute is None. Read off Avalanche's GenericPluginMetric; checked
# exhaustively against it in the tests.
_GENERIC_METRIC_ACTS = {
    "before_training": ("train", "_reset_at", "stream"),
    "before_training_exp": ("train", "_reset_at", "experience"),
    "before_training_epoch": ("train", "_reset_at", "epoch"),
    "before_training_iteration": ("train", "_reset_at", "iteration"),
    "after_training_iteration": ("train", None, None),
    "after_training_epoch": ("train", "_emit_at", "epoch"),
    "after_training_exp": ("train", "_emit_at", "experience"),
    "after_training": ("train", "_emit_at", "stream"),
    "before_eval": ("eval", "_reset_at", "stream"),
    "before_eval_exp": ("eval", "_reset_at", "experience"),
    "before_eval_iteration": ("eval", "_reset_at", "iteration"),
    "after_eval_iteration": ("eval", None, None),
    "after_eval_exp": ("eval", "_emit_at", "experience"),
    "after_eval": ("eval", "_emit_at", "stream"),
}


@functools.lru_cache(maxsize=None)
def _defining_class(klass: type, event: str) -> Optional[type]:
    """The class of ``klass``'s MRO that defines ``event``."""
    return next((cls for cls in klass.__mro__ if event in cls.__dict__), None)


def _metric_acts_on(metric, event: str) -> bool:
    """Whether ``metric`` does anything on ``event``: for a hook inherited unchanged from
    ``GenericPluginMetric``, whether its mode and reset/emit points make it act."""
    if _defining_class(type(metric), event) is GenericPluginMetric:
        mode, attr, value = _GENERIC_METRIC_ACTS[event]
        return metric._mode == mode and (attr is None or getattr(metric, attr) == value)
    return _acts_on(metric, event)


def _stock_evaluator(ev: EvaluationPlugin, event: str) -> bool:
    """Whether ``ev`` handles ``event`` through Avalanche's own forwarding to
    ``_update_metrics_and_loggers`` (no hook of its own, no override)."""
    klass = type(ev)
    return (
        klass.__getattribute__ is EvaluationPlugin.__getattribute__
        and klass._update_metrics_and_loggers is EvaluationPlugin._update_metrics_and_loggers
        and _defining_class(klass, event) is None
    )


class _MetricsCall:
    """``EvaluationPlugin._update_metrics_and_loggers(strategy, event)`` calling only the
    metrics that act on ``event``: the others return nothing there, so every metric and
    logger receives what it receives from Avalanche's dispatch."""

    __slots__ = ("ev", "event", "metrics")

    def __init__(self, ev: EvaluationPlugin, event: str, metrics: list):
        self.ev, self.event, self.metrics = ev, event, metrics

    def __call__(self, strategy, **kwargs) -> None:
        ev, event = self.ev, self.event
        original = strategy.experience
        if original is not None:
            strategy.experience = original.logging()  # as Avalanche: metrics see all fields
        try:
            if not ev._active:
                return
            for metric in self.metrics:
                result = getattr(metric, event)(strategy)
                if isinstance(result, _SequenceABC):
                    for value in result:
                        ev.publish_metric_value(value)
                elif result is not None:
                    ev.publish_metric_value(result)
            for logger in ev.loggers:
                logger.log_metrics(ev._metric_values)
                if hasattr(logger, event):
                    getattr(logger, event)(strategy, ev._metric_values)
            ev._metric_values = []
        finally:
            strategy.experience = original


class _PendingValues:
    """Hands the loggers any value published outside the metrics (``publish_metric_value``)
    at the next event, as Avalanche's dispatch does, when nothing else acts on it."""

    __slots__ = ("call",)

    def __init__(self, ev: EvaluationPlugin, event: str):
        self.call = _MetricsCall(ev, event, [])

    def __call__(self, strategy, **kwargs) -> None:
        if self.call.ev._metric_values:
            self.call(strategy, **kwargs)


def _evaluator_handler(ev: EvaluationPlugin, event: str) -> Optional[Callable]:
    """What the ``EvaluationPlugin`` must run on ``event``, or ``None`` when nothing:
    its own hook (e.g. ``before_eval``'s checks) as is; else the acting metrics and the
    loggers, when a metric or logger acts (or values are pending for the loggers)."""
    if not _stock_evaluator(ev, event):  # a hook of its own, or a subclass: call it as is
        acts = _acts_on(ev, event) or (
            ev._active
            and (
                any(_acts_on(m, event) for m in ev.metrics)
                or any(_acts_on(lg, event) for lg in ev.loggers)
            )
        )
        return getattr(ev, event) if acts else None
    if not ev._active:
        return None
    metrics = [m for m in ev.metrics if _metric_acts_on(m, event)]
    if metrics or any(_acts_on(lg, event) for lg in ev.loggers):
        return _MetricsCall(ev, event, metrics)
    return _PendingValues(ev, event) if ev.loggers else None


def _lean_hook(event: str, cached: bool):
    """A template event method that calls only the plugins acting on ``event``, in order,
    exactly as ``trigger_plugins`` would call them."""

    def hook(self, **kwargs):
        for h in self._handlers(event, cached):
            h(self, **kwargs)

    hook.__name__ = hook.__qualname__ = f"_{event}"
    return hook


def _on_device(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether every parameter and buffer of ``model`` is on ``device`` (one walk over
    the modules' own tensors, cheaper than ``parameters()`` and ``buffers()``)."""
    typ, index = device.type, device.index
    for m in model.modules():
        for t in itertools.chain(m._parameters.values(), m._buffers.values()):
            if t is not None:
                d = t.device
                if d.type != typ or (index is not None and d.index != index):
                    return False
    return True


class _DeferredAdaptation:
    """Avalanche's dataset adaptation of ``experience`` (``experience.dataset.train()`` or
    ``.eval()``, a copy of the dataset), not built until something reads it."""

    __slots__ = ("experience", "mode")

    def __init__(self, experience, mode: str):
        self.experience, self.mode = experience, mode

    def build(self):
        ds = self.experience.dataset
        assert ds is not None
        return ds.train() if self.mode == "train" else ds.eval()


def with_fast_data(plugins: Optional[Sequence], fast_data: bool) -> list:
    """``plugins`` with a :class:`FastDataPlugin` first, unless present or ``fast_data`` is off."""
    plugins = list(plugins or [])
    if fast_data and not any(isinstance(p, FastDataPlugin) for p in plugins):
        plugins.insert(0, FastDataPlugin())
    return plugins


def _device_rule(name: str, value):
    check_device(value, name)
    return value


#: The rules of the template arguments every strategy of this library takes (``checked``).
TEMPLATE_RULES = dict(
    model=instance_of(torch.nn.Module),
    optimizer=instance_of(torch.optim.Optimizer),
    train_mb_size=integer(1),
    train_epochs=integer(1),
    eval_mb_size=integer(1, none_ok=True),
    device=_device_rule,
)


def template_defaults(
    criterion,
    train_mb_size: int,
    eval_mb_size: Optional[int],
    plugins: Optional[Sequence],
    fast_data: bool,
) -> dict:
    """Our strategies' defaults for Avalanche template arguments: cross-entropy when
    ``criterion`` is None, ``eval_mb_size`` ``max(train_mb_size, 256)`` when None, and the
    plugins :func:`with_fast_data`."""
    return dict(
        criterion=CrossEntropyLoss() if criterion is None else criterion,
        train_mb_size=train_mb_size,
        eval_mb_size=eval_mb_size if eval_mb_size is not None else max(train_mb_size, 256),
        plugins=with_fast_data(plugins, fast_data),
    )


class FastTemplate(SupervisedTemplate):
    """``SupervisedTemplate`` with the fast data path and lean per-iteration dispatch.

    Takes Avalanche's ``SupervisedTemplate`` arguments (keyword-only, extra ones
    forwarded as ``**base_kwargs``) plus ``fast_data`` (default True). The model must be
    a ``torch.nn.Module``, the optimizer a ``torch.optim.Optimizer``, ``train_mb_size``,
    ``train_epochs`` and ``eval_mb_size`` integers >= 1 and ``device`` one this machine
    has (:func:`~avalanche_neumod._checks.check_device`).
    """

    @checked(**TEMPLATE_RULES)
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
            train_epochs=train_epochs,
            device=device,
            **template_defaults(criterion, train_mb_size, eval_mb_size, plugins, fast_data),
            **base_kwargs,
        )
        self._dispatch_cache: dict = {}  # per-iteration events, cleared per experience
        self._dispatch_memo: dict = {}  # event -> (objects, key, handlers)

    # The dispatch caches hold handlers bound to this strategy's own plugins, metrics and
    # loggers, keyed by their ids: never valid for another object. Copies and pickles
    # leave them out (rebuilt at the next event); ``reset_dispatch`` empties them here.
    _DISPATCH_CACHES = ("_dispatch_cache", "_dispatch_memo")
    # Per-iteration results whose autograd graph cannot be copied: copied detached.
    _GRAPH_STATE = ("mb_output", "loss")

    def reset_dispatch(self) -> None:
        """Forget the event handlers read from the plugins (read again at the next event).

        Per-iteration handlers are read once per experience, and reused while the
        plugins, metrics and loggers are the same objects: call this after changing them
        in the middle of an experience, or after replacing a plugin's hook methods in
        place. ``copy.deepcopy`` and ``pickle`` never carry these caches.
        """
        self._dispatch_cache.clear()
        self._dispatch_memo.clear()

    def __getstate__(self) -> dict:
        """The state ``copy.deepcopy`` and ``pickle`` use: without the dispatch caches,
        and with the current ``mb_output`` and ``loss`` detached from their graph (so a
        strategy can be copied or pickled in the middle of an experience)."""
        state = dict(self.__dict__)
        for name in self._DISPATCH_CACHES:
            if name in state:
                state[name] = {}
        for name in self._GRAPH_STATE:
            v = state.get(name)
            if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                state[name] = v.detach()
        return state

    def _handlers(self, event: str, cached: bool = True) -> list:
        handlers = self._dispatch_cache.get(event) if cached else None
        if handlers is None:
            # The handlers depend only on the plugins, the evaluators' metrics and loggers
            # (by identity, in order) and whether each evaluator is active: reuse them while
            # these are unchanged (the memo holds the objects, so their ids stay theirs).
            objects: list = list(self.plugins)
            flags: list = []
            for p in self.plugins:
                if isinstance(p, EvaluationPlugin):
                    objects += (*p.metrics, *p.loggers)
                    flags += (p._active, len(p.metrics), len(p.loggers))
            key = (*map(id, objects), *flags)
            memo = self._dispatch_memo.get(event)
            if memo is not None and memo[1] == key:
                handlers = memo[2]
            else:
                handlers = self._build_handlers(event)
                self._dispatch_memo[event] = (objects, key, handlers)
            if cached:
                self._dispatch_cache[event] = handlers
        return handlers

    def _build_handlers(self, event: str) -> list:
        """The calls ``trigger_plugins(self, event)`` must make, in plugin order."""
        handlers = []
        for p in self.plugins:
            if isinstance(p, EvaluationPlugin):
                h = _evaluator_handler(p, event)
                if h is not None:
                    handlers.append(h)
            elif _acts_on(p, event):
                handlers.append(getattr(p, event))
        return handlers

    # Dataset adaptation: Avalanche's, deferred to the first read of ``adapted_dataset``
    # (our loaders slice the experience's tensors and do not read it). Assigning
    # ``adapted_dataset`` (a plugin replacing it) works as in Avalanche.
    @property
    def adapted_dataset(self):
        ds = self.__dict__.get("_adapted_dataset")
        if isinstance(ds, _DeferredAdaptation):
            ds = self.__dict__["_adapted_dataset"] = ds.build()
        return ds

    @adapted_dataset.setter
    def adapted_dataset(self, value) -> None:
        self.__dict__["_adapted_dataset"] = value

    @property
    def adaptation_deferred(self) -> bool:
        """Whether ``adapted_dataset`` is still the experience's own data, not built yet."""
        return isinstance(self.__dict__.get("_adapted_dataset"), _DeferredAdaptation)

    def train_dataset_adaptation(self, **kwargs):
        assert self.experience is not None
        self.adapted_dataset = _DeferredAdaptation(self.experience, "train")

    def eval_dataset_adaptation(self, **kwargs):
        assert self.experience is not None
        self.adapted_dataset = _DeferredAdaptation(self.experience, "eval")

    # Loaders: ours straight away when the FastDataPlugin serves the experience (the
    # stock loader, a fixed cost per experience, is not built just to be replaced). Our
    # evaluation loader makes the stock one's global RNG draw, so runs stay paired with
    # Avalanche's (with or without a FastDataPlugin evaluating).
    def _fast_data_plugin(self) -> Optional[FastDataPlugin]:
        return next((p for p in self.plugins if isinstance(p, FastDataPlugin)), None)

    def make_train_dataloader(self, **kwargs):
        fast = self._fast_data_plugin()
        loader = None if fast is None else fast.train_loader(self)
        if loader is None:
            super().make_train_dataloader(**kwargs)
        else:
            self.dataloader = loader

    def make_eval_dataloader(self, **kwargs):
        fast = self._fast_data_plugin()
        loader = None if fast is None else fast.eval_loader(self)
        if loader is None:
            super().make_eval_dataloader(**kwargs)
        else:
            self.dataloader = loader

    def make_optimizer(self, reset_optimizer_state=False, remove_params=False, **kwargs):
        # Avalanche re-reads every parameter into the optimizer at each experience (twice).
        # When no reset is asked and neither the model's named parameters nor the
        # optimizer's parameters have changed since the last call, that is a no-op: skip it.
        _, key = self._optimizer_state_key()
        if (
            not reset_optimizer_state
            and not remove_params
            and self.optimized_param_id is not None
            and key == getattr(self, "_optimizer_key", None)
        ):
            return
        super().make_optimizer(
            reset_optimizer_state=reset_optimizer_state, remove_params=remove_params, **kwargs
        )
        # the references keep the objects alive, so their ids cannot be reused
        self._optimizer_refs, self._optimizer_key = self._optimizer_state_key()

    def _optimizer_state_key(self) -> tuple[list, tuple]:
        """The optimizer, the model's named parameters and the optimizer's parameters:
        the objects, and a key comparing names by value and objects by identity."""
        named = list(self.model.named_parameters())
        grouped = [p for g in self.optimizer.param_groups for p in g["params"]]
        refs = [self.optimizer, *(p for _, p in named), *grouped]
        key = (id(self.optimizer), tuple((n, id(p)) for n, p in named), tuple(map(id, grouped)))
        return refs, key

    def _unpack_minibatch(self):
        # Our loader's tensors are already on the strategy's device: skip the per-batch
        # ``.to(device)`` calls (the rest of the contract is unchanged).
        if isinstance(self.dataloader, TensorBatchLoader) and isinstance(self.mbatch, list):
            return
        super()._unpack_minibatch()

    def model_adaptation(self, model=None):
        # Avalanche's adaptation, then ``model.to(device)`` only when something is not
        # on the device yet (the call walks every module even when it has nothing to do).
        model = self.model if model is None else model
        exp = self.experience
        if isinstance(exp, OnlineCLExperience) and self.is_training and exp.access_task_boundaries:
            exp = exp.origin_experience  # as Avalanche's BatchObservation does
        avalanche_model_adaptation(model, exp)
        if _on_device(model, torch.device(self.device)):
            return model
        return model.to(self.device)

    # An experience's set-up: Avalanche's steps (BaseSGDTemplate's, then BaseTemplate's
    # ``before_*_exp`` event), with the lean dispatch. The per-iteration handlers are read
    # once per experience, after its before-experience hooks (which may add plugins).
    def _before_training_exp(self, **kwargs):
        self._before_train_dataset_adaptation(**kwargs)
        self.train_dataset_adaptation(**kwargs)
        self._after_train_dataset_adaptation(**kwargs)
        self.make_train_dataloader(**kwargs)
        self.check_model_and_optimizer(**kwargs)
        for h in self._handlers("before_training_exp", False):
            h(self, **kwargs)
        self._dispatch_cache.clear()

    def _before_eval_exp(self, **kwargs):
        self._before_eval_dataset_adaptation(**kwargs)
        self.eval_dataset_adaptation(**kwargs)
        self._after_eval_dataset_adaptation(**kwargs)
        self.make_eval_dataloader(**kwargs)
        self.model = self.model_adaptation()
        for h in self._handlers("before_eval_exp", False):
            h(self, **kwargs)
        self._dispatch_cache.clear()

    # Per-iteration events: handlers read once per experience. Per-experience events:
    # read at each call (plugins may change between experiences).
    _before_training_iteration = _lean_hook("before_training_iteration", True)
    _before_forward = _lean_hook("before_forward", True)
    _after_forward = _lean_hook("after_forward", True)
    _before_backward = _lean_hook("before_backward", True)
    _after_backward = _lean_hook("after_backward", True)
    _before_update = _lean_hook("before_update", True)
    _after_update = _lean_hook("after_update", True)
    _after_training_iteration = _lean_hook("after_training_iteration", True)
    _before_eval_iteration = _lean_hook("before_eval_iteration", True)
    _before_eval_forward = _lean_hook("before_eval_forward", True)
    _after_eval_forward = _lean_hook("after_eval_forward", True)
    _after_eval_iteration = _lean_hook("after_eval_iteration", True)
    _before_training = _lean_hook("before_training", False)
    _after_training = _lean_hook("after_training", False)
    _after_training_exp = _lean_hook("after_training_exp", False)
    _before_training_epoch = _lean_hook("before_training_epoch", False)
    _after_training_epoch = _lean_hook("after_training_epoch", False)
    _before_train_dataset_adaptation = _lean_hook("before_train_dataset_adaptation", False)
    _after_train_dataset_adaptation = _lean_hook("after_train_dataset_adaptation", False)
    _before_eval = _lean_hook("before_eval", False)
    _after_eval = _lean_hook("after_eval", False)
    _after_eval_exp = _lean_hook("after_eval_exp", False)
    _before_eval_dataset_adaptation = _lean_hook("before_eval_dataset_adaptation", False)
    _after_eval_dataset_adaptation = _lean_hook("after_eval_dataset_adaptation", False)


class FastNaive(FastTemplate):
    """Naive fine-tuning on the fast path: the "our Naive" that overheads are measured against."""


FAST_NAIVE_METHOD = Method("FastNaive", FastNaive, doc="fine-tuning on our fast path")

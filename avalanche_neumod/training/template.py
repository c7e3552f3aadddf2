"""The base of this library's strategies: Avalanche's ``SupervisedTemplate`` on the fast path.

Two things make a plain run cost little more than a hand-written PyTorch loop
(DESIGN 10, P1), without changing what any plugin or metric sees:

1. :class:`~avalanche_neumod.training.fast_data.FastDataPlugin` serves
   minibatches by slicing in-memory tensors (on by default, ``fast_data=False``
   turns it off).
2. Events skip the calls that cannot do anything: a plugin hook inherited
   unchanged from Avalanche's no-op base classes, and the ``EvaluationPlugin``
   when neither it nor any of its metrics or loggers handles the event
   (Avalanche's dispatcher copies the experience on every call even then).
   Everything else is called exactly as ``trigger_plugins`` would, in plugin
   order. Per-iteration handlers are read once per experience.
3. Per experience, the training loader is ours from the start (the stock one is
   not built first), and the model is moved to the device only when something is
   elsewhere. Our strategies stay on the same random stream as an Avalanche
   strategy with a ``FastDataPlugin``: the same seed gives identical runs.
"""

from __future__ import annotations

import functools
import itertools
from typing import Optional, Sequence

import torch
from avalanche.benchmarks import OnlineCLExperience
from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin
from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.logging import BaseLogger
from avalanche.models.utils import avalanche_model_adaptation
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch.nn import CrossEntropyLoss

from .fast_data import FastDataPlugin, TensorBatchLoader

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
# experience, epoch or stream. ``before_training_exp``/``before_eval_exp`` are not
# here: their Avalanche implementations do the experience's set-up first.
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


def _noops(event: str) -> set:
    """The functions that implement ``event`` as a no-op in Avalanche's bases."""
    out = set()
    for cls in (BasePlugin, BaseSGDPlugin, SupervisedPlugin, PluginMetric, BaseLogger):
        f = cls.__dict__.get(event)
        if f is not None:
            out.add(f)
    return out


_NOOPS = {e: _noops(e) for e in _ITERATION_EVENTS + _EXPERIENCE_EVENTS}


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


def _evaluator_acts_on(ev: EvaluationPlugin, event: str) -> bool:
    """Whether the ``EvaluationPlugin`` does anything on ``event``: its own hook (e.g.
    ``before_eval``'s checks), or a metric or logger that implements the event."""
    return _acts_on(ev, event) or (
        ev._active
        and (
            any(_acts_on(m, event) for m in ev.metrics)
            or any(_acts_on(lg, event) for lg in ev.loggers)
        )
    )


def _lean_hook(event: str, cached: bool):
    """A template event method that calls only the plugins acting on ``event``, in order,
    exactly as ``trigger_plugins`` would call them."""

    def hook(self, **kwargs):
        for h in self._handlers(event, cached):
            h(self, **kwargs)

    hook.__name__ = hook.__qualname__ = f"_{event}"
    return hook


def _on_device(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether every parameter and buffer of ``model`` is on ``device``."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        d = t.device
        if d.type != device.type or (device.index is not None and d.index != device.index):
            return False
    return True


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

    def _handlers(self, event: str, cached: bool = True) -> list:
        handlers = self._dispatch_cache.get(event) if cached else None
        if handlers is None:
            handlers = []
            for p in self.plugins:
                if isinstance(p, EvaluationPlugin):
                    if _evaluator_acts_on(p, event):
                        handlers.append(getattr(p, event))
                elif _acts_on(p, event):
                    handlers.append(getattr(p, event))
            if cached:
                self._dispatch_cache[event] = handlers
        return handlers

    def make_train_dataloader(self, **kwargs):
        # Ours straight away when the FastDataPlugin serves the experience: the stock
        # training loader (a fixed cost per experience, no random draw) is not built just
        # to be replaced. The evaluation loader is left to Avalanche: building it draws
        # from torch's global RNG, and skipping it would desynchronise our strategies
        # from an Avalanche strategy with a FastDataPlugin (identical runs, tested).
        fast = next((p for p in self.plugins if isinstance(p, FastDataPlugin)), None)
        loader = None if fast is None else fast.train_loader(self)
        if loader is None:
            super().make_train_dataloader(**kwargs)
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

    # The per-iteration handlers are read once per experience (after its
    # before-experience hooks, which may add plugins or metrics).
    def _before_training_exp(self, **kwargs):
        super()._before_training_exp(**kwargs)
        self._dispatch_cache.clear()

    def _before_eval_exp(self, **kwargs):
        super()._before_eval_exp(**kwargs)
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

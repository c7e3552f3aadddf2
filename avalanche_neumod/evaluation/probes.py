"""Forking a strategy for a probe, and running a probe (docs/metrics.md).

A probe trains a *copy* of a strategy for ``beta`` batches on one experience with
the method's own update rule and measures accuracy after each batch; the main
run must not notice. :func:`fork_strategy` makes that copy with
``copy.deepcopy`` of the whole strategy (model, optimizer and its state, the
method's plugins and their state: EWC importances, CBP utilities, replay
buffers, ...), except:

- the ``EvaluationPlugin`` is replaced by a silent, inactive one (a probe never
  logs to the main run's loggers), and ``PeriodicEval`` and observers are
  dropped: instances of :class:`avalanche_neumod.observer.Observer` (the
  training monitor, this library's trackers and probe drivers) and of the types
  in ``exclude`` (for plugins that cannot derive from ``Observer``);
- per-iteration state (current minibatch, output, loss, dataloader, adapted
  dataset) is not copied, nor is a :class:`FastTemplate`'s dispatch cache
  (its ``__getstate__`` leaves it out of every copy and pickle), and the
  experiences and data tensors given in ``share`` (and
  ``strategy.experience``) are shared, not copied: data are read-only.

:func:`run_probe` then trains the fork through its own ``train()`` on a
truncated copy of the experience (``beta * train_mb_size`` samples drawn by a
private generator), with a recorder appended after every other plugin; it stops
the fork right after the ``beta``-th update (so end-of-experience hooks, such as
EWC's importance computation, are not run for nothing) and discards it.

Model hooks must be objects or bound methods (as :class:`UnitRecorder`'s are) to
follow the copy; a closure registered as a hook keeps pointing at the original
objects, and :func:`fork_strategy` warns about it.
"""

from __future__ import annotations

import copy
import random
import types
import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates.base_sgd import PeriodicEval

from ..observer import Observer
from ..tensors import attach_tensors, attached_tensors
from .subset_eval import SubsetEvaluator

_PER_ITERATION_STATE = ("adapted_dataset", "dataloader", "mbatch", "mb_output", "loss")
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


class _Removed:
    """Stands in for an excluded plugin during the deep copy."""


def is_observer(plugin, exclude: Sequence[type] = ()) -> bool:
    """Whether a plugin observes rather than trains (not copied into probes): an
    ``EvaluationPlugin``, a ``PeriodicEval``, an :class:`Observer` or an instance of a
    type in ``exclude``."""
    if isinstance(plugin, (EvaluationPlugin, PeriodicEval, Observer)):
        return True
    if bool(exclude) and isinstance(plugin, tuple(exclude)):
        return True
    if getattr(plugin, "neumod_observer", False):
        warnings.warn(
            f"{type(plugin).__name__}.neumod_observer is deprecated: derive from "
            "avalanche_neumod.observer.Observer or pass the type as exclude=",
            DeprecationWarning,
            stacklevel=3,
        )
        return True
    return False


def _silent_evaluator() -> EvaluationPlugin:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = EvaluationPlugin(loggers=[], collect_all=False)
    ev.active = False
    return ev


def _share(memo: dict, obj) -> None:
    if obj is not None and not isinstance(obj, (int, float, str, bool, tuple)):
        memo[id(obj)] = obj


def fork_strategy(strategy, share: Iterable = (), exclude: Sequence[type] = ()) -> object:
    """A deep copy of ``strategy`` that trains like it but observes and logs nothing."""
    memo: dict = {}
    removed = _Removed()
    for p in strategy.plugins:
        if is_observer(p, exclude) and p is not strategy.evaluator:
            memo[id(p)] = removed
    memo[id(strategy.evaluator)] = _silent_evaluator()
    for name in _PER_ITERATION_STATE:
        v = getattr(strategy, name, None)
        if v is not None and not isinstance(v, (int, float, str, bool, tuple)):
            memo[id(v)] = None
    for exp in [getattr(strategy, "experience", None), *share]:
        if exp is None:
            continue
        _share(memo, exp)
        _share(memo, getattr(exp, "_dataset", None))
        data = attached_tensors(exp)
        if data is not None:
            _share(memo, data)
            for t in (data.x, data.y, data.t):
                _share(memo, t)
    clone = copy.deepcopy(strategy, memo)
    clone.plugins = [p for p in clone.plugins if not isinstance(p, _Removed)]
    clone.dataloader = []
    clone.mbatch = clone.mb_output = clone.adapted_dataset = None
    if hasattr(clone, "_make_empty_loss"):
        clone.loss = clone._make_empty_loss()
    _warn_closure_hooks(clone.model)
    return clone


def _warn_closure_hooks(model: torch.nn.Module) -> None:
    for name, m in model.named_modules():
        for attr in _HOOK_DICTS:
            for h in getattr(m, attr, {}).values():
                if isinstance(h, types.FunctionType) and h.__closure__:
                    warnings.warn(
                        f"module {name or type(model).__name__!r} has a closure hook "
                        f"{h.__qualname__}: in a forked strategy (probe) it still refers to the "
                        "original objects; register a callable object or a bound method instead",
                        stacklevel=3,
                    )


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Save and restore the global random states (torch, CUDA, numpy, random)."""
    t = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    n = np.random.get_state()
    r = random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(t)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(n)
        random.setstate(r)


def truncated_experience(experience, n: int, seed: int):
    """A shallow copy of ``experience`` (same ``current_experience``, classes, ...) whose
    dataset (and ``.tensors``) hold ``n`` samples drawn by a private generator."""
    ds = experience.dataset
    if n >= len(ds):
        return experience
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(len(ds), generator=g)[:n].sort().values
    out = copy.copy(experience)
    object.__setattr__(out, "_dataset", ds.subset(idx.tolist()))
    data = attached_tensors(experience)
    if data is not None:
        attach_tensors(out, data.subset(idx))
    return out


class ProbeDone(Exception):
    """Raised by the probe recorder after the last measured update."""


class ProbeRecorder(Observer, SupervisedPlugin):
    """Accuracy on one experience's fixed subset before the first update and after each
    of the first ``beta`` updates. ``stop=True`` raises :class:`ProbeDone` after the last.

    In a probe it is the last plugin, so each measurement sees the complete update.
    """

    def __init__(self, evaluator: SubsetEvaluator, exp_id: int, beta: int, stop: bool = True):
        super().__init__()
        self.evaluator = evaluator
        self.exp_id = exp_id
        self.beta = beta
        self.stop = stop
        self.accs: list[float] = []

    def measure(self, strategy) -> None:
        acc = self.evaluator.evaluate(strategy.model, [self.exp_id], strategy.device)
        self.accs.append(acc[self.exp_id])

    def before_training_iteration(self, strategy, **kwargs) -> None:
        if not self.accs:
            self.measure(strategy)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if len(self.accs) <= self.beta:
            self.measure(strategy)
        if self.stop and len(self.accs) > self.beta:
            raise ProbeDone


def run_probe(
    snapshot,
    experience,
    exp_id: int,
    evaluator: SubsetEvaluator,
    beta: int,
    seed: int = 0,
    share: Iterable = (),
    exclude: Sequence[type] = (),
) -> list[float]:
    """Fork ``snapshot``, train the fork ``beta`` batches on ``experience`` through its own
    ``train()``, and return the ``beta + 1`` accuracies on experience ``exp_id``'s subset.

    Consumes global random numbers: callers wrap probes in :func:`preserved_rng`.
    """
    clone = fork_strategy(snapshot, share=[experience, *share], exclude=exclude)
    rec = ProbeRecorder(evaluator, exp_id, beta)
    clone.plugins.append(rec)
    exp = truncated_experience(experience, beta * int(clone.train_mb_size), seed)
    try:
        clone.train(exp, eval_streams=[])
    except ProbeDone:
        pass
    if len(rec.accs) < beta + 1:
        raise ValueError(
            f"the probe on experience {exp_id} made only {max(len(rec.accs) - 1, 0)} updates; "
            f"beta={beta} needs beta batches per experience"
        )
    return rec.accs


def snapshot_strategy(strategy, share: Iterable = (), exclude: Sequence[type] = ()):
    """A fork kept as a probe starting point (e.g. the initial state)."""
    return fork_strategy(strategy, share=share, exclude=exclude)


__all__ = [
    "ProbeDone",
    "ProbeRecorder",
    "fork_strategy",
    "is_observer",
    "preserved_rng",
    "run_probe",
    "snapshot_strategy",
    "truncated_experience",
]

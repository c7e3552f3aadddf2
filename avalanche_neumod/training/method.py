"""A method declares itself once, next to its code, and reports through three hooks.

**The declaration.** Each method of this library has one :class:`Method` record beside
its strategy (``training/strategies.py``, ``training/ngm/``, ``training/neumosync.py``,
...): its name, its strategy class, the plugin that holds its mechanism (the one to put in
any other Avalanche strategy), its default optimizer or :data:`OWNS_OPTIMIZER`, the
hyperparameters a suite may tune, its default arguments and one line of documentation.
``experiment/registry.py`` builds its table of methods from these records (and from
Avalanche's strategies, declared there); the suite loader, the cell runner, tuning and the
reports read the record, never a method's name.

**The hooks** (:class:`ReportsMechanism`). What a mechanism did is reported through three
optional methods, found by duck typing on the strategy object and on every plugin in
``strategy.plugins`` (:func:`mechanism_hooks`); no base class is needed, so a user's
method passed to a suite by import path gets the same recording and reporting by
defining them.

This module imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

#: A :class:`Method`'s ``optimizer`` when the optimizer is part of the mechanism (NGM-SGD's
#: gain-modulated SGD): the strategy builds it, the suite's optimizer does not replace it,
#: and a cell records its optimizer as ``{"name": "own"}`` (the value stored cells hold).
OWNS_OPTIMIZER = "own"

#: The default optimizer of a method that trains with the suite's optimizer.
DEFAULT_OPTIMIZER: dict = {"name": "sgd", "lr": 0.01}

#: The hooks' names, in the order the runner calls them.
HOOKS = ("mechanism_activity", "mechanism_history", "mechanism_failure")


@runtime_checkable
class ReportsMechanism(Protocol):
    """What a method's mechanism did, in three optional methods (define any of them).

    The runner looks for each on the strategy and on every plugin of ``strategy.plugins``
    (a method only needs them on the object that holds the mechanism's state: the plugin,
    or the strategy when it has no plugin) and merges what they return.

    ``mechanism_activity(strategy) -> dict[str, float | int]``
        Called at the end of every training experience. Scalars describing what the
        mechanism did so far (``{"cbp_replaced": 20}``: units replaced since the start of
        the cell). They are merged, beside the method-independent readings
        (``distance_from_init``, ``dormant``, ``effective_rank``), into the cell's
        ``measures.activity.per_experience[k]``; the report tabulates them per
        experience. Name the keys after the method (``toy_resets``), so that two
        mechanisms never write the same key. Must not change training: read state, draw no
        random numbers from the global generators.

    ``mechanism_history() -> dict[str, dict]``
        Called once at the end of the cell. Time series recorded over the whole cell,
        JSON-serialisable, one entry per kind (``{"gains": {...}}`` for NGM-SGD,
        ``{"alphas": {...}}`` for NeuMoSync), stored in the cell's
        ``measures.history``. Return ``{}`` when nothing was recorded.

    ``mechanism_failure() -> dict | None``
        Called once after training. ``None`` while the mechanism works; a dict with at
        least ``"reason"`` when it broke the run although the loss stayed finite (NGM-SGD's
        gain collapse). The cell is then recorded with ``status="collapsed"``, the dict as
        its ``collapsed`` record, and it is listed apart in reports, never averaged.
    """

    def mechanism_activity(self, strategy: Any) -> dict[str, Union[float, int]]: ...

    def mechanism_history(self) -> dict[str, dict]: ...

    def mechanism_failure(self) -> Optional[dict]: ...


def mechanism_hooks(strategy: Any, hook: str) -> list[Callable[..., Any]]:
    """The ``hook`` methods (one of :data:`HOOKS`) of ``strategy`` and of its plugins, in
    that order (the strategy first, then ``strategy.plugins`` in their order), each object
    once."""
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r}; valid: {', '.join(HOOKS)}")
    out, seen = [], set()
    for obj in (strategy, *(getattr(strategy, "plugins", None) or [])):
        fn = getattr(obj, hook, None)
        if callable(fn) and id(obj) not in seen:
            seen.add(id(obj))
            out.append(fn)
    return out


@dataclass(frozen=True)
class Method:
    """One method's declaration (see the module docstring).

    Args:
        name: the name suites use (``methods: {CBP: {...}}``).
        strategy: the strategy class a cell builds (keyword arguments: the template's, the
            method's ``args``, ``model``, ``optimizer`` unless it owns its optimizer); an
            import path ``"package.module:Name"`` for a user's class, imported when used.
        plugin: the plugin class holding the mechanism (and its hooks), for use in any
            Avalanche strategy; ``None`` when the mechanism lives in the strategy. The
            strategy already includes it: a cell does not add it again.
        optimizer: the default optimizer configuration (``{"name": "sgd", "lr": 0.01}``,
            replaced by the suite's), or :data:`OWNS_OPTIMIZER` when the optimizer is the
            mechanism (the strategy builds it; the suite's does not replace it; ``lr`` is
            then one of the method's arguments).
        tunable: the method's arguments a suite may tune (``tune: {rho: [...]}``); ``lr``
            and ``optimizer.<setting>`` are always tunable. ``None``: every argument of the
            strategy's constructor (a user's class).
        args: default arguments (a suite's ``args`` are merged over them).
        doc: one line for ``neumod list methods``.
        kind: ``"ours"``, ``"avalanche"`` (Avalanche's own strategies) or ``"user"`` (an
            import path); recorded in every cell's configuration.
    """

    name: str
    strategy: Union[type, str]
    plugin: Optional[type] = None
    optimizer: Union[dict, str] = field(default_factory=lambda: dict(DEFAULT_OPTIMIZER))
    tunable: Optional[tuple[str, ...]] = ()
    args: dict = field(default_factory=dict)
    doc: str = ""
    kind: str = "ours"

    def __post_init__(self) -> None:
        if self.kind not in ("ours", "avalanche", "user"):
            raise ValueError(f"Method {self.name!r}: unknown kind {self.kind!r}")
        if self.optimizer != OWNS_OPTIMIZER and not isinstance(self.optimizer, dict):
            raise ValueError(
                f"Method {self.name!r}: optimizer must be a config dict or OWNS_OPTIMIZER, "
                f"got {self.optimizer!r}"
            )
        if self.tunable is not None:
            object.__setattr__(self, "tunable", tuple(self.tunable))

    @property
    def owns_optimizer(self) -> bool:
        """Whether the optimizer is the mechanism (the strategy builds it)."""
        return self.optimizer == OWNS_OPTIMIZER

"""Check a cell's arguments against what will receive them, when the suite loads.

A typo in a suite (``train: {epoch: 50}``, ``eval: {every_experiance: false}``, a
method argument its strategy does not take) would otherwise be ignored or fail
one cell at run time. :func:`check_cell` refuses, before anything runs:

- unknown ``train`` and ``eval`` keys and out-of-range values (``log_every: 0``);
- ``args`` of a method, stream, stream wrapper, model, optimizer or metric that the
  callable receiving them does not name in its signature (a strategy class: any
  ``__init__`` along its MRO, since strategies forward ``**kwargs`` to their bases).

Our own and Avalanche's classes come straight from the registry's tables, so they
are always checked. A callable that takes ``**kwargs`` and names nothing else, or a
user's import path whose code cannot be imported here, is not checked (it still
fails its own cells when run). Every error lists the valid keys.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Optional

from .. import _checks
from . import registry

TRAIN_KEYS = {"mb_size", "epochs", "eval_mb_size", "device"}
EVAL_KEYS = {"every_experience", "log_every"}


class ArgumentError(ValueError):
    """An argument of a cell that nothing will receive, or a value out of range."""


def _named(params: Iterable[inspect.Parameter]) -> tuple[set[str], bool]:
    names, var_kw = set(), False
    for p in params:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
            names.add(p.name)
    return names - {"self"}, var_kw


def accepted(obj: Any) -> Optional[set[str]]:
    """The keyword names ``obj`` accepts, or None when it cannot be told (``**kwargs`` only,
    no signature). A class: the union over the ``__init__`` of every class in its MRO
    (strategies forward ``**kwargs`` to their bases), object's excluded."""
    if inspect.isclass(obj):
        names: set[str] = set()
        open_ended = True
        for c in obj.__mro__:
            if c is object or "__init__" not in c.__dict__:
                continue
            try:
                n, var_kw = _named(inspect.signature(c.__dict__["__init__"]).parameters.values())
            except (TypeError, ValueError):
                return None
            names |= n
            if not var_kw:
                open_ended = False
                break
        if open_ended and not names:
            return None
        return names
    try:
        names, var_kw = _named(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    if var_kw and not names:
        return None
    return names


def check_keys(
    given: Any, valid: Optional[set[str]], what: str, exclude: Iterable[str] = ()
) -> None:
    """Refuse keys of ``given`` outside ``valid`` (minus ``exclude``), listing the valid ones."""
    if valid is None:
        return
    if not isinstance(given, dict):
        raise ArgumentError(f"{what} must be a mapping, got {type(given).__name__}")
    valid = set(valid) - set(exclude)
    bad = sorted(str(k) for k in given if k not in valid)
    if bad:
        raise ArgumentError(
            f"{what}: unknown argument(s) {', '.join(bad)}; "
            f"valid: {', '.join(sorted(valid)) or '(none)'}"
        )


def _resolved(get: Callable[[str], Any], name: str) -> Optional[Any]:
    """``get(name)``, or None when its code cannot be imported here (checked when run)."""
    try:
        return get(name)
    except (registry.RegistryError, ImportError):
        return None


def _values(target: Any, given: Any, what: str, skip: Iterable[str] = ()) -> None:
    """The values in ``given`` against ``target``'s own rules (``_checks.rules_of``: what its
    constructor applies when called), as an ``ArgumentError`` naming ``what``."""
    if target is None or not isinstance(given, dict):
        return
    try:
        _checks.check_arguments(target, given, skip=set(skip))
    except ValueError as e:
        raise ArgumentError(f"{what}: {e}") from None


#: train settings -> the strategy template's arguments they become (the template's rules)
TRAIN_ARGS = {
    "mb_size": "train_mb_size",
    "epochs": "train_epochs",
    "eval_mb_size": "eval_mb_size",
    "device": "device",
}


def check_train_eval(cfg: dict, where: str) -> None:
    """``train`` and ``eval``: known keys, and values a cell can use (``train`` values by the
    rules of the strategy template they are passed to, ``device`` by ``check_device``)."""
    from ..training.template import FastTemplate

    t, e = cfg["train"], cfg["eval"]
    check_keys(t, TRAIN_KEYS, f"{where}: train")
    check_keys(e, EVAL_KEYS, f"{where}: eval")
    given = {TRAIN_ARGS[k]: v for k, v in t.items() if not (k == "mb_size" and v == "stream")}
    try:
        _checks.check_arguments(FastTemplate, given)
    except ValueError as err:
        key = next(k for k, a in TRAIN_ARGS.items() if str(err).startswith(a))
        msg = str(err).split(" ", 1)[1]
        extra = " (or 'stream' for the stream's own batch size)" if key == "mb_size" else ""
        raise ArgumentError(f"{where}: train.{key} {msg}{extra}") from None
    if not _pos_int(e.get("log_every", 10)):
        raise ArgumentError(
            f"{where}: eval.log_every must be an integer >= 1, got {e['log_every']!r}"
        )
    if not isinstance(e.get("every_experience", True), bool):
        raise ArgumentError(
            f"{where}: eval.every_experience must be true or false, got {e['every_experience']!r}"
        )


def _pos_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def check_cell(cfg: dict, where: str) -> None:
    """Every argument of one resolved cell configuration (``suite.expand``'s)."""
    from . import measures

    check_train_eval(cfg, where)
    m = cfg["method"]
    cls = _resolved(lambda name: registry.strategy_class(registry.method_spec(name)), m["name"])
    if cls is not None:
        if not inspect.isclass(cls):
            raise ArgumentError(
                f"{where}: method {m['name']!r} names {type(cls).__name__} {cls!r}, not a "
                "strategy class"
            )
        check_keys(m["args"], accepted(cls), f"{where}: method {m['name']!r} args")
        _values(cls, m["args"], f"{where}: method {m['name']!r} args")
    st = cfg["stream"]
    fn = _resolved(registry.stream_factory, st["name"])
    if fn is not None:
        check_keys(st["args"], accepted(fn), f"{where}: stream {st['name']!r} args")
        _values(fn, st["args"], f"{where}: stream {st['name']!r} args")
    for w in st.get("wrappers") or []:
        name, args = (w, {}) if isinstance(w, str) else (w.get("name", ""), w.get("args") or {})
        wfn = _resolved(registry.wrapper_factory, name)
        if wfn is not None:
            params = list(inspect.signature(wfn).parameters)
            check_keys(args, accepted(wfn), f"{where}: wrapper {name!r} args", params[:1])
            _values(wfn, args, f"{where}: wrapper {name!r} args", params[:1])
    mod = cfg["model"]
    receiver = _resolved(registry.model_receiver, mod["name"])
    if receiver is not None:
        mfn, supplied = receiver
        check_keys(mod["args"], accepted(mfn), f"{where}: model {mod['name']!r} args", supplied)
        _values(mfn, mod["args"], f"{where}: model {mod['name']!r} args", supplied)
    opt = dict(cfg["optimizer"])
    name = opt.pop("name", "sgd")
    if name in registry.OPTIMIZERS:
        valid = accepted(registry.OPTIMIZERS[name])
        check_keys(opt, valid, f"{where}: optimizer {name!r}", ["params"])
        _values(registry.OPTIMIZERS[name], opt, f"{where}: optimizer {name!r}", ["params"])
        try:  # torch's own checks (ranges), on one throw-away parameter
            import torch

            registry.build_optimizer(cfg["optimizer"], [torch.zeros(1, requires_grad=True)])
        except (ValueError, TypeError) as e:
            raise ArgumentError(f"{where}: optimizer {name!r}: {e}") from None
    for mname, margs in (cfg.get("metrics") or {}).items():
        meas = measures.MEASURES.get(mname)
        if meas is None:
            continue
        mt = meas.receiver()
        if mt is not None:
            valid = accepted(mt)
            if valid is not None:
                valid = valid | set(meas.own_args)
            check_keys(margs or {}, valid, f"{where}: metric {mname!r}", meas.supplied_args)
            _values(mt, margs or {}, f"{where}: metric {mname!r}", meas.supplied_args)

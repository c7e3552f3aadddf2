"""Argument checks shared by the constructors (no dependencies inside the package).

Out-of-range or non-finite numbers raise ``ValueError`` naming the argument:
NaN compares false with everything, so a bare ``if x < 0: raise`` lets ``nan``
through, and ``inf`` passes any lower bound. These helpers refuse both.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import typing
from typing import Any, Callable, Optional


def _range_text(
    low: Optional[float], high: Optional[float], low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def check_real(
    name: str,
    value: Any,
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float if it is a finite real number in the range, else ``ValueError``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``None`` means
    unbounded on that side (the value must still be finite). Booleans are refused.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
    if not ok:
        rng = _range_text(low, high, low_open, high_open)
        what = "a finite number" if rng == "finite" else f"a finite number {rng}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


def check_integer(
    name: str,
    value: Any,
    low: Optional[int] = None,
    high: Optional[int] = None,
    *,
    none_ok: bool = False,
) -> Optional[int]:
    """``value`` as an int if it is an integer in ``[low, high]``, else ``ValueError``;
    floats (``16.0`` too), strings and booleans are refused. With ``none_ok``, ``None``
    is accepted and returned."""
    if value is None and none_ok:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok:
        v = int(value)
        ok = (low is None or v >= low) and (high is None or v <= high)
    if not ok:
        rng = _range_text(low, high, False, False)
        what = "an integer" if rng == "finite" else f"an integer {rng}"
        what += " (or None)" if none_ok else ""
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return v


# --------------------------------------------------------------------------- declared rules
#
# A constructor declares its arguments' rules once, with ``@checked(name=rule, ...)`` on
# ``__init__`` (or on a factory function); the decorator applies them to every call, and
# :func:`check_arguments` applies the same rules to a mapping of arguments without building
# anything (a suite's values, when it loads). Arguments without a declared rule get one from
# their annotation: ``bool`` must be a bool, ``int`` an int (not a float, not a bool),
# ``float`` a real number, ``str`` a string, ``Literal[...]`` one of its values, a class an
# instance of it, ``Optional[X]`` None or X. A rule returns the value the call receives.

Rule = Callable[[str, Any], Any]


def real(
    low: Optional[float] = None,
    high: Optional[float] = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    none_ok: bool = False,
) -> Rule:
    """A rule: a finite real number in the range (:func:`check_real`), returned as a float."""

    def rule(name: str, value: Any) -> Any:
        if value is None and none_ok:
            return None
        return check_real(name, value, low, high, low_open=low_open, high_open=high_open)

    return rule


def integer(
    low: Optional[int] = None, high: Optional[int] = None, *, none_ok: bool = False
) -> Rule:
    """A rule: an integer in ``[low, high]`` (:func:`check_integer`)."""

    def rule(name: str, value: Any) -> Any:
        return check_integer(name, value, low, high, none_ok=none_ok)

    return rule


def boolean(*, none_ok: bool = False) -> Rule:
    """A rule: ``True`` or ``False`` (not a string such as ``'no'``, not 0/1)."""

    def rule(name: str, value: Any) -> Any:
        if value is None and none_ok:
            return None
        if not isinstance(value, bool):
            raise ValueError(
                f"{name} must be True or False{' (or None)' if none_ok else ''}, got {value!r}"
            )
        return value

    return rule


def one_of(*choices: Any, none_ok: bool = False) -> Rule:
    """A rule: one of ``choices`` (compared by type and value: ``True`` is not ``1``)."""

    def rule(name: str, value: Any) -> Any:
        if value is None and none_ok:
            return None
        if not any(type(value) is type(c) and value == c for c in choices):
            valid = ", ".join(repr(c) for c in choices) + (", None" if none_ok else "")
            raise ValueError(f"{name} must be one of {valid}; got {value!r}")
        return value

    return rule


def instance_of(*types: type, none_ok: bool = False) -> Rule:
    """A rule: an instance of one of ``types`` (a bool is not taken for an int or float)."""

    def rule(name: str, value: Any) -> Any:
        if value is None and none_ok:
            return None
        ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
        if not ok:
            names = " or ".join(_type_name(t) for t in types) + (" (or None)" if none_ok else "")
            raise ValueError(f"{name} must be {names}, got {value!r} ({type(value).__name__})")
        return value

    return rule


def callable_or_none(name: str, value: Any) -> Any:
    """A rule: None or a callable (an initialiser)."""
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be None or a callable, got {value!r}")
    return value


def _type_name(t: type) -> str:
    mod = getattr(t, "__module__", "builtins")
    return t.__qualname__ if mod == "builtins" else f"{mod}.{t.__qualname__}"


def _any_of(rules: list, none_ok: bool) -> Rule:
    def rule(name: str, value: Any) -> Any:
        if value is None and none_ok:
            return None
        errors = []
        for r in rules:
            try:
                return r(name, value)
            except ValueError as e:
                errors.append(str(e).split(" must be ", 1)[-1].split(", got")[0])
        raise ValueError(f"{name} must be {' or '.join(errors)}, got {value!r}")

    return rule


def _annotation_rule(tp: Any) -> Optional[Rule]:
    """The rule an annotation implies, or None when it implies none we can check."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        none_ok = len(args) < len(typing.get_args(tp))
        rules = [_annotation_rule(a) for a in args]
        if any(r is None for r in rules):
            return None
        return _any_of(rules, none_ok)
    if origin is typing.Literal:
        return one_of(*typing.get_args(tp))
    if tp is bool:
        return boolean()
    if tp is int:
        return integer()
    if tp is float:
        return real()
    if tp is str:
        return instance_of(str)
    if inspect.isclass(tp) and origin is None and tp not in (object, type(None)):
        if tp.__module__ in ("typing", "collections.abc", "builtins") and tp not in (list, dict):
            return None
        return instance_of(tp)
    return None


def annotation_rules(fn: Callable) -> dict[str, Rule]:
    """The rules ``fn``'s annotations imply, by parameter name (those that cannot be
    resolved or checked are left out)."""
    fn = inspect.unwrap(fn)
    ann = getattr(fn, "__annotations__", {}) or {}
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation naming something not importable here: one by one
        hints = {}
        glob = getattr(fn, "__globals__", {})
        for k, v in ann.items():
            try:
                hints[k] = eval(v, glob) if isinstance(v, str) else v  # noqa: S307
            except Exception:
                continue
    out = {}
    for k, tp in hints.items():
        if k == "return":
            continue
        r = _annotation_rule(tp)
        if r is not None:
            out[k] = r
    return out


def checked(**rules: Rule) -> Callable:
    """Decorate a constructor (or function): every call applies ``rules`` (and the rules its
    annotations imply, for the other arguments) to the arguments given, before the body
    runs; :func:`check_arguments` applies the same rules without calling it."""

    def decorate(fn: Callable) -> Callable:
        cache: dict = {}

        def all_rules() -> dict[str, Rule]:
            if "rules" not in cache:
                cache["rules"] = {**annotation_rules(fn), **rules}
            return cache["rules"]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                bound = inspect.signature(fn).bind(*args, **kwargs)
            except TypeError:
                return fn(*args, **kwargs)  # the call's own error
            given = bound.arguments
            for k, rule in all_rules().items():
                if k in given:
                    given[k] = rule(k, given[k])
            var_kw = next(
                (
                    p.name
                    for p in inspect.signature(fn).parameters.values()
                    if p.kind is inspect.Parameter.VAR_KEYWORD
                ),
                None,
            )
            if var_kw and var_kw in given:
                for k, rule in all_rules().items():
                    if k in given[var_kw]:
                        given[var_kw][k] = rule(k, given[var_kw][k])
            return fn(*bound.args, **bound.kwargs)

        wrapper.__arg_rules__ = all_rules  # type: ignore[attr-defined]
        wrapper.__declared_rules__ = dict(rules)  # type: ignore[attr-defined]
        return wrapper

    return decorate


def forwards_to(*targets: Any) -> Callable:
    """Mark a constructor that passes some of its ``**kwargs`` on to ``targets`` (a plugin,
    a network): :func:`check_arguments` applies their rules too."""

    def decorate(fn: Callable) -> Callable:
        fn.__forwards_to__ = tuple(getattr(fn, "__forwards_to__", ())) + targets
        return fn

    return decorate


def rules_of(target: Any) -> dict[str, Rule]:
    """Every rule that applies to ``target``'s keyword arguments: for a class, those of each
    ``__init__`` along its MRO and of what they forward to (:func:`forwards_to`). Declared
    rules come first (the most derived wins), then those the annotations imply."""
    fns = (
        [c.__dict__["__init__"] for c in target.__mro__ if "__init__" in c.__dict__]
        if inspect.isclass(target)
        else [target]
    )
    fns = [f for f in fns if f is not object.__init__]
    declared: dict[str, Rule] = {}
    implied: dict[str, Rule] = {}
    for fn in fns:
        for k, r in getattr(fn, "__declared_rules__", {}).items():
            declared.setdefault(k, r)
        for t in getattr(fn, "__forwards_to__", ()):
            for k, r in rules_of(t).items():
                declared.setdefault(k, r)
        for k, r in annotation_rules(fn).items():
            implied.setdefault(k, r)
    return {**implied, **declared}


def check_arguments(target: Any, kwargs: dict, skip: Any = ()) -> None:
    """Apply ``target``'s rules (:func:`rules_of`) to ``kwargs`` without calling it;
    ``ValueError`` names the argument, the value and what is allowed."""
    rules = rules_of(target)
    for k, v in kwargs.items():
        if k in rules and k not in skip:
            rules[k](k, v)


# --------------------------------------------------------------------------- devices

DEVICE_KINDS = ("cpu", "cuda", "mps")


def check_device(device: Any, name: str = "device") -> Any:
    """``device`` as a ``torch.device`` if this machine has it, else a one-line ``ValueError``
    (``"gpu"``, ``"cuda"`` without CUDA, ``"cuda:3"`` with fewer GPUs, ``"mps"`` without
    Metal). Accepts a string or a ``torch.device``."""
    import torch  # here, not at the top: the suite loader imports this module and stays torch-free

    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise ValueError(
                f"{name} {device!r} is not a device; valid: 'cpu', 'cuda', 'cuda:N', 'mps'"
            ) from None
    else:
        raise ValueError(
            f"{name} must be a string such as 'cpu' or 'cuda:0' (or a torch.device), got {device!r}"
        )
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"{name} {device!r} is not available: this machine has no CUDA GPU")
        if dev.index is not None and dev.index >= n:
            raise ValueError(
                f"{name} {device!r} is not available: this machine has {n} CUDA GPU(s) "
                f"(cuda:0..cuda:{n - 1})"
            )
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name} {device!r} is not available: this machine has no MPS device")
        return dev
    raise ValueError(f"{name} {device!r} is not supported; valid: 'cpu', 'cuda', 'cuda:N', 'mps'")

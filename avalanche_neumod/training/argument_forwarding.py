"""Strategies that take the arguments of the object they build (a plugin, a network)
by name, without listing them again.

``@takes_arguments_of(Target)`` on a strategy's ``__init__(..., **base_kwargs)`` names
``Target``'s keyword arguments in the strategy's signature (what ``help``, IDEs and the
suite's argument check read); inside, :func:`pop_arguments_of` takes them out of
``base_kwargs`` for ``Target`` (which validates them), and the rest goes on to the
template. ``Target``'s own defaults apply to what is not given.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def keyword_parameters(target: type, exclude: Iterable[str] = ()) -> list[inspect.Parameter]:
    """The arguments of ``target``'s constructor that can be given by name, as keyword-only
    parameters (``self`` and the names in ``exclude`` left out)."""
    skip = {"self", *exclude}
    return [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(target.__init__).parameters.values()
        if p.kind in _NAMED and p.name not in skip
    ]


def takes_arguments_of(target: type, exclude: Iterable[str] = ()) -> Callable:
    """Decorate an ``__init__`` ending in ``**kwargs``: its signature also names
    ``target``'s keyword arguments (before ``**kwargs``)."""
    extra = keyword_parameters(target, exclude)

    def decorate(init: Callable) -> Callable:
        sig = inspect.signature(init)
        *own, var_kw = sig.parameters.values()
        if var_kw.kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"{init.__qualname__} must end in **kwargs to forward arguments")
        init.__signature__ = sig.replace(parameters=[*own, *extra, var_kw])
        # what :func:`avalanche_neumod.argument_rules.rules_of` follows to check them unbuilt
        init.__forwards_to__ = (*getattr(init, "__forwards_to__", ()), target)
        return init

    return decorate


def pop_arguments_of(
    target: type, kwargs: dict[str, Any], exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """Remove ``target``'s keyword arguments from ``kwargs`` and return them."""
    names = {p.name for p in keyword_parameters(target, exclude)}
    return {k: kwargs.pop(k) for k in list(kwargs) if k in names}

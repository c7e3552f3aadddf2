"""Former names of the evaluation classes: the one table, and the look-up that warns.

Each metric has one class (docs/metrics.md); a name users may have imported before
(from ``avalanche_neumod.evaluation`` or its module) still resolves, to that same class,
with a ``DeprecationWarning``. ``avalanche_neumod.evaluation`` and the modules named
here look their missing attributes up through :func:`resolve` (PEP 562).
"""

from __future__ import annotations

import importlib
import warnings

PACKAGE = "avalanche_neumod.evaluation"

# former name -> (module in ``avalanche_neumod.evaluation``, the class it names now)
RENAMED: dict[str, tuple[str, str]] = {
    "StabilityGapTracker": ("stability_gap", "StabilityGapMetric"),
    "KnowledgeTransferPlugin": ("transfer", "KnowledgeTransferMetric"),
}


def resolve(module: str, name: str) -> type:
    """The class a former ``name`` looked up in ``module`` now is, with a
    ``DeprecationWarning``; ``AttributeError`` for any other name."""
    entry = RENAMED.get(name)
    if entry is None or module not in (PACKAGE, f"{PACKAGE}.{entry[0]}"):
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    where, now = entry
    warnings.warn(
        f"{name} is now {now}, the one class of the metric (docs/metrics.md): use {PACKAGE}.{now}",
        DeprecationWarning,
        stacklevel=3,
    )
    # by name when used: the module itself imports this one
    return getattr(importlib.import_module(f"{PACKAGE}.{where}"), now)

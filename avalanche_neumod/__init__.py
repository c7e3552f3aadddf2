"""avalanche-neumod: neuromodulation-inspired continual learning for Avalanche.

Subpackages: ``models`` (networks, hidden units, gains, NeuMoSync network),
``training`` (strategies, plugins, the fast path), ``benchmarks`` (datasets and
streams), ``evaluation`` (metrics), ``experiment`` and ``reporting`` (suites and
reports), ``cli`` (``neumod``).

The public names below are imported on first use (module ``__getattr__``,
PEP 562): ``import avalanche_neumod`` loads neither torch nor Avalanche, and
``from avalanche_neumod import NeuMoSync`` imports what that name needs.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the subpackage that defines it
_EXPORTS: dict[str, str] = {
    "ExperienceTensors": "benchmarks",
    "get_stream": "benchmarks",
    "tensor_benchmark": "benchmarks",
    "MLP": "models",
    "ConvNet": "models",
    "SlimResNet18": "models",
    "hidden_units": "models",
    "CBP": "training",
    "MAML": "training",
    "NGMSGD": "training",
    "FastDataPlugin": "training",
    "FastNaive": "training",
    "FastTemplate": "training",
    "L2Init": "training",
    "L2InitEWC": "training",
    "NeuMoSync": "training",
    "ReDo": "training",
    "ShrinkPerturb": "training",
}
_SUBPACKAGES = ("benchmarks", "cli", "evaluation", "experiment", "models", "reporting", "training")

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS) | set(_SUBPACKAGES))
